"""The viewer in a real browser: ns-viewer serves a trained run on the CPU, headless Chromium
opens the page, and a screenshot taken in real time shows the object rendered.

Skipped when Debian's `chromium` is absent. The page is on loopback only.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from chromium import CHROMIUM, free_port, screenshot, wait_http

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium")


def test_viewer_shows_the_object(run, tmp_path):
    port = free_port()
    viewer = subprocess.Popen(
        [str(Path(sys.executable).parent / "ns-viewer"), "--load-config", str(run / "config.yml"),
         "--viewer.websocket-port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/", 180)
        shot = screenshot(f"http://127.0.0.1:{port}/", tmp_path / "viewer.png", wait_s=25)
    finally:
        viewer.kill()
        viewer.wait()
    h, w, _ = shot.shape
    canvas = shot[:, : int(w * 0.6)].astype(int)  # the 3D view; the control panel is on the right
    black = (canvas.max(-1) < 12).mean()
    grey = ((canvas.min(-1) > 60) & (canvas.max(-1) - canvas.min(-1) < 40)).mean()
    # the rendered frame is our object on black: much black, and some of the object's grey
    assert black > 0.2, f"no rendered image in the viewer (black fraction {black:.2f}); see {tmp_path / 'viewer.png'}"
    assert grey > 0.002, f"no object in the rendered image (grey fraction {grey:.4f})"
