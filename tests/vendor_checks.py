"""What the vendor-file tests share: a skip off Linux, the bytes this process has read,
and the one-line refusal of a file."""

from __future__ import annotations

import os

import pytest

import napari_lazyproc as lp
from napari_lazyproc.io import ImageReadError

LINUX = pytest.mark.skipif(not os.path.exists("/proc/self/io"),
                           reason="counts bytes read through /proc/self/io (Linux)")


def bytes_read() -> int:
    """Bytes this process has read through read() calls so far (the kernel's count)."""
    with open("/proc/self/io") as f:
        return int(next(line for line in f if line.startswith("rchar")).split()[1])


def error(path, **options) -> str:
    with pytest.raises(ImageReadError) as info:
        lp.open_image(path, **options)
    message = str(info.value)
    assert os.fspath(path) in message and "\n" not in message
    return message
