"""Remote zarr / OME-Zarr over HTTP and S3, with real servers on 127.0.0.1.

Files are written by ome-zarr-py (and zarr) to a local folder, then served by Python's
``http.server`` or uploaded to moto's S3 server. The S3 libraries (s3fs, moto) are test
requirements: without them these tests fail, they do not skip.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import scipy.ndimage as ndi
import zarr
from servers import FileServer, S3Server

import napari_lazyproc as lp
from napari_lazyproc._reader import napari_get_reader
from napari_lazyproc.cli import main as cli_main
from napari_lazyproc.export import ExportError
from napari_lazyproc.io import EXPORT_MANIFEST, EXPORT_RECORD, ImageReadError, find_format

DATA = np.random.default_rng(7).integers(0, 4000, size=(8, 64, 64), dtype=np.uint16)
UM = "micrometer"


def write_ome(path, version: str = "0.4", chunks=(4, 16, 16)):
    """An OME-Zarr pyramid (3 levels) with a labels image, as ome-zarr-py writes it."""
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.writer import write_image, write_labels

    fmt = FormatV04() if version == "0.4" else FormatV05()
    group = zarr.open_group(path, mode="w", zarr_format=2 if version == "0.4" else 3)
    write_image(DATA, group, axes="zyx", scale_factors=[2, 4], fmt=fmt,
                scale={"z": 2.0, "y": 0.5, "x": 0.5}, axes_units={a: UM for a in "zyx"},
                storage_options={"chunks": chunks})
    write_labels((DATA > 3000).astype("uint32"), group, name="cells", axes="zyx", fmt=fmt,
                 scale_factors=[2], storage_options={"chunks": chunks})
    return path


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """An HTTP server over a folder holding OME-Zarr 0.4 and 0.5 pyramids and plain zarr."""
    root = tmp_path_factory.mktemp("www")
    write_ome(root / "v04.ome.zarr", "0.4")
    write_ome(root / "v05.ome.zarr", "0.5")
    zarr.create_array(root / "plain.zarr", shape=DATA.shape, chunks=(4, 32, 32),
                      dtype=DATA.dtype, dimension_names=["z", "y", "x"])[:] = DATA
    group = zarr.open_group(root / "pyramid.zarr", mode="w", zarr_format=2)
    for i, level in enumerate((DATA, DATA[:, ::2, ::2])):
        group.create_array(str(i), shape=level.shape, chunks=(4, 16, 16),
                           dtype=level.dtype)[:] = level
    zarr.consolidate_metadata(root / "pyramid.zarr")
    with FileServer(root) as server:
        yield server


@pytest.fixture(autouse=True)
def _forget_sniffs():
    """Each test fetches what it opens (no root documents reused from another test)."""
    from napari_lazyproc.io import _remote_target

    _remote_target._sniffed.clear()


@pytest.fixture
def server(served):
    served.clear()
    served.delay = 0.0
    served.fail.clear()
    served.reset.clear()
    served.hang.clear()
    yield served
    served.delay = 0.0


def chunk_requests(server: FileServer) -> list[str]:
    meta = ("zarr.json", ".zarray", ".zgroup", ".zattrs", ".zmetadata")
    return [r for r in server.requests if not r.endswith(meta)]


# ------------------------------------------------------------------------------ HTTP


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_http_ome_zarr_opens_like_the_local_file(server, version):
    name = "v04.ome.zarr" if version == "0.4" else "v05.ome.zarr"
    url = server.url(name)
    local = lp.open_image(server.root / name)
    img = lp.open_image(url)
    assert img.axes == "zyx" and img.scale == (2.0, 0.5, 0.5)
    assert img.units == (UM,) * 3
    assert [lvl.shape for lvl in img.levels] == [lvl.shape for lvl in local.levels]
    assert img.source["path"] == url and img.source["format"] == "ome-zarr"
    for remote_level, local_level in zip(img.levels, local.levels, strict=True):
        np.testing.assert_array_equal(remote_level.compute(), local_level.compute())
    assert [lab.name for lab in img.labels] == ["cells"]
    np.testing.assert_array_equal(img.labels[0].levels[0].compute(), DATA > 3000)


def test_http_plain_zarr_array_and_consolidated_pyramid(server):
    img = lp.open_image(server.url("plain.zarr"))
    assert img.axes == "zyx" and img.source["format"] == "zarr v3"
    np.testing.assert_array_equal(img.levels[0].compute(), DATA)
    pyr = lp.open_image(server.url("pyramid.zarr"))
    assert [lvl.shape for lvl in pyr.levels] == [DATA.shape, (8, 32, 32)]
    np.testing.assert_array_equal(pyr.levels[1].compute(), DATA[:, ::2, ::2])


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_http_one_plane_fetches_its_chunks_and_metadata_once(server, version):
    url = server.url("v04.ome.zarr" if version == "0.4" else "v05.ome.zarr")
    img = lp.open_image(url)
    opened = list(server.requests)
    assert all(r.endswith((EXPORT_MANIFEST, "job.json")) for r in chunk_requests(server))
    assert len(opened) == len(set(opened)), "a metadata document was fetched twice"
    server.clear()
    plane = np.asarray(img.display_levels()[0][5])  # what napari reads
    np.testing.assert_array_equal(plane, DATA[5])
    # z = 5 is in the second z-chunk (4 deep); 64 x 64 in 16 x 16 chunks: 4 x 4 of them
    expected = {f"{i}/{j}" for i in range(4) for j in range(4)}
    got = chunk_requests(server)
    assert len(got) == 16 and len(set(got)) == 16
    assert {"/".join(r.rsplit("/", 2)[-2:]) for r in got} == expected
    assert all("/s0/" in r and (r.split("/s0/")[1].lstrip("c/").startswith("1/"))
               for r in got)
    assert not [r for r in server.requests if r not in got], "metadata fetched again"
    # the same plane of a coarse level through dask: only that level's chunks
    server.clear()
    name = url.rsplit("/", 1)[-1]
    stored = zarr.open_array(server.root / name / "s2", mode="r")
    np.testing.assert_array_equal(np.asarray(img.levels[2][5]), stored[5])
    assert len(chunk_requests(server)) == 1 and "/s2/" in chunk_requests(server)[0]


def test_http_chunks_of_a_plane_are_fetched_concurrently(server):
    img = lp.open_image(server.url("v05.ome.zarr"))
    server.clear()
    server.delay = 0.1
    start = time.perf_counter()
    np.asarray(img.display_levels()[0][2])
    elapsed = time.perf_counter() - start
    n = len(chunk_requests(server))
    assert n == 16
    # one after another would take n * 0.1 s = 1.6 s
    assert elapsed < n * 0.1 / 4, f"{n} chunks with 100 ms latency took {elapsed:.2f} s"
    assert server.max_in_flight >= 8


def test_http_404_is_an_image_read_error_naming_the_url(server):
    url = server.url("missing.ome.zarr")
    with pytest.raises(ImageReadError) as info:
        lp.open_image(url)
    assert url in str(info.value) and "404" in str(info.value)
    # a .zarr URL is claimed, so napari shows this error rather than "no reader"
    with pytest.raises(ImageReadError, match="404"):
        napari_get_reader(url)(url)
    assert find_format(server.url("missing/data")) is None
    assert napari_get_reader(server.url("missing/data")) is None


def test_a_bucket_without_listing_opens_and_reads_missing_chunks_as_fill(server):
    """S3 (and CloudFront before it) answers 403, not 404, for a key that is not there when
    the reader may not list the bucket: the absent metadata documents and the chunks zarr
    never wrote (all fill value) are absent, not errors; a store with nothing is an error
    naming it."""
    sparse = np.zeros((8, 64, 64), np.uint16)
    sparse[:4] = 7  # the chunks of z 4-7 are all fill value: zarr does not write them
    zarr.create_array(server.root / "sparse.zarr", shape=sparse.shape, chunks=(4, 32, 32),
                      dtype=sparse.dtype)[:] = sparse
    server.missing_is_forbidden = True
    try:
        img = lp.open_image(server.url("v05.ome.zarr"))
        np.testing.assert_array_equal(img.levels[0].compute(), DATA)
        np.testing.assert_array_equal(lp.open_image(server.url("sparse.zarr")).levels[0]
                                      .compute(), sparse)
        with pytest.raises(ImageReadError, match="missing.ome.zarr"):
            lp.open_image(server.url("missing.ome.zarr"))
    finally:
        server.missing_is_forbidden = False


def test_http_timeout_is_an_image_read_error(server):
    import aiohttp

    server.hang["v04.ome.zarr/"] = 100
    server.hang_seconds = 1.5
    url = server.url("v04.ome.zarr")
    options = {"client_kwargs": {"timeout": aiohttp.ClientTimeout(total=0.3)}}
    with pytest.raises(ImageReadError) as info:
        lp.open_image(url, storage_options=options)
    assert url in str(info.value) and "timed out" in str(info.value)


def test_http_transient_errors_are_retried(server):
    url = server.url("v05.ome.zarr")
    img = lp.open_image(url)
    server.clear()
    server.fail["/s0/c/0/"] = 6  # 503 for the first 6 chunk requests of plane 0
    server.reset["/s0/c/0/1"] = 2  # and two dropped connections
    np.testing.assert_array_equal(np.asarray(img.levels[0][0]), DATA[0])
    assert server.fail["/s0/c/0/"] == 0 and server.reset["/s0/c/0/1"] == 0
    assert len(chunk_requests(server)) == 16 + 6 + 2


def test_http_persistent_server_error_gives_up_after_bounded_retries(server):
    url = server.url("v05.ome.zarr")
    img = lp.open_image(url)
    server.clear()
    server.fail["/s0/c/1/0/0"] = 100
    with pytest.raises(ImageReadError) as info:
        np.asarray(img.levels[0][5])
    message = str(info.value)
    assert f"{url}/s0/c/1/0/0" in message and "503" in message and "after 4 tries" in message
    assert server.requests.count("/v05.ome.zarr/s0/c/1/0/0") == 4


def test_http_error_on_open_names_url_and_status(server):
    server.fail["v04.ome.zarr/"] = 100
    url = server.url("v04.ome.zarr")
    with pytest.raises(ImageReadError) as info:
        lp.open_image(url)
    assert url in str(info.value) and "HTTP 503" in str(info.value)


def test_npe2_reader_claims_urls(server):
    url = server.url("v05.ome.zarr")
    reader = napari_get_reader(url)
    assert reader is not None
    layers = reader(url)
    assert [ltype for _, _, ltype in layers] == ["image", "labels"]
    data, meta, _ = layers[0]
    assert meta["scale"][-1] == 0.5
    np.testing.assert_array_equal(np.asarray(data[0][3]), DATA[3])


def test_cli_info_and_process_take_urls(server, tmp_path, capsys):
    url = server.url("v04.ome.zarr")
    assert cli_main(["info", url]) == 0
    out = capsys.readouterr().out
    assert "shape:     (8, 64, 64)" in out and url in out
    target = tmp_path / "out.ome.zarr"
    assert cli_main(["process", url, "-o", str(target), "--step", "gaussian:sigma=1",
                     "--quiet"]) == 0
    assert lp.open_image(target).shape == DATA.shape
    assert cli_main(["info", server.url("nothing.zarr")]) == 2


def test_http_cannot_be_written(server):
    with pytest.raises(ExportError, match="read-only"):
        lp.export(DATA, server.url("out.ome.zarr"))


def test_core_import_and_http_need_no_s3fs(server):
    code = (
        "import sys; sys.modules['s3fs'] = None\n"
        "import napari_lazyproc as lp\n"
        f"assert lp.open_image({server.url('plain.zarr')!r}).shape == (8, 64, 64)\n"
        "try:\n"
        "    lp.open_image('s3://bucket/x.zarr')\n"
        "except lp.ImageReadError as exc:\n"
        "    assert 's3fs' in str(exc) and 's3://bucket/x.zarr' in str(exc), exc\n"
        "else:\n"
        "    raise SystemExit('no error')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# -------------------------------------------------------------------------------- S3


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """moto's S3 server, the AWS variables pointing at it, and a bucket holding an
    OME-Zarr 0.4 pyramid and a 0.5 one."""
    import s3fs

    root = tmp_path_factory.mktemp("s3data")
    write_ome(root / "v04.ome.zarr", "0.4")
    write_ome(root / "v05.ome.zarr", "0.5")
    with S3Server() as server, pytest.MonkeyPatch.context() as mp:
        for key, value in server.environment.items():
            mp.setenv(key, value)
        s3fs.S3FileSystem.clear_instance_cache()
        server.upload(root / "v04.ome.zarr", "bucket", "v04.ome.zarr")
        server.upload(root / "v05.ome.zarr", "bucket", "v05.ome.zarr")
        yield server
        s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture
def s3_gets(monkeypatch):
    """Every key zarr asks of fsspec (one S3 GET each)."""
    from zarr.storage import FsspecStore

    keys: list[str] = []
    original = FsspecStore.get

    async def get(self, key, *args, **kwargs):
        keys.append(key)
        return await original(self, key, *args, **kwargs)

    monkeypatch.setattr(FsspecStore, "get", get)
    return keys


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_s3_opens_from_the_environment(s3, s3_gets, version):
    url = f"s3://bucket/v0{version[-1]}.ome.zarr"
    img = lp.open_image(url)  # AWS_ENDPOINT_URL and credentials from the environment
    assert img.scale == (2.0, 0.5, 0.5) and len(img.levels) == 3
    assert [lab.name for lab in img.labels] == ["cells"]
    assert len(s3_gets) == len(set(s3_gets)), "a metadata document was fetched twice"
    s3_gets.clear()
    np.testing.assert_array_equal(np.asarray(img.display_levels()[0][5]), DATA[5])
    assert len(s3_gets) == 16 and all(k.startswith("s0/") for k in s3_gets)
    assert img.levels[1].shape == (8, 32, 32) and img.levels[1].compute().any()


def test_s3_storage_options_and_anonymous_access(s3, monkeypatch, tmp_path):
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    options = {"anon": True, "client_kwargs": {"endpoint_url": s3.endpoint}}
    with pytest.raises(ImageReadError, match="403"):  # a private bucket
        lp.open_image("s3://bucket/v05.ome.zarr", storage_options=options)
    url = s3.upload(write_ome(tmp_path / "open.ome.zarr", "0.5"), "public", "open.ome.zarr")
    s3.make_public("public")
    img = lp.open_image(url, storage_options=options)
    np.testing.assert_array_equal(np.asarray(img.levels[0][1]), DATA[1])
    # AWS_NO_SIGN_REQUEST asks for anonymous access, as with the AWS command line
    monkeypatch.setenv("AWS_NO_SIGN_REQUEST", "yes")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    np.testing.assert_array_equal(np.asarray(lp.open_image(url).levels[0][2]), DATA[2])


def test_s3_missing_key_is_an_image_read_error(s3):
    with pytest.raises(ImageReadError) as info:
        lp.open_image("s3://bucket/nothing.ome.zarr")
    assert "s3://bucket/nothing.ome.zarr" in str(info.value) and "404" in str(info.value)


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_s3_export_writes_a_manifest_last_and_reads_back(s3, version):
    img = lp.open_image("s3://bucket/v04.ome.zarr")
    res = lp.apply("gaussian", img, sigma=1.0)
    url = f"s3://bucket/out-{version}.ome.zarr"
    out = lp.export(res, url, version=version, levels=2, overwrite=True)
    assert out == url
    fs = s3.filesystem()
    manifest = json.loads(fs.cat_file(f"bucket/out-{version}.ome.zarr/{EXPORT_MANIFEST}"))
    assert manifest["complete"] and manifest["levels"] == 2
    assert not fs.exists(f"bucket/out-{version}.ome.zarr/{EXPORT_RECORD}")
    back = lp.open_image(url)
    assert len(back.levels) == 2 and back.scale == (2.0, 0.5, 0.5)
    np.testing.assert_array_equal(back.levels[0].compute(), np.asarray(res[:, :, :]))
    with pytest.raises(ExportError, match="already exists"):
        lp.export(res, url, version=version)


def test_s3_interrupted_export_is_refused_then_resumed(s3):
    url = "s3://bucket/resumed.ome.zarr"
    data = np.arange(8 * 64 * 64, dtype=np.uint16).reshape(8, 64, 64)
    cancel = threading.Event()

    def progress(done, total):
        if done >= 1:
            cancel.set()

    with pytest.raises(lp.Cancelled):
        lp.export(data, url, chunks=(1, 64, 64), progress=progress, cancel=cancel,
                  workers=None)
    fs = s3.filesystem()
    assert fs.exists(f"bucket/resumed.ome.zarr/{EXPORT_RECORD}")
    assert not fs.exists(f"bucket/resumed.ome.zarr/{EXPORT_MANIFEST}")
    with pytest.raises(ImageReadError, match="unfinished export"):
        lp.open_image(url)
    with pytest.raises(ExportError, match="interrupted export"):
        lp.export(data, url, chunks=(1, 64, 64))
    assert lp.export(data, url, chunks=(1, 64, 64), resume=True) == url
    np.testing.assert_array_equal(lp.open_image(url).levels[0].compute(), data)
    assert fs.exists(f"bucket/resumed.ome.zarr/{EXPORT_MANIFEST}")


def test_s3_export_refuses_to_write_into_its_input(s3):
    img = lp.open_image("s3://bucket/v04.ome.zarr")
    with pytest.raises(ExportError, match="input"):
        lp.export(img, "s3://bucket/v04.ome.zarr/inner.ome.zarr", overwrite=True)


def test_cli_process_writes_to_s3(s3, server):
    url = "s3://bucket/cli.ome.zarr"
    assert cli_main(["process", server.url("v05.ome.zarr"), "-o", url,
                     "--step", "threshold:value=2000", "--quiet"]) == 0
    back = lp.open_image(url)
    np.testing.assert_array_equal(back.levels[0].compute() > 0, DATA > 2000)


def test_remote_image_pickles_for_dask_workers(server):
    import pickle

    img = lp.open_image(server.url("v05.ome.zarr"))
    level = pickle.loads(pickle.dumps(img.levels[0]))
    server.clear()
    np.testing.assert_array_equal(np.asarray(level[3]), DATA[3])
    assert len(chunk_requests(server)) == 16


def test_gs_without_gcsfs_names_the_missing_library(monkeypatch):
    monkeypatch.setitem(sys.modules, "gcsfs", None)
    with pytest.raises(ImageReadError) as info:
        lp.open_image("gs://bucket/x.ome.zarr")
    message = str(info.value)
    assert "gs://bucket/x.ome.zarr" in message and "gcsfs" in message
    assert "napari-lazyproc[remote]" in message


def test_an_overwritten_store_is_read_anew_through_the_cache(s3):
    """The chunk cache keys a remote array by a token that changes when the store is
    exported again: a filter of the new store never shows the old chunks."""
    url = "s3://bucket/rewritten.ome.zarr"
    for value in (1, 9):
        lp.export(np.full((64, 64), value, np.uint16), url, chunks=(32, 32), axes="yx",
                  overwrite=True)
        res = lp.apply("gaussian", lp.open_image(url), sigma=1.0)
        assert np.unique(np.asarray(res)).tolist() == [value]


def test_a_failed_manifest_write_leaves_an_unfinished_export_that_resume_finishes(
        s3, monkeypatch):
    """The resume record goes only after the manifest: a failure in between leaves a
    store that readers refuse and resume=True completes, never one with neither."""
    from napari_lazyproc.export import _remote as remote_export

    url = "s3://bucket/no-manifest.ome.zarr"
    data = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)
    real = remote_export.write_atomic

    def fail_on_manifest(path, text):
        if str(path).endswith(EXPORT_MANIFEST):
            raise OSError("the network went away")
        return real(path, text)

    monkeypatch.setattr(remote_export, "write_atomic", fail_on_manifest)
    with pytest.raises(ExportError, match="resume=True finishes it"):
        lp.export(data, url, chunks=(32, 32), axes="yx")
    fs = s3.filesystem()
    assert fs.exists(f"bucket/no-manifest.ome.zarr/{EXPORT_RECORD}")
    with pytest.raises(ImageReadError, match="unfinished export"):
        lp.open_image(url)
    monkeypatch.setattr(remote_export, "write_atomic", real)
    assert lp.export(data, url, chunks=(32, 32), axes="yx", resume=True) == url
    np.testing.assert_array_equal(lp.open_image(url).levels[0].compute(), data)
    assert not fs.exists(f"bucket/no-manifest.ome.zarr/{EXPORT_RECORD}")


def test_a_remote_store_is_a_snapshot_that_reopening_renews(server, tmp_path):
    """A URL cannot be stamped chunk by chunk cheaply: an open image keeps what it read
    (a snapshot, said in the README), and opening the URL again reads the new bytes."""
    folder = tmp_path / "changing.zarr"
    arr = zarr.create_array(folder, shape=(8, 64, 64), chunks=(4, 32, 32), dtype="uint16")
    arr[:] = DATA
    link = server.root / "changing.zarr"
    link.symlink_to(folder)
    url = server.url("changing.zarr")
    try:
        first = lp.open_image(url)
        res = lp.apply("gaussian", first, sigma=1.0, precision="exact")
        np.testing.assert_array_equal(np.asarray(res[3]), ndi.gaussian_filter(DATA, 1.0)[3])
        arr[:] = DATA // 2
        again = lp.open_image(url)
        assert again.levels[0].name != first.levels[0].name
        np.testing.assert_array_equal(
            np.asarray(lp.apply("gaussian", again, sigma=1.0, precision="exact")[3]),
            ndi.gaussian_filter(DATA // 2, 1.0)[3])
    finally:
        link.unlink()
