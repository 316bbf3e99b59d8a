"""Image and mask files: PNG in, PNG out, with clear errors. RGB order in memory (OpenCV is BGR)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from nerfreg_ns.errors import NerfregError
from nerfreg_ns.io_utils import write_bytes_atomic


def read_image(path: Path) -> np.ndarray:
    """Reads an image as uint8 (H, W, 3) RGB or (H, W, 4) RGBA."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise NerfregError(f"cannot read image: {path}")
    if img.dtype != np.uint8:
        img = (img / (65535.0 if img.dtype == np.uint16 else img.max() or 1) * 255).astype(np.uint8)
    if img.ndim == 2:
        return np.repeat(img[:, :, None], 3, axis=2)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


MASK_THRESHOLD = 0.5
"""A mask pixel is foreground above this fraction of its type's full scale (over 127 in an
8-bit file): soft, anti-aliased or JPEG-damaged masks are thresholded, not read as any-non-zero."""


def read_mask(path: Path) -> np.ndarray:
    """Reads a mask as bool (H, W): the largest channel above MASK_THRESHOLD of full scale. A
    mask holding only 0 and 1 (a label image) counts as binary."""
    m = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if m is None:
        raise NerfregError(f"cannot read mask: {path}")
    m = m.max(axis=2) if m.ndim == 3 else m
    if m.max() <= 1:
        return m > 0
    full = float(np.iinfo(m.dtype).max) if np.issubdtype(m.dtype, np.integer) else 1.0
    return m > MASK_THRESHOLD * full


def encode_png(img: np.ndarray) -> bytes:
    """PNG bytes of a uint8 RGB (H, W, 3), RGBA (H, W, 4) or grey/bool (H, W) image."""
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_RGBA2BGRA)
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def write_png(path: Path, img: np.ndarray) -> None:
    write_bytes_atomic(Path(path), encode_png(img))
