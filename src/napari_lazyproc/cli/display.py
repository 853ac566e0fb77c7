"""A screen for ``demo``: Xvfb started on a machine with none (a server, a container, CI)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time


def no_screen() -> bool:
    """Linux with neither an X nor a Wayland display (a server, a container, CI)."""
    return sys.platform == "linux" and not (os.environ.get("DISPLAY")
                                            or os.environ.get("WAYLAND_DISPLAY"))


def ensure_display() -> subprocess.Popen | None:
    """Start Xvfb when there is no screen, so ``demo --screenshot`` renders headless;
    returns the Xvfb process (the caller terminates it), or None when none was needed
    or none could start."""
    if not no_screen():
        return None
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        return None
    for n in range(99, 140):
        if os.path.exists(f"/tmp/.X11-unix/X{n}") or os.path.exists(f"/tmp/.X{n}-lock"):
            continue
        proc = subprocess.Popen(
            [xvfb, f":{n}", "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for _ in range(100):
            if os.path.exists(f"/tmp/.X11-unix/X{n}") or proc.poll() is not None:
                break
            time.sleep(0.1)
        if proc.poll() is not None or not os.path.exists(f"/tmp/.X11-unix/X{n}"):
            proc.terminate()
            continue  # this display did not start: the next one
        os.environ["DISPLAY"] = f":{n}"
        return proc
    return None
