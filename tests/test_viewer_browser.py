"""The viewer in a real browser: ns-viewer serves a trained run on the CPU, headless Chromium
opens the page, and a screenshot taken in real time shows the object rendered.

Skipped when Debian's `chromium` is absent. The page is on loopback only.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, timeout: float) -> None:
    end = time.time() + timeout
    while time.time() < end:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(1)
    raise TimeoutError(url)


def _screenshot(url: str, out: Path, wait_s: float) -> np.ndarray:
    """Opens `url` in headless Chromium, waits in real time, returns the screenshot (H, W, 3)."""
    import cv2
    from websockets.sync.client import connect

    port = _free_port()
    profile = out.parent / "chromium-profile"
    browser = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", f"--remote-debugging-port={port}", "--window-size=1200,800", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        _wait_http(f"http://127.0.0.1:{port}/json/version", 30)
        pages = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json").read())
        ws_url = next(p["webSocketDebuggerUrl"] for p in pages if p.get("type") == "page")
        with connect(ws_url, max_size=2**26) as ws:
            ws.send(json.dumps({"id": 1, "method": "Page.navigate", "params": {"url": url}}))
            time.sleep(wait_s)
            ws.send(json.dumps({"id": 2, "method": "Page.captureScreenshot", "params": {"format": "png"}}))
            while True:
                msg = json.loads(ws.recv(timeout=60))
                if msg.get("id") == 2:
                    break
        png = base64.b64decode(msg["result"]["data"])
        out.write_bytes(png)
        return cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    finally:
        browser.kill()
        browser.wait()


def test_viewer_shows_the_object(run, tmp_path):
    port = _free_port()
    viewer = subprocess.Popen(
        [str(Path(sys.executable).parent / "ns-viewer"), "--load-config", str(run / "config.yml"),
         "--viewer.websocket-port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        _wait_http(f"http://127.0.0.1:{port}/", 180)
        shot = _screenshot(f"http://127.0.0.1:{port}/", tmp_path / "viewer.png", wait_s=25)
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
