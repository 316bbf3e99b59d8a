"""Headless Chromium for the tests that look at a page as a person would: open a URL, wait in
real time, run JavaScript in the page, take a screenshot (Chrome DevTools protocol). Tests that
use it are skipped where Debian's `chromium` is absent."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float) -> None:
    end = time.time() + timeout
    while time.time() < end:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(1)
    raise TimeoutError(url)


def browse(url: str, out: Path, wait_s: float, scripts: tuple[str, ...] = ()) -> tuple[np.ndarray, list]:
    """Opens `url`, waits `wait_s` seconds, evaluates each of `scripts` in the page in turn and
    returns the screenshot taken after them (H, W, 3), saved to `out`, and the scripts' values."""
    import cv2
    from websockets.sync.client import connect

    port = free_port()
    browser = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--allow-file-access-from-files",
         f"--user-data-dir={out.parent / 'chromium-profile'}", f"--remote-debugging-port={port}", "--window-size=1200,800",
         "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/json/version", 30)
        pages = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json").read())
        ws_url = next(p["webSocketDebuggerUrl"] for p in pages if p.get("type") == "page")
        with connect(ws_url, max_size=2**26) as ws:
            def call(msg_id: int, method: str, params: dict) -> dict:
                ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
                while True:
                    msg = json.loads(ws.recv(timeout=60))
                    if msg.get("id") == msg_id:
                        return msg.get("result", {})

            call(1, "Page.navigate", {"url": url})
            time.sleep(wait_s)
            values = [call(10 + i, "Runtime.evaluate", {"expression": js, "returnByValue": True}).get("result", {}).get("value")
                      for i, js in enumerate(scripts)]
            png = base64.b64decode(call(2, "Page.captureScreenshot", {"format": "png"})["data"])
        out.write_bytes(png)
        shot = cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        return shot, values
    finally:
        browser.kill()
        browser.wait()


def screenshot(url: str, out: Path, wait_s: float) -> np.ndarray:
    """Opens `url` in headless Chromium, waits in real time, returns the screenshot (H, W, 3)."""
    return browse(url, out, wait_s)[0]
