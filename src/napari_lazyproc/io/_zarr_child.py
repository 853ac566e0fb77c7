"""A node inside a zarr store (a series, a well, a field) as a target of its own, local
or remote, so that the formats open it as they open a store's root."""

from __future__ import annotations

from ._registry import Target
from ._remote_target import RemoteTarget


def child_target(target: Target, path: str) -> Target:
    """The target of ``path`` (``"1"``, ``"A/1/0"``) under ``target``."""
    path = path.strip("/")
    if isinstance(target, RemoteTarget):
        return RemoteTarget(f"{target.url}/{path}", target.storage_options)
    return Target(target.path / path)
