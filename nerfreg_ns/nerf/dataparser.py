"""The nerfreg dataparser: nerfstudio's, plus validation, masks as targets, and the visual hull.

Frames keep the dataset's own poses up to nerfstudio's usual centring and scaling, which is
recorded (dataparser_transforms.json) and undone by nerfreg-export.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Literal, NoReturn, Optional, Type

import numpy as np
import torch

from nerfstudio.data.dataparsers.nerfstudio_dataparser import Nerfstudio, NerfstudioDataParserConfig
from nerfstudio.data.scene_box import SceneBox

from nerfreg_ns.data.images import read_image, read_mask
from nerfreg_ns.data.nerfstudio_io import read_nerfstudio_dataset
from nerfreg_ns.errors import ExitCode, NerfregError
from nerfreg_ns.nerf.hull import visual_hull


@dataclass
class NerfregDataParserConfig(NerfstudioDataParserConfig):
    """A nerfstudio dataset (transforms.json with masks or RGBA images) of one object."""

    _target: Type = field(default_factory=lambda: NerfregDataParser)
    orientation_method: Literal["pca", "up", "vertical", "none"] = "none"
    """Keep the dataset's orientation (the export undoes only centring and scale)."""
    center_method: Literal["poses", "focus", "none"] = "poses"
    eval_mode: Literal["fraction", "filename", "interval", "all"] = "all"
    """Train on every view: the surface and keys should cover the whole sequence."""
    downscale_factor: Optional[int] = 1
    hull_res: int = 128
    """Resolution of the carved occupancy grid."""
    mask_dilate_px: int = 1
    """Masks are grown by this much before carving, to forgive pose noise (raise it for noisy poses)."""


def fail(message: str, exit_code: ExitCode = ExitCode.USAGE) -> NoReturn:
    """Ends `ns-train` (not our command: no run_cli) with one line and an exit code, no traceback."""
    print(f"nerfreg-feature: error: {message}", file=sys.stderr)
    raise SystemExit(exit_code)


class NerfregDataParser(Nerfstudio):
    config: NerfregDataParserConfig

    def _generate_dataparser_outputs(self, split: str = "train"):
        try:
            read_nerfstudio_dataset(self.config.data, check_masks=True, min_frames=2)
        except NerfregError as e:
            fail(str(e), e.exit_code)
        out = super()._generate_dataparser_outputs(split)
        fg_files = out.mask_filenames
        out.mask_filenames = None  # nerfstudio would only sample inside them; nerfreg supervises with them
        out.metadata["fg_mask_filenames"] = fg_files
        if getattr(self, "_hull_cache", None) is None:  # train and eval splits are the same views
            self._hull_cache = self._hull(out, fg_files)
        aabb, occ = self._hull_cache
        out.metadata["hull_aabb"], out.metadata["hull_occ"] = aabb, occ
        out.metadata["camera_rotations"] = out.cameras.camera_to_worlds[:, :3, :3].clone()
        out.scene_box = SceneBox(aabb=aabb.clone())
        return out

    def _hull(self, out, fg_files):
        import cv2

        masks = []
        for i, img_file in enumerate(out.image_filenames):
            m = read_mask(fg_files[i]) if fg_files else read_image(img_file)[..., 3] > 127
            if self.config.mask_dilate_px > 0:
                k = 2 * self.config.mask_dilate_px + 1
                m = cv2.dilate(m.astype(np.uint8), np.ones((k, k), np.uint8)) > 0
            masks.append(torch.from_numpy(m))
        cams = out.cameras
        K = cams.get_intrinsics_matrices()
        try:
            return visual_hull(cams.camera_to_worlds, K, masks, self.config.hull_res)
        except ValueError as e:
            fail(f"{self.config.data}: {e}")
