"""Where a segmentation job keeps its work: resumable after a kill, never half-complete.

A folder holding
- ``labels``: each block's core labels, numbered within the block (zarr, lz4);
- ``rim<axis>``: each block's labels over the strips just beyond its core faces along
  that axis (what the stitching compares with the neighbour's core);
- ``done/<block>.json``: written (atomically, by rename) after a block's labels and
  strips are stored, with its number of labels and those in its core; a block
  without one is recomputed;
- ``job.json``: the job's identity (input token and stamp, method, parameters, blocks,
  halo) and the whole-input values it prepared (a threshold), so a resumed job uses the
  same values without a pass over the input;
- ``complete.json``, ``lut.npy``, ``offsets.npy``: written last, once stitched. Only a
  folder with ``complete.json`` is a result; a cancelled or killed job never writes it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from ...io import fast_codecs, os_errors


class SegmentStoreError(RuntimeError):
    """A store that belongs to another job (another input, method or parameters)."""


def _write_json(path: Path, value) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value))
    os.replace(tmp, path)  # a reader sees the old file or the new one, never half


class SegmentStore:
    """The folder of one job: ``path`` (None: a temporary folder, gone with the store)."""

    def __init__(self, path, identity: str, shape, block, spatial, widths) -> None:
        self._tmp = None
        if path is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="lazyproc-segment-")
            path = self._tmp.name
        self.path = Path(path)
        self.identity = identity
        self.shape, self.block = tuple(shape), tuple(block)
        self.spatial, self.widths = tuple(spatial), dict(widths)
        self.grid = tuple(-(-n // b) for n, b in zip(self.shape, self.block, strict=True))
        self.labels = None
        self.rims: dict[int, object] = {}

    # ---------------------------------------------------------------- opening
    def record(self) -> dict | None:
        try:
            return json.loads((self.path / "job.json").read_text())
        except (OSError, ValueError):
            return None

    def open(self, resume: bool) -> dict:
        """Create the arrays, or reopen them for the same job; returns the prepared
        values kept from an earlier run of it (empty when starting anew)."""
        import zarr

        record = self.record()
        same = record is not None and record.get("identity") == self.identity
        if record is not None and not same and resume:
            raise SegmentStoreError(
                f"segment: {self.path} holds another segmentation (another input, method "
                f"or parameters); pass resume=False to start over there, or another store")
        if not (same and resume):
            self._clear()
            self.path.mkdir(parents=True, exist_ok=True)
            (self.path / "done").mkdir(exist_ok=True)
            _write_json(self.path / "job.json", {"identity": self.identity, "prepared": {}})
            mode = "w"
        else:
            mode = "r+"
        from zarr.codecs import BloscCodec

        codec = BloscCodec(cname="lz4", clevel=1, shuffle="shuffle")

        def array(name, shape, chunks):
            if mode == "w":
                return fast_codecs(zarr.create_array(
                    str(self.path / name), shape=shape, chunks=chunks, dtype="uint32",
                    fill_value=0, overwrite=True, compressors=codec))
            return fast_codecs(zarr.open_array(str(self.path / name), mode="r+"))

        self.labels = array("labels", self.shape, self.block)
        for a in self.spatial:
            w = self.widths[a]
            shape = tuple(g * 2 * w if k == a else n
                          for k, (n, g) in enumerate(zip(self.shape, self.grid, strict=True)))
            chunks = tuple(2 * w if k == a else b for k, b in enumerate(self.block))
            self.rims[a] = array(f"rim{a}", shape, chunks)
        return dict(record.get("prepared", {})) if same and resume else {}

    def keep_prepared(self, prepared: dict) -> None:
        _write_json(self.path / "job.json", {"identity": self.identity,
                                             "prepared": prepared})

    def _clear(self) -> None:
        import shutil

        for name in ("complete.json", "lut.npy", "offsets.npy", "job.json"):
            (self.path / name).unlink(missing_ok=True)
        for name in ("done", "labels", *(f"rim{a}" for a in range(len(self.shape)))):
            if (self.path / name).is_dir():
                shutil.rmtree(self.path / name)

    # ---------------------------------------------------------------- blocks
    @staticmethod
    def _name(index) -> str:
        return "_".join(map(str, index)) + ".json"

    def done(self) -> dict[tuple, tuple[int, np.ndarray]]:
        """Blocks stored by earlier runs: their numbers of labels and the labels found
        in their cores."""
        out = {}
        for f in (self.path / "done").glob("*.json"):
            try:
                record = json.loads(f.read_text())
                out[tuple(int(i) for i in f.stem.split("_"))] = (
                    int(record["count"]), np.asarray(record["present"], np.int64))
            except (OSError, ValueError, KeyError):
                continue  # a torn marker: the block is recomputed
        return out

    def write_block(self, index, region, core: np.ndarray, rims: dict, count: int,
                    present: np.ndarray) -> None:
        with os_errors():
            self.labels[region] = core
            for a, strip in rims.items():
                w = self.widths[a]
                where = tuple(slice(index[a] * 2 * w, (index[a] + 1) * 2 * w) if k == a else s
                              for k, s in enumerate(region))
                self.rims[a][where] = strip
        _write_json(self.path / "done" / self._name(index), {"count": int(count),
                                                            "present": present.tolist()})

    # ---------------------------------------------------------------- result
    def finish(self, lut: np.ndarray, offsets: np.ndarray, n_labels: int) -> None:
        np.save(self.path / "lut.npy", lut)
        np.save(self.path / "offsets.npy", offsets)
        _write_json(self.path / "complete.json", {"identity": self.identity,
                                                  "n_labels": int(n_labels)})

    def completed(self):
        """``(lut, offsets, n_labels)`` when this folder holds this job finished."""
        try:
            record = json.loads((self.path / "complete.json").read_text())
        except (OSError, ValueError):
            return None
        if record.get("identity") != self.identity:
            return None
        return (np.load(self.path / "lut.npy"), np.load(self.path / "offsets.npy"),
                int(record["n_labels"]))

    def close(self) -> None:
        """Drop a temporary folder (a cancelled job leaves nothing)."""
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
