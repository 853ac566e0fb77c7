"""TIFF, BigTIFF, OME-TIFF and ImageJ hyperstacks, pyramids included.

Pixels are read through tifffile's ``aszarr`` store, one tile or strip at a time, never
with a whole-file ``asarray``.
"""

from __future__ import annotations

import logging
import struct
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ._axes import convert_unit, normalize_unit
from ._errors import ImageReadError
from ._file_array import FileArray
from ._image import LazyImage
from ._registry import Format, Target, register

TIFF_SUFFIXES = (".tif", ".tiff", ".btf", ".tf8", ".tf2")
TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


class _TiffHandle:
    def __init__(self, tif, array) -> None:
        self.tif, self.array = tif, array

    def close(self) -> None:
        self.tif.close()


def _open_level(path: str, series: int, level: int, tif=None) -> _TiffHandle:
    import tifffile
    import zarr

    tif = tif or tifffile.TiffFile(path)
    store = tif.series[series].aszarr(level=level)
    return _TiffHandle(tif, zarr.open_array(store, mode="r"))


class TiffLevel(FileArray):
    """One pyramid level of one series of a TIFF file, read tile by tile."""

    def __init__(self, path, series: int, level: int, shape, dtype, chunks, handle=None):
        super().__init__(path, shape, dtype, chunks, handle)
        self.series, self.level = int(series), int(level)

    def _identity(self) -> tuple:
        return (self.series, self.level, *super()._identity())

    def _open(self) -> _TiffHandle:
        return _open_level(self.path, self.series, self.level)

    def _read(self, handle: _TiffHandle, key):
        return handle.array[key]


def tiff_axes(series_axes: str) -> str:
    """tifffile's axis letters as distinct lowercase ones.

    Parameters
    ----------
    series_axes
        A tifffile series' ``axes``: ``T``, ``Z``, ``C``, ``Y``, ``X``, ``S`` (samples) and
        ``I``, ``Q``... for unknown ones.

    Returns
    -------
    str
        ``S`` becomes ``c`` where there is no ``C``; each unknown letter becomes the first
        of ``z``, ``t``, ``c``, ``q``, ``r``... not yet taken.
    """
    known = {"T": "t", "Z": "z", "C": "c", "Y": "y", "X": "x"}
    letters = [known.get(a) for a in series_axes]
    for i, a in enumerate(series_axes):
        if letters[i]:
            continue
        if a == "S" and "c" not in letters:
            letters[i] = "c"
            continue
        for candidate in ("z", "t", "c", *"qrsuvw"):
            if candidate not in letters:
                letters[i] = candidate
                break
    return "".join(letters)


def _as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _ome_pixels(tif, series: int) -> dict[str, Any]:
    import tifffile

    ome = tifffile.xml2dict(tif.ome_metadata).get("OME", {})
    images = _as_list(ome.get("Image"))
    return (images[series] if series < len(images) else images[0]).get("Pixels", {})


def _ome_color(value) -> str | None:
    try:
        rgba = int(value) & 0xFFFFFFFF
    except (TypeError, ValueError):
        return None
    return f"#{rgba >> 24 & 255:02x}{rgba >> 16 & 255:02x}{rgba >> 8 & 255:02x}"


def _own_geometry(tif, series: int, axes: str) -> dict[str, Any] | None:
    """The geometry napari-lazyproc's export keeps in the OME Image's Description."""
    import json

    import tifffile

    images = _as_list(tifffile.xml2dict(tif.ome_metadata).get("OME", {}).get("Image"))
    image = images[series] if series < len(images) else {}
    try:
        geometry = json.loads(image.get("Description") or "")["geometry"]
    except (TypeError, ValueError, KeyError):
        return None
    n = len(axes)
    try:
        out = {"scale": [float(v) for v in geometry["scale"]],
               "translate": [float(v) for v in geometry["translate"]],
               "units": [normalize_unit(u) for u in geometry["units"]]}
    except (TypeError, ValueError, KeyError):
        return None
    if geometry.get("axes") != axes or any(len(v) != n for v in out.values()):
        return None
    return out


def _ome_metadata(tif, series: int, axes: str) -> dict[str, Any]:
    px = _ome_pixels(tif, series)
    size = {a: px.get(f"PhysicalSize{a.upper()}") for a in "zyx"}
    unit = {
        a: normalize_unit(px.get(f"PhysicalSize{a.upper()}Unit", "µm")) for a in "zyx"
    }
    scale = [float(size[a]) if a in size and size[a] else 1.0 for a in axes]
    units = [unit[a] if a in unit and size[a] else None for a in axes]
    if "t" in axes and px.get("TimeIncrement"):
        scale[axes.index("t")] = float(px["TimeIncrement"])
        units[axes.index("t")] = normalize_unit(px.get("TimeIncrementUnit", "s"))
    channels = _as_list(px.get("Channel"))
    out: dict[str, Any] = {"scale": scale, "units": units,
                           "translate": _ome_origin(px, axes, units)}
    own = _own_geometry(tif, series, axes)
    for i, a in enumerate(axes):  # axes OME-XML says nothing of: from our own record
        if own is not None and a not in "zyx" and not (a == "t" and px.get("TimeIncrement")):
            for key in ("scale", "translate", "units"):
                out[key][i] = own[key][i]
    n_c = None
    if "c" in axes:
        n_c = tif.series[series].shape[axes.index("c")]
    if channels and n_c == len(channels):
        names = [c.get("Name") for c in channels]
        if all(names):
            out["channel_names"] = [str(n) for n in names]
        colors = [_ome_color(c.get("Color")) for c in channels]
        if all(c is not None for c in channels) and all(colors) and any(
            c.get("Color") is not None for c in channels
        ):
            out["channel_colors"] = colors
    return out


def _ome_origin(px: dict[str, Any], axes: str, units: list) -> list[float]:
    """Voxel 0's position: the first plane's PositionX/Y/Z and DeltaT, in the axis'
    unit (a position in another length converted; one in pixels or an unknown unit
    taken as it is)."""
    origin = [0.0] * len(axes)
    planes = [p for p in _as_list(px.get("Plane")) if isinstance(p, dict)]
    first = next((p for p in planes if all(int(p.get(f"The{k}", 0)) == 0 for k in "CZT")),
                 None)
    if first is None:
        return origin
    for a, key in (("x", "PositionX"), ("y", "PositionY"), ("z", "PositionZ"),
                   ("t", "DeltaT")):
        if a not in axes or first.get(key) is None:
            continue
        value, unit, axis_unit = float(first[key]), normalize_unit(first.get(f"{key}Unit")), \
            units[axes.index(a)]
        if unit and axis_unit and unit != axis_unit:
            try:
                value = convert_unit(value, unit, axis_unit)
            except Exception:  # noqa: BLE001 - a unit that does not convert: as it is
                pass
        origin[axes.index(a)] = value
    return origin


def _resolution_size(page) -> tuple[float | None, float | None]:
    """Pixel size (y, x) from the XResolution / YResolution tags (pixels per unit)."""
    sizes = []
    for tag in ("YResolution", "XResolution"):
        t = page.tags.get(tag)
        try:
            num, den = t.value
            sizes.append(den / num if num else None)
        except (AttributeError, TypeError, ValueError, ZeroDivisionError):
            sizes.append(None)
    return sizes[0], sizes[1]


def _imagej_metadata(tif, axes: str) -> dict[str, Any]:
    ij = tif.imagej_metadata or {}
    page = tif.pages.first
    unit = normalize_unit(ij.get("unit"))
    y, x = _resolution_size(page)
    scale = [1.0] * len(axes)
    units: list[str | None] = [None] * len(axes)
    for a, v in (("y", y), ("x", x), ("z", ij.get("spacing"))):
        if a in axes and v:
            scale[axes.index(a)] = float(v)
            units[axes.index(a)] = unit
    if "t" in axes and ij.get("finterval"):
        scale[axes.index("t")] = float(ij["finterval"])
        units[axes.index("t")] = normalize_unit(ij.get("tunit", "s"))
    # ImageJ's origin is the pixel at physical 0 (``xorigin=``...): voxel 0 is at -origin
    translate = [0.0] * len(axes)
    for a in "zyx":
        if a in axes and ij.get(f"{a}origin") is not None:
            translate[axes.index(a)] = -float(ij[f"{a}origin"]) * scale[axes.index(a)]
    out: dict[str, Any] = {"scale": scale, "units": units, "translate": translate}
    labels = ij.get("Labels")
    if "c" in axes and isinstance(labels, list):
        n_c = tif.series[0].shape[axes.index("c")]
        if len(labels) == n_c:
            out["channel_names"] = [str(v) for v in labels]
    return out


def _shaped_metadata(tif, axes: str) -> dict[str, Any] | None:
    """What napari-lazyproc's TIFF export keeps in tifffile's shaped JSON: ``scale``,
    ``translate``, ``units`` and ``channel_names`` (as a plain zarr's attributes); None
    for a file without them."""
    shaped = tif.shaped_metadata
    meta = shaped[0] if shaped else None
    if not isinstance(meta, dict) or "scale" not in meta:
        return None
    n = len(axes)
    scale = [float(v) for v in meta["scale"]]
    translate = [float(v) for v in meta.get("translate") or [0.0] * n]
    units = [normalize_unit(u) for u in meta.get("units") or [None] * n]
    if not len(scale) == len(translate) == len(units) == n:
        return None
    out: dict[str, Any] = {"scale": scale, "units": units, "translate": translate}
    names = meta.get("channel_names")
    if "c" in axes and isinstance(names, list) and len(names) == tif.series[0].shape[
            axes.index("c")]:
        out["channel_names"] = [str(v) for v in names]
    return out


def _plain_metadata(tif, axes: str) -> dict[str, Any]:
    """Only a centimetre ResolutionUnit is a physical size; inch values are screen dpi."""
    import tifffile

    page = tif.pages.first
    scale = [1.0] * len(axes)
    units: list[str | None] = [None] * len(axes)
    res_unit = page.tags.get("ResolutionUnit")
    if res_unit is not None and res_unit.value == tifffile.RESUNIT.CENTIMETER:
        y, x = _resolution_size(page)
        for a, v in (("y", y), ("x", x)):
            if a in axes and v:
                scale[axes.index(a)] = convert_unit(v, "centimeter", "micrometer")
                units[axes.index(a)] = "micrometer"
    return {"scale": scale, "units": units}


def tiff_metadata(tif, series: int, axes: str) -> dict[str, Any]:
    """Scale, units, origin and channel names from OME-XML, ImageJ metadata, our own
    export's shaped JSON, or resolution tags.

    Parameters
    ----------
    tif
        An open ``tifffile.TiffFile``.
    series
        The index of the series the metadata is for.
    axes
        The series' axis letters, from ``tiff_axes``.

    Returns
    -------
    dict
        ``"scale"``, ``"units"`` and ``"translate"`` (one entry per axis), plus
        ``"channel_names"`` and ``"channel_colors"`` when the file gives one per channel.
        Unreadable metadata gives unit scale and no units: the pixels still open.
    """
    try:
        if tif.is_ome:
            return _ome_metadata(tif, series, axes)
        if tif.is_imagej:
            return _imagej_metadata(tif, axes)
        if tif.is_shaped:
            shaped = _shaped_metadata(tif, axes)
            if shaped is not None:
                return shaped
        return _plain_metadata(tif, axes)
    except Exception:  # noqa: BLE001 - metadata is a bonus; pixels still open
        return {"scale": [1.0] * len(axes), "units": [None] * len(axes)}


@register
class Tiff(Format):
    """A TIFF, BigTIFF, OME-TIFF or ImageJ hyperstack; all pyramid levels of one series."""

    name = "TIFF"

    @classmethod
    def claims(cls, target: Target) -> bool:
        if target.is_dir or target.is_glob:
            return False
        return target.has_suffix(*TIFF_SUFFIXES) or target.head.startswith(TIFF_MAGIC)

    @classmethod
    def open(cls, target: Target, *, series: int = 0) -> LazyImage:
        import tifffile

        path = str(target.path)
        with _tifffile_errors() as errors:
            try:
                tif = tifffile.TiffFile(path)
                tif.series  # noqa: B018 - parse the series while errors are captured
            except (tifffile.TiffFileError, ValueError, EOFError, struct.error) as exc:
                raise ImageReadError(path, f"not a readable TIFF file ({exc})") from exc
        try:
            if errors:
                raise ImageReadError(path, f"the file is damaged or truncated ({errors[0]})")
            if not tif.series:
                raise ImageReadError(path, "the TIFF file holds no image series")
            if not 0 <= series < len(tif.series):
                raise ImageReadError(
                    path, f"series={series} is out of range; the file has {len(tif.series)}"
                )
            s = tif.series[series]
            axes = tiff_axes(s.axes)
            rgb = s.axes.endswith("S") and s.shape[-1] in (3, 4)
            sources, levels = [], []
            for i, lvl in enumerate(s.levels):
                handle = _open_level(path, series, i, tif)
                arr = TiffLevel(
                    path, series, i, lvl.shape, lvl.dtype, handle.array.chunks,
                    handle if i == 0 else None,
                )
                _check_complete(path, tif, lvl)
                sources.append(arr)
                levels.append(arr.to_dask())
            meta = tiff_metadata(tif, series, axes)
        except Exception:
            tif.close()
            raise
        fmt = "ome-tiff" if tif.is_ome else "imagej-tiff" if tif.is_imagej else "tiff"
        if tif.is_bigtiff:
            fmt = "big" + fmt
        return LazyImage(
            levels=levels,
            axes=axes,
            scale=tuple(meta["scale"]),
            translate=tuple(meta.get("translate") or (0.0,) * len(axes)),
            units=tuple(meta["units"]),
            name=_stem(Path(path)),
            channel_names=meta.get("channel_names"),
            channel_colors=meta.get("channel_colors"),
            source={"path": path, "format": fmt, "series": series, "series_axes": s.axes},
            metadata={"rgb": rgb, "n_series": len(tif.series)},
            sources=sources,
        )


@contextmanager
def _tifffile_errors():
    """tifffile logs a broken IFD chain and opens what it can; collect those errors."""
    errors: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.ERROR:
                errors.append(record.getMessage().split("> ", 1)[-1])

    logger = logging.getLogger("tifffile")
    handler = Collect()
    logger.addHandler(handler)
    try:
        yield errors
    finally:
        logger.removeHandler(handler)


def _check_complete(path: str, tif, level) -> None:
    """A truncated file has tiles whose bytes lie past the end of the file."""
    size = tif.filehandle.size
    for page in level.pages[:1] + level.pages[-1:]:
        if page is None or not hasattr(page, "dataoffsets"):
            continue
        ends = [o + c for o, c in zip(page.dataoffsets, page.databytecounts, strict=True) if o]
        if ends and max(ends) > size:
            raise ImageReadError(
                path, f"the file is truncated: image data ends at byte {max(ends)}, "
                f"the file has {size}"
            )
    if len(level.pages) and level.pages[-1] is None:
        raise ImageReadError(path, "the file is truncated: its last page cannot be read")


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".ome.tiff", ".ome.tif", ".ome.btf", *TIFF_SUFFIXES):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem
