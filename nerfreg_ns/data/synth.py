"""Synthetic registration cases: one object rendered from the upper and the lower hemisphere.

Each sequence lives in its own frame. Sequence 1's frame is the object frame turned about the
vertical and shifted (a turntable frame); sequence 2's frame is a uniformly random rigid
transform of the object frame, so T_seq1_seq2 is unknown to a method. Recorded camera poses may
carry noise; images are always rendered from the true poses.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import trimesh
from rich.progress import Progress

from nerfreg_ns.data.capture import CaptureOptions, background, gross_error, ragged_mask, room_light
from nerfreg_ns.data.bop_io import model_filename, write_bop_models, write_bop_scene
from nerfreg_ns.data.images import encode_png, write_png
from nerfreg_ns.data.mesh import diameter as mesh_diameter
from nerfreg_ns.data.nerfstudio_io import write_nerfstudio_dataset
from nerfreg_ns.data.render import Renderer
from nerfreg_ns.data.truth import truth_dict
from nerfreg_ns.errors import NerfregError
from nerfreg_ns.geometry.cameras import camera_poses, centred_K
from nerfreg_ns.geometry.points import evenly_spaced
from nerfreg_ns.geometry.transforms import (
    axis_angle_to_R,
    invert,
    make_T,
    random_rotation,
    random_small_rotation,
)
from nerfreg_ns.geometry.units import mm_per_unit, scale_T
from nerfreg_ns.io_utils import write_json_atomic


@dataclass(frozen=True)
class SequenceSpec:
    name: str  # "seq1" or "seq2"
    bop_name: str  # "up" or "down"
    elevation_deg: tuple[float, float]


@dataclass(frozen=True)
class SynthOptions:
    views: int = 60
    width: int = 128
    height: int = 128
    elevation1: tuple[float, float] = (10.0, 80.0)
    elevation2: tuple[float, float] = (-80.0, -10.0)
    seed: int = 0
    obj_id: int = 1
    capture: CaptureOptions = field(default_factory=CaptureOptions)


def make_case(mesh: trimesh.Trimesh, name: str, unit: str, opts: SynthOptions, out: Path) -> dict:
    """Renders both sequences into `out` (an empty folder); returns the truth dictionary.

    Writes seq1/ and seq2/ (nerfstudio), bop/ (models/ and onboarding_static/obj_XXXXXX_up,
    _down), model.ply (object frame, input units), truth.json and preview.png.
    """
    to_mm = mm_per_unit(unit)
    if opts.views < 2 or min(opts.width, opts.height) < 16:
        raise NerfregError("need at least 2 views per sequence and images of at least 16x16 pixels")
    rng = np.random.default_rng(opts.seed)
    diameter = mesh_diameter(mesh)
    # Object centred on its bounding box, as the cameras look at the origin.
    mesh = mesh.copy()
    mesh.apply_translation(-mesh.bounds.mean(axis=0))

    cap = opts.capture
    f = 1.2 * max(opts.width, opts.height)  # about 45 degrees field of view
    lo_fill, hi_fill = sorted(cap.fill)
    if not 0.05 <= lo_fill <= hi_fill <= 1.5:
        raise NerfregError(f"fill must lie between 0.05 and 1.5 of the image (got {cap.fill})")

    theta = rng.uniform(0, 2 * np.pi)
    T_seq1_obj = make_T(axis_angle_to_R([0, 0, 1], theta), rng.uniform(-0.5, 0.5, 3) * diameter)
    T_seq2_obj = make_T(random_rotation(rng), rng.uniform(-0.5, 0.5, 3) * diameter)
    # corruptions draw from their own stream: a clean case stays the same case with them off
    rng_cap = np.random.default_rng([opts.seed, 1])

    renderer = Renderer(mesh)
    specs = [
        (SequenceSpec("seq1", "up", opts.elevation1), T_seq1_obj),
        (SequenceSpec("seq2", "down", opts.elevation2), T_seq2_obj),
    ]
    case_id = uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | int(rng.integers(0, 2**63))).hex
    meta_common = {"unit": unit, "object": name, "diameter": diameter, "case_id": case_id}
    previews, bad = [], {}
    with Progress(transient=True) as progress:
        for spec, T_seq_obj in specs:
            task = progress.add_task(f"rendering {spec.name}", total=opts.views)
            fills = rng_cap.uniform(lo_fill, hi_fill, opts.views) if hi_fill > lo_fill else lo_fill
            distance = f * (0.5 * diameter) / (0.5 * np.asarray(fills) * min(opts.width, opts.height))
            key_obj = room_light(np.mean(spec.elevation_deg), rng_cap) if cap.lighting == "room" else None
            n_bad = int(round(cap.bad_frames * opts.views))
            bad_idx = set(rng_cap.choice(opts.views, n_bad, replace=False).tolist()) if n_bad else set()
            poses = camera_poses(opts.views, spec.elevation_deg, distance, rng, roll_deg=cap.roll_deg,
                                 target_jitter=cap.lookat_jitter * diameter, uneven=cap.uneven)
            rgbs, masks, Ks, T_recorded, T_true_obj_cam, bad[spec.name] = [], [], [], [], [], []
            for i, T_obj_cam in enumerate(poses):
                jitter = rng.uniform(-1, 1, 2) * cap.principal_jitter
                K = centred_K(f, opts.width, opts.height, (jitter[0], jitter[1]))
                view = renderer.render(K, T_obj_cam, opts.width, opts.height, key_obj=key_obj, specular=cap.specular)
                if not view.mask.any():
                    raise NerfregError(f"{spec.name}: the object is not visible in a view (empty mask); is the mesh degenerate?")
                noise = make_T(
                    random_small_rotation(rng, cap.rot_noise_deg),
                    rng.normal(size=3) * cap.trans_noise * diameter / np.sqrt(3),
                )
                rgb, mask = view.rgb, ragged_mask(view.mask, cap.mask_error_px, rng_cap)
                if i in bad_idx:
                    mask, kind = gross_error(mask, rng_cap)
                    bad[spec.name].append({"frame": i, "error": kind})
                if cap.background == "noisy":
                    bg = (background(opts.height, opts.width, rng_cap) * 255 + 0.5).astype(np.uint8)
                    rgb = np.where(view.mask[..., None], rgb, bg)
                rgbs.append(rgb)
                masks.append(mask)
                Ks.append(K)
                T_true_obj_cam.append(T_obj_cam)
                T_recorded.append(T_seq_obj @ T_obj_cam @ noise)
                progress.advance(task)
            write_nerfstudio_dataset(
                out / spec.name, rgbs, masks, Ks, T_recorded,
                {**meta_common, "sequence": spec.name, "elevation_deg": list(spec.elevation_deg)},
            )
            write_bop_scene(
                out / "bop" / "onboarding_static" / f"obj_{opts.obj_id:06d}_{spec.bop_name}",
                [encode_png(x) for x in rgbs],
                Ks,
                [scale_T(T, to_mm) for T in T_recorded],
                [[(opts.obj_id, scale_T(invert(T), to_mm), encode_png(m))] for T, m in zip(T_true_obj_cam, masks)],
            )
            previews.append(rgbs)

    mesh_mm = mesh.copy()
    mesh_mm.apply_scale(to_mm)
    write_bop_models(out / "bop" / "models", {opts.obj_id: mesh_mm})
    (out / "model.ply").write_bytes(mesh.export(file_type="ply"))
    truth = truth_dict(
        case_id, name, diameter, unit, "model.ply", T_seq1_obj, T_seq2_obj,
        extra={"sequences": {"seq1": "seq1", "seq2": "seq2"}, "bop_model": f"bop/models/{model_filename(opts.obj_id)}",
               "synth": asdict(opts), "bad_frames": bad},
    )
    write_json_atomic(out / "truth.json", truth)
    write_png(out / "preview.png", preview_grid(previews, ["seq1 (upper)", "seq2 (lower)"]))
    return truth


def preview_grid(sequences: list[list[np.ndarray]], labels: list[str], per_row: int = 6) -> np.ndarray:
    """A picture of `per_row` evenly spaced frames of each sequence, one labelled row each."""
    import cv2

    rows = []
    for frames, label in zip(sequences, labels):
        idx = evenly_spaced(len(frames), per_row)
        tiles = [cv2.resize(frames[i], (160, 160), interpolation=cv2.INTER_NEAREST) for i in idx]
        tiles += [np.zeros_like(tiles[0])] * (per_row - len(tiles))
        row = np.concatenate(tiles, axis=1)
        band = np.full((22, row.shape[1], 3), 40, np.uint8)
        cv2.putText(band, label, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        rows += [band, row]
    return np.concatenate(rows, axis=0)
