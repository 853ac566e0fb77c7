"""Saving a panel's table (the measure and drift panels): a file dialog, and errors as
napari notifications rather than tracebacks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from napari.utils.notifications import show_error, show_info


def save_notifying(save: Callable[[Any, str], Any], table, path: str, nothing: str) -> bool:
    """``save(table, path)``, telling the user how it went.

    Parameters
    ----------
    save : callable
        Writes ``table`` to ``path`` (raises ``ValueError`` or ``OSError``).
    table : pandas.DataFrame or None
        None: nothing to save yet.
    path : str
        Where to write.
    nothing : str
        The notification when there is no table.

    Returns
    -------
    bool
        Whether it was written.
    """
    if table is None:
        show_error(nothing)
        return False
    try:
        save(table, path)
    except (ValueError, OSError) as exc:
        show_error(str(exc))
        return False
    show_info(f"saved {path}")
    return True


def ask_save_path(parent, title: str, default: str, filters: str) -> str | None:
    """A path from Qt's save dialog, or None when cancelled."""
    from qtpy.QtWidgets import QFileDialog

    path, _ = QFileDialog.getSaveFileName(parent, title, default, filters)
    return path or None
