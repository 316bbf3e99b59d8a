"""nerfstudio datasets (`transforms.json`, images, masks) written and read with validation.

`transform_matrix` is camera-to-world in the OpenGL convention, in the dataset's own frame and
units. Intrinsics are per frame (T-LESS principal points differ per image); the file's cx, cy
are nerfstudio's (pixel centres at +0.5), a `Frame.K` is OpenCV's (`geometry.cameras`). nerfreg's own
metadata (unit, object, case id) sits under the top-level key "nerfreg"; nerfstudio ignores it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
import sys
from typing import Any, Literal, Sequence

import numpy as np

from nerfreg_ns.data.images import read_image, read_mask, write_png
from nerfreg_ns.errors import NerfregError
from nerfreg_ns.geometry.cameras import K_from_nerfstudio, c2w_opencv_to_opengl, nerfstudio_intrinsics
from nerfreg_ns.geometry.transforms import check_rigid
from nerfreg_ns.io_utils import read_json, write_json_atomic


@dataclass
class Frame:
    """One posed image of a sequence, in the dataset's frame ("world")."""

    image_path: Path
    mask_path: Path | None
    T_world_camgl: np.ndarray  # (4, 4) nerfstudio / OpenGL camera-to-world
    K: np.ndarray  # (3, 3) OpenCV: pixel (u, v)'s centre at (u, v)
    width: int
    height: int
    index: int = -1
    """Position in transforms.json's frame list."""


@dataclass
class NerfstudioDataset:
    root: Path
    frames: list[Frame]
    meta: dict[str, Any] = field(default_factory=dict)
    skipped: list[Frame] = field(default_factory=list)
    """Frames left out because their mask is empty (`empty_masks="skip"`)."""

    @property
    def has_masks(self) -> bool:
        return all(f.mask_path is not None for f in self.frames)


def write_nerfstudio_dataset(
    out_dir: Path,
    rgbs: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    Ks: Sequence[np.ndarray],
    T_world_camcv: Sequence[np.ndarray],
    meta: dict[str, Any],
) -> None:
    """Writes images/, masks/ and transforms.json for posed RGB images (OpenCV poses and
    intrinsics in, nerfstudio's conventions out)."""
    out_dir = Path(out_dir)
    frames = []
    for i, (rgb, mask, K, T) in enumerate(zip(rgbs, masks, Ks, T_world_camcv, strict=True)):
        img_rel, mask_rel = f"images/frame_{i:05d}.png", f"masks/frame_{i:05d}.png"
        write_png(out_dir / img_rel, rgb)
        write_png(out_dir / mask_rel, mask)
        h, w = rgb.shape[:2]
        frames.append(
            {
                "file_path": img_rel,
                "mask_path": mask_rel,
                "transform_matrix": c2w_opencv_to_opengl(T).tolist(),
                **nerfstudio_intrinsics(K),
                "w": int(w), "h": int(h),
            }
        )
    write_json_atomic(
        out_dir / "transforms.json",
        {"camera_model": "OPENCV", "frames": frames, "nerfreg": meta},
    )


def _intrinsic(frame: dict, meta: dict, key: str, where: str) -> float:
    value = frame.get(key, meta.get(key))
    if value is None:
        raise NerfregError(f"{where}: no '{key}' in the frame or at the top level of transforms.json")
    return float(value)


def read_nerfstudio_dataset(root: Path, check_masks: bool = True, min_frames: int = 1,
                            empty_masks: Literal["error", "skip"] = "error") -> NerfstudioDataset:
    """Reads and validates a nerfstudio dataset folder.

    Checks that transforms.json exists and parses, that every listed image (and mask) exists,
    that poses are finite rigid 4x4 matrices, and, with `check_masks`, that each frame has a
    mask (a mask file, or an alpha channel in the image) of the image's size. A frame with an
    empty mask is an error, or with `empty_masks="skip"` left out with a warning (all empty, or
    fewer than `min_frames` left: an error).
    """
    root = Path(root)
    tf = root / "transforms.json"
    if not root.is_dir():
        raise NerfregError(f"dataset folder not found: {root}")
    meta = read_json(tf, "transforms.json")
    raw_frames = meta.get("frames") if isinstance(meta, dict) else None
    if not isinstance(raw_frames, list) or not raw_frames:
        raise NerfregError(f"{tf}: no frames listed")
    if len(raw_frames) < min_frames:
        raise NerfregError(f"{tf}: {len(raw_frames)} frame(s), at least {min_frames} are needed")
    frames = []
    for i, fr in enumerate(raw_frames):
        where = f"{tf} frame {i}"
        if "file_path" not in fr or "transform_matrix" not in fr:
            raise NerfregError(f"{where}: needs 'file_path' and 'transform_matrix'")
        img = root / fr["file_path"]
        if not img.is_file():
            raise NerfregError(f"{where}: image listed but not found: {img}")
        mask = root / fr["mask_path"] if fr.get("mask_path") else None
        if mask is not None and not mask.is_file():
            raise NerfregError(f"{where}: mask listed but not found: {mask}")
        T = check_rigid(fr["transform_matrix"], f"{where} transform_matrix")
        K = K_from_nerfstudio(*(_intrinsic(fr, meta, k, where) for k in ("fl_x", "fl_y", "cx", "cy")))
        w, h = int(_intrinsic(fr, meta, "w", where)), int(_intrinsic(fr, meta, "h", where))
        frames.append(Frame(img, mask, T, K, w, h, i))
    ds = NerfstudioDataset(root, frames, meta.get("nerfreg", {}) if isinstance(meta, dict) else {})
    if check_masks:
        for i, fr in enumerate(frames):
            m = load_foreground(fr)
            if m is None:
                raise NerfregError(f"{tf} frame {i}: no mask_path and no alpha channel; nerfreg needs the object segmented")
            if m.shape != (fr.height, fr.width):
                raise NerfregError(f"{tf} frame {i}: the mask is {m.shape[1]}x{m.shape[0]} but the frame says "
                                   f"{fr.width}x{fr.height} ({fr.mask_path or fr.image_path})")
            if not m.any():
                if empty_masks == "error":
                    raise NerfregError(f"{tf} frame {i}: the mask is empty ({fr.mask_path or fr.image_path})")
                ds.skipped.append(fr)
        if ds.skipped:
            ds.frames = [f for f in frames if not any(f is s for s in ds.skipped)]
            if len(ds.frames) < max(min_frames, 1):
                raise NerfregError(f"{tf}: {len(ds.skipped)} of {len(frames)} masks are empty; "
                                   f"at least {max(min_frames, 1)} frames with the object are needed")
            names = ", ".join(f.image_path.name for f in ds.skipped[:5]) + (" ..." if len(ds.skipped) > 5 else "")
            print(f"warning: {tf}: {len(ds.skipped)} frame(s) with an empty mask skipped: {names}", file=sys.stderr)
    return ds


def load_foreground(frame: Frame) -> np.ndarray | None:
    """The frame's object mask (H, W) bool from its mask file or the image's alpha; None if neither."""
    if frame.mask_path is not None:
        return read_mask(frame.mask_path)
    img = read_image(frame.image_path)
    return img[:, :, 3] > 127 if img.shape[2] == 4 else None
