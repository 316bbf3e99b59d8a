"""The nerfreg dataparser: nerfstudio's, plus validation, masks as targets, and the visual hull.

Frames keep the dataset's own poses up to nerfstudio's usual centring and scaling, which is
recorded (dataparser_transforms.json) and undone by nerfreg-export.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Literal, NoReturn, Optional, Type

from pathlib import Path

import torch

from nerfstudio.data.dataparsers.nerfstudio_dataparser import Nerfstudio, NerfstudioDataParserConfig
from nerfstudio.data.scene_box import SceneBox

from nerfreg_ns.data.images import read_image, read_mask
from nerfreg_ns.data.nerfstudio_io import read_nerfstudio_dataset
from nerfreg_ns.errors import ExitCode, NerfregError
from nerfreg_ns.nerf.hull import checked_hull
from nerfreg_ns.stages import StageClock


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
    mask_dilate_px: float = 1.0
    """Carving forgives a point this many pixels outside a mask (pose noise, ragged masks)."""
    carve_votes: int = 2
    """Views that must put a point outside their masks before it is carved: one frame with a
    piece missing from its mask does not cut the part. Sequences of fewer than
    `few_views` frames carve on one view's word (each view's evidence counts there)."""
    few_views: int = 24
    """Below this many frames, `carve_votes` is 1."""
    min_seen_frac: float = 0.4
    """Space seen by fewer than this fraction of the cameras is not the object's (no cones
    towards single cameras)."""


def fail(message: str, exit_code: ExitCode = ExitCode.USAGE) -> NoReturn:
    """Ends `ns-train` (not our command: no run_cli) with one line and an exit code, no traceback."""
    print(f"ns-train: error: {message}", file=sys.stderr)  # both nerfreg methods parse data here
    raise SystemExit(exit_code)


class NerfregDataParser(Nerfstudio):
    config: NerfregDataParserConfig

    def _generate_dataparser_outputs(self, split: str = "train"):
        try:
            ds = read_nerfstudio_dataset(self.config.data, check_masks=True, min_frames=2, empty_masks="skip")
        except NerfregError as e:
            fail(str(e), e.exit_code)
        out = super()._generate_dataparser_outputs(split)
        if ds.skipped:
            out = _without_images(out, {Path(f.image_path).resolve() for f in ds.skipped})
        fg_files = out.mask_filenames
        out.mask_filenames = None  # nerfstudio would only sample inside them; nerfreg supervises with them
        out.metadata["fg_mask_filenames"] = fg_files
        if getattr(self, "_hull_cache", None) is None:  # train and eval splits are the same views
            self._hull_cache = self._hull(out, fg_files)
        aabb, occ, disagreement, flagged = self._hull_cache
        out.metadata["hull_aabb"], out.metadata["hull_occ"] = aabb, occ
        out.metadata["frame_disagreement"], out.metadata["frame_flagged"] = disagreement, flagged
        out.metadata["camera_rotations"] = out.cameras.camera_to_worlds[:, :3, :3].clone()
        out.scene_box = SceneBox(aabb=aabb.clone())
        return out

    def _hull(self, out, fg_files):
        masks = [torch.from_numpy(read_mask(fg_files[i]) if fg_files else read_image(f)[..., 3] > 127)
                 for i, f in enumerate(out.image_filenames)]
        cams = out.cameras
        K = cams.get_intrinsics_matrices()
        c = self.config
        clock = StageClock()
        try:
            hull = checked_hull(cams.camera_to_worlds, K, masks, c.hull_res, tol_px=c.mask_dilate_px,
                                votes=c.carve_votes if len(masks) >= c.few_views else 1, min_seen_frac=c.min_seen_frac,
                                clock=clock)
        except ValueError as e:
            fail(f"{c.data}: {e}")
        self.setup_stages = clock
        return hull


def _without_images(out, drop: set[Path]):
    """The dataparser outputs without the frames whose image file is in `drop`."""
    keep = [i for i, f in enumerate(out.image_filenames) if Path(f).resolve() not in drop]
    out.image_filenames = [out.image_filenames[i] for i in keep]
    if out.mask_filenames:
        out.mask_filenames = [out.mask_filenames[i] for i in keep]
    out.cameras = out.cameras[torch.tensor(keep)]
    return out
