"""The BOP dataset nerfreg-register writes, read back by a small reader written here from the BOP
format's documentation (docs/bop_datasets_format.md of the BOP toolkit), not by the writer's
code: file names, string keys, millimetres, OpenCV cameras, masks and boxes that agree with the
labels; then the same dataset through nerfreg-import-bop and back to the truth."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import trimesh

from conftest import run_cli


def _read_json_keys(path: Path) -> dict:
    data = json.loads(path.read_text())
    assert all(isinstance(k, str) and re.fullmatch(r"\d+", k) for k in data), f"{path}: keys must be image ids as strings"
    return {int(k): v for k, v in data.items()}


def read_scene(folder: Path) -> list[dict]:
    """One BOP scene as a list of images: K, world-to-camera and model-to-camera poses (mm), the
    image, its masks and its scene_gt_info entry."""
    cams = _read_json_keys(folder / "scene_camera.json")
    gts = _read_json_keys(folder / "scene_gt.json")
    infos = _read_json_keys(folder / "scene_gt_info.json")
    assert cams.keys() == gts.keys() == infos.keys()
    images = []
    for im_id in sorted(cams):
        cam, (gt,), (info,) = cams[im_id], gts[im_id], infos[im_id]
        assert {"cam_K", "cam_R_w2c", "cam_t_w2c", "depth_scale"} <= cam.keys()
        T_w2c, T_m2c = np.eye(4), np.eye(4)
        T_w2c[:3, :3], T_w2c[:3, 3] = np.reshape(cam["cam_R_w2c"], (3, 3)), cam["cam_t_w2c"]
        T_m2c[:3, :3], T_m2c[:3, 3] = np.reshape(gt["cam_R_m2c"], (3, 3)), gt["cam_t_m2c"]
        rgb = cv2.imread(str(folder / "rgb" / f"{im_id:06d}.png"), cv2.IMREAD_UNCHANGED)
        masks = {sub: cv2.imread(str(folder / sub / f"{im_id:06d}_000000.png"), cv2.IMREAD_GRAYSCALE) > 0
                 for sub in ("mask", "mask_visib")}
        images.append({"im_id": im_id, "K": np.reshape(cam["cam_K"], (3, 3)), "T_w2c": T_w2c, "T_m2c": T_m2c,
                       "obj_id": gt["obj_id"], "rgb": rgb, "info": info, **masks})
    return images


def test_an_independent_reader_finds_a_consistent_dataset_in_millimetres(labelled):
    root = labelled.out / "bop"
    info = json.loads((root / "models" / "models_info.json").read_text())
    assert list(info) == ["1"]
    model = trimesh.load(root / "models" / "obj_000001.ply")
    verts = np.asarray(model.vertices)
    truth = json.loads((labelled.case / "truth.json").read_text())
    assert truth["object"]["unit"] == "mm"
    assert abs(info["1"]["diameter"] - truth["object"]["diameter"]) < 0.03 * truth["object"]["diameter"]
    assert np.allclose(verts.min(0), [info["1"][f"min_{a}"] for a in "xyz"], atol=1e-3)
    assert np.abs(0.5 * (verts.min(0) + verts.max(0))).max() < 1e-3  # object-centred
    placed = {}
    for scene in ("000001", "000002"):
        images = read_scene(root / "scenes" / scene)
        assert len(images) == 10 and all(im["obj_id"] == 1 for im in images)
        T_world_obj = []
        for im in images:
            R = im["T_m2c"][:3, :3]
            assert np.allclose(R @ R.T, np.eye(3), atol=1e-6) and np.linalg.det(R) > 0
            h, w = im["mask"].shape
            assert im["rgb"].shape[:2] == (h, w)
            cam = verts @ R.T + im["T_m2c"][:3, 3]
            uv = cam[:, :2] / cam[:, 2:] * [im["K"][0, 0], im["K"][1, 1]] + im["K"][:2, 2]
            px = np.round(uv).astype(int)
            # a vertex on the outline may fall in a pixel whose centre misses the model: allow one pixel
            near = cv2.dilate(im["mask"].astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
            assert (cam[:, 2] > 0).all() and near[px[:, 1], px[:, 0]].mean() > 0.995
            x, y, bw, bh = im["info"]["bbox_obj"]
            assert np.allclose([x, y, x + bw, y + bh], [*px.min(0), *px.max(0)], atol=2)
            assert im["info"]["px_count_visib"] == im["mask_visib"].sum()
            T_world_obj.append(np.linalg.inv(im["T_w2c"]) @ im["T_m2c"])
        # a static object: every image puts it at the same place of the scene's world (mm)
        spread = np.ptp([T[:3, 3] for T in T_world_obj], axis=0).max()
        assert spread < 1e-3, spread
        placed[scene] = T_world_obj[0]
    # and that place is the truth's: the labelled model lies on the true part in sequence 1's world
    T = np.linalg.inv(np.asarray(truth["T_seq1_obj"])) @ placed["000001"]  # labelled model -> true model
    sample = verts[np.random.default_rng(0).permutation(len(verts))[:2000]]
    cad = trimesh.load(labelled.case / truth["object"]["model"])
    _, dist, _ = trimesh.proximity.closest_point(cad, sample @ T[:3, :3].T + T[:3, 3])
    assert np.median(dist) < 0.01 * truth["object"]["diameter"], np.median(dist)


def test_the_dataset_imports_back_to_the_label_poses(labelled, tmp_path):
    out = tmp_path / "imported"
    proc = run_cli("import_bop", "--bop-root", labelled.out / "bop", "--obj-id", 1, "--split", "scenes", "--out", out)
    assert proc.returncode == 0, proc.stderr
    from nerfreg_ns.data.nerfstudio_io import read_nerfstudio_dataset
    from nerfreg_ns.data.truth import read_truth
    from nerfreg_ns.geometry.cameras import c2w_opengl_to_opencv

    truth = read_truth(out / "truth.json")
    labels = [np.linalg.inv(im["T_m2c"]) for s in ("000001", "000002") for im in read_scene(labelled.out / "bop" / "scenes" / s)]
    n = 0
    for seq, T_seq_obj in (("seq1", truth.T_seq1_obj), ("seq2", truth.T_seq2_obj)):
        for frame in read_nerfstudio_dataset(out / seq).frames:
            T_obj_cam = np.linalg.inv(T_seq_obj) @ c2w_opengl_to_opencv(frame.T_world_camgl)
            assert min(np.abs(T_obj_cam - L).max() for L in labels) < 1e-4
            n += 1
    assert n == 20
