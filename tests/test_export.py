"""Export: values through three readers, atomic and resumable writes, refusals, the CLI."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import zarr
from conftest import VOLUME
from scipy import ndimage as ndi

import napari_lazyproc as lp
from napari_lazyproc.export import ExportError


def valid_ome_zarr(path: Path, version: str, labels: bool = False):
    """``path`` read by ome-zarr-models, which validates it against the OME-Zarr spec
    (its metadata and its arrays); raises when it is not valid."""
    from ome_zarr_models import v04, v05

    models = {"0.4": v04, "0.5": v05}[version]
    model = models.ImageLabel if labels else models.Image
    return model.from_zarr(zarr.open_group(path, mode="r"))


def digest(path: Path) -> str:
    """A checksum of every file under ``path`` (names and bytes)."""
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        h.update(str(f.relative_to(path.parent)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


#: values are compared bitwise with scipy here: results are made in "exact" precision
pytestmark = pytest.mark.usefixtures("exact_precision")


@pytest.fixture
def checked(request):
    """Register inputs; at teardown their checksums must be what they were."""
    seen: dict[Path, str] = {}

    def add(path):
        seen[Path(path)] = digest(Path(path))
        return Path(path)

    yield add
    for path, before in seen.items():
        assert digest(path) == before, f"{path} was modified by an export"


def test_ome_zarr_04_values_scale_and_axes_through_three_readers(ome_zarr_v04, tmp_path, checked):
    src = checked(ome_zarr_v04)
    img = lp.open_image(src)
    res = lp.apply("gaussian", img, sigma=1.0, units="physical")  # 0.5 px in z, 2 in y, x
    out = lp.export(res, tmp_path / "out.ome.zarr")
    expected = ndi.gaussian_filter(VOLUME, (0.5, 2.0, 2.0))

    back = lp.open_image(out)  # this reader
    np.testing.assert_array_equal(np.asarray(back.levels[0]), expected)
    assert back.axes == "zyx" and back.scale == (2.0, 0.5, 0.5)
    assert back.units == ("micrometer",) * 3

    from ome_zarr.io import parse_url  # ome-zarr-py
    from ome_zarr.reader import Reader

    (node, *_) = Reader(parse_url(str(out)))()
    np.testing.assert_array_equal(np.asarray(node.data[0]), expected)
    assert [a["name"] for a in node.metadata["axes"]] == ["z", "y", "x"]
    assert node.metadata["coordinateTransformations"][0][0]["scale"] == [2.0, 0.5, 0.5]

    from napari_ome_zarr import napari_get_reader  # napari-ome-zarr

    ((data, kwargs, kind), *_) = napari_get_reader(str(out))(str(out))
    np.testing.assert_array_equal(np.asarray(data[0] if isinstance(data, list) else data),
                                  expected)
    assert list(kwargs["scale"]) == [2.0, 0.5, 0.5] and kind == "image"

    attrs = dict(zarr.open_group(out, mode="r").attrs)
    prov = attrs["napari-lazyproc"]
    assert prov["pipeline"][0]["op"] == "gaussian"
    assert prov["pipeline"][0]["sigma"] == [0.5, 2.0, 2.0]
    assert prov["source"] == str(src) and "zarr" in prov["versions"] and prov["date"]
    assert zarr.open_group(out, mode="r").metadata.zarr_format == 2
    assert not (tmp_path / "out.ome.zarr.partial").exists()
    valid_ome_zarr(out, "0.4")


def test_ome_zarr_05_channels_and_pyramid(ome_zarr_v05_channels, tmp_path, checked):
    img = lp.open_image(checked(ome_zarr_v05_channels))
    out = lp.export(lp.apply("median", img, size=3, axes="yx"), tmp_path / "m.ome.zarr",
                    version="0.5", levels=2)
    back = lp.open_image(out)
    full = np.stack([VOLUME, VOLUME // 2])
    expected = ndi.median_filter(full, size=(1, 1, 3, 3))
    np.testing.assert_array_equal(np.asarray(back.levels[0]), expected)
    assert back.levels[1].shape == (2, 12, 32, 40)
    assert back.level_scale(1) == (1.0, 2.0, 1.0, 1.0)
    assert zarr.open_group(out, mode="r").metadata.zarr_format == 3
    assert back.axes == "czyx"
    valid_ome_zarr(out, "0.5")


def test_ome_zarr_04_keeps_channel_names_with_windows_from_a_sample(ome_tiff_pyramid, tmp_path):
    img = lp.open_image(ome_tiff_pyramid)  # names, but no colors nor windows in the file
    assert img.channel_names == ["DAPI", "GFP"] and img.contrast_limits is None
    out = lp.export(img, tmp_path / "c.ome.zarr")
    valid_ome_zarr(out, "0.4")  # 0.4 needs a color and a window for every channel
    back = lp.open_image(out)
    assert back.channel_names == ["DAPI", "GFP"]
    data = np.stack([VOLUME, VOLUME // 2])
    for (lo, hi), channel in zip(back.contrast_limits, data, strict=True):
        assert channel.min() <= lo < hi <= channel.max()


def test_ome_zarr_04_result_with_channels_is_valid(ome_zarr_v05_channels, tmp_path):
    res = lp.apply("median", lp.open_image(ome_zarr_v05_channels), size=3, axes="yx")
    out = lp.export(res, tmp_path / "r.ome.zarr", version="0.4")
    valid_ome_zarr(out, "0.4")


def test_each_output_chunk_is_written_once(zarr_v3_array, tmp_path, monkeypatch, checked):
    from zarr.storage import LocalStore

    writes = _count_sets(monkeypatch, LocalStore)
    res = lp.apply("gaussian", lp.open_image(checked(zarr_v3_array)), sigma=1.5)
    out = lp.export(res, tmp_path / "o.zarr", format="zarr")
    chunk_writes = [k for k in writes if k.startswith("c/")]
    assert len(chunk_writes) == len(set(chunk_writes)) == 3 * 2 * 3  # (12,64,80) / (4,32,32)
    np.testing.assert_array_equal(np.asarray(zarr.open_array(out, mode="r")),
                                  ndi.gaussian_filter(VOLUME, 1.5))


def _count_sets(monkeypatch, store_class) -> list[str]:
    """Keys written through ``store_class.set``; zarrs (which writes files itself) is off
    meanwhile, as in the ``zarr_reads`` fixture."""
    from napari_lazyproc.io import _codecs

    monkeypatch.setitem(_codecs._state, "enabled", False)
    keys: list[str] = []
    original = store_class.set

    async def counting_set(self, key, value, *args, **kwargs):
        keys.append(key)
        return await original(self, key, value, *args, **kwargs)

    monkeypatch.setattr(store_class, "set", counting_set)
    return keys


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_global_labels_export_as_ome_zarr_labels(tmp_path, version):
    blobs = ndi.gaussian_filter(np.random.default_rng(1).random((20, 60, 70)), 2) > 0.52
    path = tmp_path / "blobs.zarr"
    z = zarr.create_array(path, shape=blobs.shape, chunks=(5, 16, 16), dtype="uint8")
    z[:] = blobs
    job = lp.apply("label", lp.open_image(path), scope="global")
    out = lp.export(job, tmp_path / "labels.ome.zarr", version=version, levels=2)
    valid_ome_zarr(out, version, labels=True)
    back = lp.open_image(out)
    assert back.kind == "labels" and back.dtype == np.uint32
    got = np.asarray(back.levels[0])
    expected, n = ndi.label(blobs)
    pairs = np.unique(np.stack([got.ravel(), expected.ravel()]), axis=1)
    assert n > 5 and pairs.shape[1] == n + 1  # equal up to a permutation of labels
    from napari_ome_zarr import napari_get_reader

    layers = napari_get_reader(str(out))(str(out))
    assert layers[0][2] == "labels"


def test_tiff_export(zarr_v3_array, tmp_path, checked):
    import tifffile

    res = lp.apply("gaussian", lp.open_image(checked(zarr_v3_array)), sigma=1.0, axes="yx")
    out = lp.export(res, tmp_path / "g.ome.tif", format="ome-tiff")
    with tifffile.TiffFile(out) as tif:
        assert tif.is_bigtiff and tif.pages[0].is_tiled
        np.testing.assert_array_equal(tif.asarray(), ndi.gaussian_filter(VOLUME, (0, 1, 1)))
        assert "napari-lazyproc" in tif.pages[0].description
    with pytest.raises(ExportError, match="resume is supported for zarr"):
        lp.export(res, tmp_path / "h.tif", format="tiff", resume=True)


# --------------------------------------------------------------------- safety

def test_refuses_to_overwrite_without_the_flag(zarr_v3_array, tmp_path, checked):
    res = lp.apply("gaussian", lp.open_image(checked(zarr_v3_array)), sigma=1.0)
    out = tmp_path / "o.ome.zarr"
    lp.export(res, out)
    before = digest(out)
    with pytest.raises(ExportError, match=r"o\.ome\.zarr already exists; pass overwrite=True"):
        lp.export(lp.apply("gaussian", lp.open_image(zarr_v3_array), sigma=3.0), out)
    assert digest(out) == before  # nothing lost
    lp.export(lp.apply("gaussian", lp.open_image(zarr_v3_array), sigma=3.0), out, overwrite=True)
    np.testing.assert_array_equal(np.asarray(lp.open_image(out).levels[0]),
                                  ndi.gaussian_filter(VOLUME, 3.0))
    assert not [p for p in tmp_path.iterdir() if ".old-" in p.name or p.name.endswith(".partial")]


def test_refuses_to_write_into_its_input(zarr_v3_array, checked):
    checked(zarr_v3_array)
    res = lp.apply("gaussian", lp.open_image(zarr_v3_array), sigma=1.0)
    for target in (zarr_v3_array, zarr_v3_array / "inner.zarr"):
        with pytest.raises(ExportError, match="never write into their input"):
            lp.export(res, target, overwrite=True)
    with pytest.raises(ExportError, match="never write into their input"):
        lp.export(res, zarr_v3_array.parent, overwrite=True)  # would delete the input


def test_unwritable_place_is_a_clear_error(zarr_v3_array, tmp_path):
    res = lp.apply("gaussian", lp.open_image(zarr_v3_array), sigma=1.0)
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(ExportError, match=r"file\.txt does not exist|folder .*file\.txt"):
        lp.export(res, a_file / "out.zarr")
    ro = Path("/proc/lazyproc-out.zarr")  # read-only even for root
    with pytest.raises(ExportError, match="cannot write /proc/lazyproc-out.zarr"):
        lp.export(res, ro)


@pytest.fixture
def tiny_disk(tmp_path):
    """A 256 KiB tmpfs, where the machine allows mounting one (root with privileges)."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here to fill a disk")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_disk_full_is_a_clear_error_and_resumable(tmp_path, tiny_disk):
    noise = np.random.default_rng(0).integers(0, 65535, (16, 128, 128), dtype=np.uint16)
    path = tmp_path / "in.zarr"
    zarr.create_array(path, shape=noise.shape, chunks=(4, 64, 64), dtype="uint16")[:] = noise
    res = lp.apply("gaussian", lp.open_image(path), sigma=0.5)
    out = tiny_disk / "o.zarr"
    with pytest.raises(ExportError,
                       match=r"cannot write .*o\.zarr: No space left on device.*resume"):
        lp.export(res, out, format="zarr")
    assert not out.exists() and (tiny_disk / "o.zarr.partial").exists()


@pytest.mark.parametrize("options, message", [
    ({"format": "png"}, "format must be one of ome-zarr, zarr, tiff, ome-tiff (got 'png')"),
    ({"version": "0.6"}, "OME-Zarr version must be '0.4' or '0.5' (got '0.6')"),
    ({"levels": 0}, "levels must be >= 1 (got 0)"),
    ({"chunks": (4, 32)}, "chunks (4, 32) do not match the 3-D data"),
])
def test_bad_options_are_refused_before_anything_is_written(zarr_v3_array, tmp_path, options,
                                                           message):
    res = lp.apply("gaussian", lp.open_image(zarr_v3_array), sigma=1.0)
    with pytest.raises(ExportError) as info:
        lp.export(res, tmp_path / "o.ome.zarr", **options)
    assert str(info.value) == message
    assert list(tmp_path.iterdir()) == [zarr_v3_array]


def test_export_holds_the_cache_to_its_budget_and_restores_the_limit(zarr_v3_array, tmp_path):
    """Two exports at once, each with its own budget: during both the cache stays within
    the smaller, and afterwards the limit is the user's again, whichever ends first."""
    import threading

    from napari_lazyproc.ops import CACHE

    base = CACHE.max_bytes
    seen: dict[int, list[int]] = {2**20: [], 2**22: []}
    started = threading.Barrier(2)

    def run(budget):
        def progress(done, total):
            seen[budget].append(CACHE.max_bytes)

        started.wait()
        res = lp.apply("gaussian", lp.open_image(zarr_v3_array), sigma=float(budget % 7 + 1))
        lp.export(res, tmp_path / f"{budget}.zarr", format="zarr", cache_bytes=budget,
                  progress=progress)

    threads = [threading.Thread(target=run, args=(b,)) for b in seen]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(seen.values()) and max(max(v) for v in seen.values()) <= 2**22
    assert max(seen[2**20]) <= 2**20
    assert CACHE.max_bytes == base


def test_resume_refuses_a_partial_of_a_different_export(slow_input, tmp_path):
    import threading

    path, _ = slow_input
    cancel = threading.Event()
    with pytest.raises(lp.ops.Cancelled):
        lp.export(lp.apply("median", lp.open_image(path), size=5), tmp_path / "d.zarr",
                  format="zarr", progress=lambda done, total: cancel.set(), cancel=cancel)
    with pytest.raises(ExportError, match="was started by a different export"):
        lp.export(lp.apply("median", lp.open_image(path), size=3), tmp_path / "d.zarr",
                  format="zarr", resume=True)
    assert (tmp_path / "d.zarr.partial").exists() and not (tmp_path / "d.zarr").exists()


# --------------------------------------------------------------------- interruption

SCRIPT = textwrap.dedent("""
    import sys, napari_lazyproc as lp
    res = lp.apply("median", lp.open_image(sys.argv[1]), size=5)
    lp.export(res, sys.argv[2], format="zarr", resume="--resume" in sys.argv, workers=None)
""")


@pytest.fixture
def slow_input(tmp_path):
    data = np.random.default_rng(5).integers(0, 4000, (32, 256, 256), dtype=np.uint16)
    path = tmp_path / "slow.zarr"
    zarr.create_array(path, shape=data.shape, chunks=(4, 32, 32), dtype="uint16")[:] = data
    return path, data


@pytest.mark.slow
def test_sigkill_leaves_nothing_complete_and_resume_finishes(slow_input, tmp_path, checked):
    path, data = slow_input
    checked(path)
    out = tmp_path / "r.zarr"
    markers = tmp_path / "r.zarr.partial" / ".lazyproc" / "done-0"
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(path), str(out)])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if markers.exists() and len(os.listdir(markers)) >= 40:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the export finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists()  # nothing at the path looks complete
    n_done = len(list(markers.iterdir()))
    assert 0 < n_done < 512
    # a chunk half-written when the process died: its bytes no longer match its marker
    chunk = sorted(p for p in (tmp_path / "r.zarr.partial" / "c").rglob("*") if p.is_file())[0]
    chunk.write_bytes(chunk.read_bytes()[:10])
    with pytest.raises(ExportError, match="interrupted export; pass resume=True"):
        lp.export(lp.apply("median", lp.open_image(path), size=5), out, format="zarr")
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(path), str(out), "--resume"])
    assert done.returncode == 0
    resumed = np.asarray(zarr.open_array(out, mode="r"))
    np.testing.assert_array_equal(resumed, ndi.median_filter(data, size=5))
    straight = lp.export(lp.apply("median", lp.open_image(path), size=5), tmp_path / "s.zarr",
                         format="zarr")
    np.testing.assert_array_equal(resumed, np.asarray(zarr.open_array(straight, mode="r")))
    assert not (tmp_path / "r.zarr.partial").exists() and not (out / ".lazyproc").exists()


def test_cancel_stops_within_a_chunk_and_leaves_only_a_partial(slow_input, tmp_path):
    import threading

    path, _ = slow_input
    cancel = threading.Event()
    seen = []

    def progress(done, total):
        seen.append(done)
        if done >= 5:
            cancel.set()

    with pytest.raises(lp.ops.Cancelled):
        lp.export(lp.apply("median", lp.open_image(path), size=5), tmp_path / "c.zarr",
                  progress=progress, cancel=cancel)
    assert max(seen) < 512 and not (tmp_path / "c.zarr").exists()
    assert (tmp_path / "c.zarr.partial").exists()


# --------------------------------------------------------------------- a real cluster

@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cl, distributed.Client(cl) as client:
        yield client


@pytest.mark.slow
def test_cluster_output_equals_threaded(slow_input, tmp_path, cluster, checked):
    path, data = slow_input
    checked(path)
    res = lp.apply("gaussian", lp.open_image(path), sigma=1.5)
    a = lp.export(res, tmp_path / "threads.ome.zarr")
    b = lp.export(res, tmp_path / "cluster.ome.zarr", scheduler=cluster)
    np.testing.assert_array_equal(np.asarray(zarr.open_array(a / "0", mode="r")),
                                  np.asarray(zarr.open_array(b / "0", mode="r")))
    np.testing.assert_array_equal(np.asarray(zarr.open_array(b / "0", mode="r")),
                                  ndi.gaussian_filter(data, 1.5))


@pytest.mark.slow
def test_cluster_global_labels_export(tmp_path, cluster):
    blobs = ndi.gaussian_filter(np.random.default_rng(4).random((16, 96, 96)), 2) > 0.52
    path = tmp_path / "b.zarr"
    zarr.create_array(path, shape=blobs.shape, chunks=(4, 32, 32), dtype="uint8")[:] = blobs
    out = lp.export(lp.apply("label", lp.open_image(path), scope="global"),
                    tmp_path / "l.ome.zarr", scheduler=cluster)
    got = np.asarray(zarr.open_array(out / "0", mode="r"))
    expected, n = ndi.label(blobs)
    pairs = np.unique(np.stack([got.ravel(), expected.ravel()]), axis=1)
    assert n > 3 and pairs.shape[1] == n + 1


@pytest.mark.slow
def test_cluster_survives_a_killed_worker(slow_input, tmp_path, cluster):
    import threading

    path, data = slow_input
    res = lp.apply("median", lp.open_image(path), size=5)
    pids = cluster.run(os.getpid)
    killed = []

    def progress(done, total):
        if done >= 20 and not killed:
            victim = next(iter(pids.values()))
            killed.append(victim)
            os.kill(victim, signal.SIGKILL)

    out = lp.export(res, tmp_path / "k.zarr", format="zarr", scheduler=cluster, progress=progress)
    assert killed
    np.testing.assert_array_equal(np.asarray(zarr.open_array(out, mode="r")),
                                  ndi.median_filter(data, size=5))
    del threading


# --------------------------------------------------------------------- the CLI

def run_cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "napari_lazyproc.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300, **kw)


@pytest.mark.slow
def test_cli_process_end_to_end(zarr_v3_array, tmp_path, checked):
    checked(zarr_v3_array)
    out = tmp_path / "p.ome.zarr"
    done = run_cli("process", zarr_v3_array, "-o", out, "--step", "gaussian:sigma=2",
                   "--step", "threshold:value=2000", "--step", "label", "--exact")
    assert done.returncode == 0, done.stderr
    assert "export" in done.stderr and "chunk/s" in done.stderr and "100%" in done.stderr
    got = np.asarray(lp.open_image(out).levels[0])
    smooth = ndi.gaussian_filter(VOLUME, 2) > 2000
    expected = np.stack([ndi.label(p)[0] for p in smooth])  # label per frame (2D per z)
    np.testing.assert_array_equal(got > 0, smooth)
    assert got.max() > 0 and got.dtype == np.int32  # per-frame labels: scipy's dtype
    assert (got > 0).sum() == (expected > 0).sum()

    pipeline = tmp_path / "pipe.json"
    pipeline.write_text(json.dumps([{"op": "gaussian", "sigma": 2}]))
    again = run_cli("process", zarr_v3_array, "-o", out, "--pipeline", pipeline)
    assert again.returncode == 2 and "already exists" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    over = run_cli("process", zarr_v3_array, "-o", out, "--pipeline", pipeline, "--overwrite",
                   "--format", "ome-zarr-0.5", "--quiet", "--exact")
    assert over.returncode == 0, over.stderr
    np.testing.assert_array_equal(np.asarray(lp.open_image(out).levels[0]),
                                  ndi.gaussian_filter(VOLUME, 2))


@pytest.mark.parametrize("args, message", [
    (["--step", "gaussian:sigma=-1"], "sigma must be a number >= 0"),
    (["--step", "blur"], "unknown operation 'blur'"),
    (["--step", "gaussian:sigma"], "is not name=value"),
    (["--gpu"], "cupy"),
])
def test_cli_bad_input_exits_2(zarr_v3_array, tmp_path, args, message):
    if args == ["--gpu"] and lp.gpu_available()[0]:
        pytest.skip("a GPU is present")
    done = run_cli("process", zarr_v3_array, "-o", tmp_path / "x.zarr", *args)
    assert done.returncode == 2
    assert message in done.stderr.lower() or message in done.stderr
    assert not (tmp_path / "x.zarr").exists()


@pytest.mark.slow
def test_cli_interrupt_exits_130(slow_input, tmp_path):
    path, _ = slow_input
    out = tmp_path / "i.zarr"
    proc = subprocess.Popen(
        [sys.executable, "-m", "napari_lazyproc.cli", "process", str(path), "-o", str(out),
         "--step", "median:size=5", "--format", "zarr"],
        stderr=subprocess.PIPE, text=True,
    )
    markers = tmp_path / "i.zarr.partial" / ".lazyproc" / "done-0"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (markers.exists() and any(markers.iterdir())):
        time.sleep(0.02)
    assert proc.poll() is None, "the export finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "cancelled" in err and not out.exists()


@pytest.mark.slow
def test_cli_process_with_workers(zarr_v3_array, tmp_path):
    out = tmp_path / "w.zarr"
    done = run_cli("process", zarr_v3_array, "-o", out, "--step", "gaussian:sigma=1",
                   "--format", "zarr", "--workers", "2", "--quiet", "--exact")
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(np.asarray(zarr.open_array(out, mode="r")),
                                  ndi.gaussian_filter(VOLUME, 1))
