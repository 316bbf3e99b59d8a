"""BOP datasets -> two nerfstudio datasets (upper and lower sequence) and, when known, truth.json.

Two layouts:
- `train`: object-centric training scenes (T-LESS `train_primesense/OBJ`, `train_pbr`-style
  multi-object scenes). Every view of the object is split by the camera's elevation in the
  object frame; each half is re-expressed in a frame of its own (seeded random rigid
  transforms), and the true relative transform goes into truth.json.
- `onboarding`: BOP 2024 model-free `onboarding_static/obj_XXXXXX_up` and `_down` folders, each
  in its own world frame already (scene_camera.json); truth only when scene_gt.json allows it.
Units stay BOP's millimetres; intrinsics are per image.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.progress import track

from nerfreg_ns.data.bop_io import BopImage, model_filename, read_bop_scene, read_models_info
from nerfreg_ns.data.images import read_image, read_mask, write_png
from nerfreg_ns.data.mesh import diameter as mesh_diameter
from nerfreg_ns.data.mesh import load_mesh
from nerfreg_ns.data.nerfstudio_io import write_nerfstudio_dataset
from nerfreg_ns.data.synth import preview_grid
from nerfreg_ns.data.truth import truth_dict
from nerfreg_ns.errors import NerfregError
from nerfreg_ns.geometry.cameras import elevation_deg
from nerfreg_ns.geometry.transforms import axis_angle_to_R, invert, make_T, random_rotation
from nerfreg_ns.io_utils import write_json_atomic


@dataclass
class _View:
    rgb: np.ndarray
    mask: np.ndarray
    K: np.ndarray
    T_seq_camcv: np.ndarray


def _find_model(bop_root: Path, obj_id: int) -> Path | None:
    for sub in ("models", "models_eval", "models_cad"):
        p = bop_root / sub / model_filename(obj_id)
        if p.is_file():
            return p
    return None


def _diameter(model_path: Path, obj_id: int) -> float:
    """The object's diameter from models_info.json beside its model, else measured on the mesh."""
    info_file = model_path.parent / "models_info.json"
    info = read_models_info(model_path.parent).get(obj_id) if info_file.is_file() else None
    return float(info["diameter"]) if info else mesh_diameter(load_mesh(model_path))


def _segmented(rgb_path: Path, mask: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    rgb = read_image(rgb_path)[:, :, :3]
    if mask.shape != rgb.shape[:2]:
        raise NerfregError(f"{where}: mask size {mask.shape} differs from image size {rgb.shape[:2]}")
    if not mask.any():
        raise NerfregError(f"{where}: the mask is empty")
    return rgb * mask[:, :, None].astype(np.uint8), mask


def _write_outputs(out: Path, seqs: dict[str, list[_View]], meta: dict, truth: dict | None, model: Path | None) -> None:
    for name, views in seqs.items():
        if not views:
            raise NerfregError(f"no views for {name}: nothing on that side of the split")
        write_nerfstudio_dataset(
            out / name, [v.rgb for v in views], [v.mask for v in views], [v.K for v in views],
            [v.T_seq_camcv for v in views], {**meta, "sequence": name},
        )
    if model is not None:
        shutil.copyfile(model, out / "model.ply")
    if truth is not None:
        write_json_atomic(out / "truth.json", truth)
    write_png(out / "preview.png", preview_grid([[v.rgb for v in s] for s in seqs.values()], list(seqs)))


def import_train(bop_root: Path, split: str, obj_id: int, out: Path, seed: int = 0,
                 split_elevation_deg: float = 0.0) -> dict:
    """Imports every view of `obj_id` in `bop_root/split/*` split by elevation; returns the truth."""
    bop_root = Path(bop_root)
    split_dir = bop_root / split
    if not split_dir.is_dir():
        raise NerfregError(f"BOP split folder not found: {split_dir}")
    scenes = sorted(p for p in split_dir.iterdir() if p.is_dir())
    if not scenes:
        raise NerfregError(f"{split_dir}: no scene folders")
    model_path = _find_model(bop_root, obj_id)
    if model_path is None:
        raise NerfregError(f"{bop_root}: no {model_filename(obj_id)} under models/, models_eval/ or models_cad/ (the truth needs it)")
    rng = np.random.default_rng(seed)
    T_seq1_obj = make_T(axis_angle_to_R([0, 0, 1], rng.uniform(0, 2 * np.pi)), rng.uniform(-50, 50, 3))
    T_seq2_obj = make_T(random_rotation(rng), rng.uniform(-50, 50, 3))
    seqs: dict[str, list[_View]] = {"seq1": [], "seq2": []}
    images: list[tuple[Path, BopImage]] = []
    for scene in scenes:
        images += [(scene, im) for im in read_bop_scene(scene, require_gt=True)]
    for scene, im in track(images, description="importing views", transient=True):
        for gt_id, gt in enumerate(im.gts):
            if gt.obj_id != obj_id:
                continue
            where = f"{scene.name} image {im.im_id} gt {gt_id}"
            if gt.mask_path is None:
                raise NerfregError(f"{where}: no mask_visib/{im.im_id:06d}_{gt_id:06d}.png")
            rgb, mask = _segmented(im.rgb_path, read_mask(gt.mask_path), where)
            T_obj_cam = invert(gt.T_camcv_obj)
            upper = elevation_deg(T_obj_cam[:3, 3]) >= split_elevation_deg
            T_seq_obj = T_seq1_obj if upper else T_seq2_obj
            seqs["seq1" if upper else "seq2"].append(_View(rgb, mask, im.K, T_seq_obj @ T_obj_cam))
    if not seqs["seq1"] and not seqs["seq2"]:
        raise NerfregError(f"{split_dir}: object {obj_id} appears in no image")
    diameter = _diameter(model_path, obj_id)
    case_id = f"bop:{bop_root.name}:{split}:{obj_id}:{seed}"
    name = f"obj_{obj_id:06d}"
    truth = truth_dict(case_id, name, diameter, "mm", "model.ply", T_seq1_obj, T_seq2_obj,
                       extra={"source": {"bop_root": str(bop_root), "split": split, "layout": "train"}})
    meta = {"unit": "mm", "object": name, "diameter": diameter, "case_id": case_id}
    _write_outputs(out, seqs, meta, truth, model_path)
    return truth


def _onboarding_views(folder: Path, obj_id: int) -> tuple[list[_View], np.ndarray | None]:
    """Views of one onboarding folder and, if scene_gt.json gives it, T_world_obj (4, 4)."""
    views, T_world_obj = [], None
    for im in track(read_bop_scene(folder), description=f"importing {folder.name}", transient=True):
        where = f"{folder.name} image {im.im_id}"
        if im.T_world_camcv is None:
            raise NerfregError(f"{folder / 'scene_camera.json'} image {im.im_id}: no cam_R_w2c/cam_t_w2c (camera pose)")
        mask_path = folder / "mask_visib" / f"{im.im_id:06d}_000000.png"
        if not mask_path.is_file():
            raise NerfregError(f"{where}: no mask {mask_path.relative_to(folder)}")
        rgb, mask = _segmented(im.rgb_path, read_mask(mask_path), where)
        views.append(_View(rgb, mask, im.K, im.T_world_camcv))
        gts = [g for g in im.gts if g.obj_id == obj_id]
        if T_world_obj is None and gts:
            T_world_obj = im.T_world_camcv @ gts[0].T_camcv_obj
    return views, T_world_obj


def import_onboarding(bop_root: Path, obj_id: int, out: Path, split: str = "onboarding_static") -> dict | None:
    """Imports `split/obj_XXXXXX_up` (seq1) and `_down` (seq2); returns the truth if known."""
    bop_root = Path(bop_root)
    folders = {s: bop_root / split / f"obj_{obj_id:06d}_{side}" for s, side in (("seq1", "up"), ("seq2", "down"))}
    for f in folders.values():
        if not f.is_dir():
            raise NerfregError(f"onboarding folder not found: {f}")
    (v1, T1), (v2, T2) = (_onboarding_views(f, obj_id) for f in folders.values())
    model_path = _find_model(bop_root, obj_id)
    name = f"obj_{obj_id:06d}"
    diameter = _diameter(model_path, obj_id) if model_path is not None else None
    case_id = f"bop:{bop_root.name}:{split}:{obj_id}"
    truth = None
    if T1 is not None and T2 is not None and model_path is not None:
        truth = truth_dict(case_id, name, diameter, "mm", "model.ply", T1, T2,
                           extra={"source": {"bop_root": str(bop_root), "split": split, "layout": "onboarding"}})
    meta = {"unit": "mm", "object": name, "diameter": diameter, "case_id": case_id}
    _write_outputs(out, {"seq1": v1, "seq2": v2}, meta, truth, model_path if truth else None)
    return truth
