"""BOP scenewise datasets: models/, scene_camera.json, scene_gt.json, scene_gt_info.json, rgb/,
mask/, mask_visib/.

BOP is OpenCV and millimetres: `cam_R_w2c`/`cam_t_w2c` map the scene's world into the camera,
`cam_R_m2c`/`cam_t_m2c` map the model into the camera. Keys of the scene files are image ids
as strings; images are `rgb/{im_id:06d}.png` (or .jpg), masks `mask_visib/{im_id:06d}_{gt:06d}.png`
(the same names under `mask/`, and under any extra mask folder a writer adds).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

from nerfreg_ns.data.mesh import models_info_entry
from nerfreg_ns.errors import NerfregError
from nerfreg_ns.geometry.cameras import bop_w2c_from_c2w_opencv, c2w_opencv_from_bop_w2c
from nerfreg_ns.geometry.transforms import check_rigid, make_T
from nerfreg_ns.io_utils import read_json, write_bytes_atomic, write_json_atomic


@dataclass
class BopGt:
    obj_id: int
    T_camcv_obj: np.ndarray  # (4, 4), mm
    mask_path: Path | None  # mask_visib of this instance, if present


@dataclass
class BopImage:
    im_id: int
    rgb_path: Path
    K: np.ndarray  # (3, 3)
    T_world_camcv: np.ndarray | None  # (4, 4) mm; None when scene_camera has no extrinsics
    gts: list[BopGt]


def model_filename(obj_id: int) -> str:
    return f"obj_{obj_id:06d}.ply"


def write_bop_models(models_dir: Path, meshes_mm: dict[int, trimesh.Trimesh], extra: dict[int, dict] | None = None) -> None:
    """Writes obj_XXXXXX.ply (mm, binary PLY) and models_info.json for each object id, its entry
    completed by `extra[obj_id]` (e.g. the symmetries)."""
    info = {}
    for obj_id, mesh in meshes_mm.items():
        write_bytes_atomic(Path(models_dir) / model_filename(obj_id), mesh.export(file_type="ply"))
        info[str(obj_id)] = {**models_info_entry(mesh), **(extra or {}).get(obj_id, {})}
    write_json_atomic(Path(models_dir) / "models_info.json", info)


def write_bop_scene(
    scene_dir: Path,
    rgb_pngs: list[bytes],
    Ks: list[np.ndarray],
    T_world_camcv_mm: list[np.ndarray],
    gts: list[list[tuple[int, np.ndarray, bytes]]],
    gt_info: list[list[dict]] | None = None,
    more_masks: dict[str, list[list[bytes]]] | None = None,
) -> None:
    """Writes one scene: rgb/, mask_visib/, scene_camera.json and scene_gt.json.

    `gts[i]` lists (obj_id, T_camcv_obj in mm (4, 4), mask_visib PNG bytes) for image i;
    `gt_info[i]` the scene_gt_info.json entries of the same instances, and `more_masks[folder][i]`
    more masks of them (PNG bytes) to write under `folder/` with BOP's file names.
    """
    scene_dir = Path(scene_dir)
    cams, gt_json = {}, {}
    for im_id, (png, K, T_wc) in enumerate(zip(rgb_pngs, Ks, T_world_camcv_mm, strict=True)):
        write_bytes_atomic(scene_dir / "rgb" / f"{im_id:06d}.png", png)
        R_w2c, t_w2c = bop_w2c_from_c2w_opencv(T_wc)
        cams[str(im_id)] = {
            "cam_K": np.asarray(K).reshape(-1).tolist(),
            "cam_R_w2c": R_w2c.reshape(-1).tolist(),
            "cam_t_w2c": t_w2c.tolist(),
            "depth_scale": 1.0,
        }
        entries = []
        for gt_id, (obj_id, T_co, mask_png) in enumerate(gts[im_id]):
            write_bytes_atomic(scene_dir / "mask_visib" / f"{im_id:06d}_{gt_id:06d}.png", mask_png)
            for folder, pngs in (more_masks or {}).items():
                write_bytes_atomic(scene_dir / folder / f"{im_id:06d}_{gt_id:06d}.png", pngs[im_id][gt_id])
            entries.append(
                {"obj_id": int(obj_id), "cam_R_m2c": T_co[:3, :3].reshape(-1).tolist(), "cam_t_m2c": T_co[:3, 3].tolist()}
            )
        gt_json[str(im_id)] = entries
    write_json_atomic(scene_dir / "scene_camera.json", cams)
    write_json_atomic(scene_dir / "scene_gt.json", gt_json)
    if gt_info is not None:
        write_json_atomic(scene_dir / "scene_gt_info.json", {str(i): entries for i, entries in enumerate(gt_info)})


def _find_rgb(scene_dir: Path, im_id: int) -> Path:
    for sub in ("rgb", "gray"):
        for ext in (".png", ".jpg", ".jpeg", ".tif"):
            p = scene_dir / sub / f"{im_id:06d}{ext}"
            if p.is_file():
                return p
    raise NerfregError(f"{scene_dir}: no image for im_id {im_id} in rgb/ or gray/")


def read_bop_scene(scene_dir: Path, require_gt: bool = False) -> list[BopImage]:
    """Reads a scene folder; scene_camera.json is required, scene_gt.json optional unless asked."""
    scene_dir = Path(scene_dir)
    if not scene_dir.is_dir():
        raise NerfregError(f"BOP scene folder not found: {scene_dir}")
    cam_file, gt_file = scene_dir / "scene_camera.json", scene_dir / "scene_gt.json"
    if not cam_file.is_file():
        raise NerfregError(f"{scene_dir}: no scene_camera.json: not a BOP scene folder")
    cams = read_json(cam_file, "scene_camera.json")
    if require_gt and not gt_file.is_file():
        raise NerfregError(f"{scene_dir}: no scene_gt.json, needed for the object poses")
    gts = read_json(gt_file, "scene_gt.json") if gt_file.is_file() else {}
    images = []
    for key in sorted(cams, key=int):
        cam = cams[key]
        im_id = int(key)
        where = f"{cam_file} image {im_id}"
        if "cam_K" not in cam:
            raise NerfregError(f"{where}: no cam_K")
        K = np.asarray(cam["cam_K"], float).reshape(3, 3)
        T_wc = None
        if "cam_R_w2c" in cam and "cam_t_w2c" in cam:
            T_wc = check_rigid(c2w_opencv_from_bop_w2c(cam["cam_R_w2c"], cam["cam_t_w2c"]), f"{where} cam_R_w2c/cam_t_w2c")
        inst = []
        for gt_id, g in enumerate(gts.get(key, [])):
            T_co = check_rigid(make_T(np.asarray(g["cam_R_m2c"], float).reshape(3, 3), g["cam_t_m2c"]), f"{gt_file} image {im_id} gt {gt_id}")
            mp = scene_dir / "mask_visib" / f"{im_id:06d}_{gt_id:06d}.png"
            inst.append(BopGt(int(g["obj_id"]), T_co, mp if mp.is_file() else None))
        images.append(BopImage(im_id, _find_rgb(scene_dir, im_id), K, T_wc, inst))
    if not images:
        raise NerfregError(f"{cam_file}: no images listed")
    return images


def read_models_info(models_dir: Path) -> dict[int, dict]:
    info = read_json(Path(models_dir) / "models_info.json", "models_info.json")
    return {int(k): v for k, v in info.items()}
