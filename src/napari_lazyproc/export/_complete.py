"""An output already complete: the export that made it, read back, against this one.

Every export keeps its job (the resume record: shape, dtype, format, pipeline, source and
the input's identity, ``_resume``) in the provenance it writes (``"export"``). A re-run
whose job is the same finds its output made already and writes nothing; one whose job
differs is refused, naming what differs (``_resume.difference``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ._paths import ExportError
from ._remote_path import RemotePath, zarr_store
from ._resume import PROVENANCE_ONLY, difference


def recorded_job(where: Path | RemotePath, format: str) -> dict[str, Any] | None:
    """The job a complete export of ``format`` recorded at ``where``; None when there is
    none (not written by us, by a version before records were kept, or unreadable)."""
    try:
        if format in ("tiff", "ome-tiff"):
            provenance = _tiff_provenance(Path(where))
        else:
            import zarr

            provenance = zarr.open(store=zarr_store(where), mode="r").attrs.get(
                "napari-lazyproc")
    except Exception:  # noqa: BLE001 - anything unreadable is not a record: "exists"
        return None
    job = provenance.get("export") if isinstance(provenance, dict) else None
    return job if isinstance(job, dict) else None


def _tiff_provenance(path: Path) -> dict | None:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        if tif.is_ome:
            images = tifffile.xml2dict(tif.ome_metadata).get("OME", {}).get("Image")
            image = images[0] if isinstance(images, list) else images
            return json.loads(image.get("Description") or "{}").get("napari-lazyproc")
        shaped = tif.shaped_metadata
        text = shaped[0].get("napari-lazyproc") if shaped else None
        return json.loads(text) if isinstance(text, str) else None


def _compared(job: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in json.loads(json.dumps(job)).items() if k not in PROVENANCE_ONLY}


def same_job(recorded: dict[str, Any] | None, job: dict[str, Any]) -> bool:
    """Whether ``recorded`` (read back from JSON) is ``job``: the same input (by its
    identity, however its path was spelled), pipeline and options."""
    return recorded is not None and _compared(recorded) == _compared(job)


def check_complete(target, writer, image) -> bool:
    """Whether ``target`` holds this very export, complete (nothing to write).

    Raises
    ------
    ExportError
        When it holds a complete export of another input or pipeline, naming what
        differs.
    """
    if not target.is_complete():
        return False
    recorded = recorded_job(target.partial if target.remote else target.path,
                            writer.options.format)
    if recorded is None:
        return False  # not ours to judge: the target's own check says "exists"
    job = writer.job(image)
    if same_job(recorded, job):
        return True
    raise ExportError(difference(target.path, recorded, json.loads(json.dumps(job)),
                                 complete=True))
