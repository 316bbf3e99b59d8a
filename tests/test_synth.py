"""nerfreg-synth writes both formats, consistent with each other and with the truth."""

import json

import cv2
import numpy as np
import pytest

from conftest import TLESS, run_cli
from nerfreg_ns.data.images import read_mask
from nerfreg_ns.data.mesh import load_mesh
from nerfreg_ns.data.nerfstudio_io import read_nerfstudio_dataset
from nerfreg_ns.data.truth import read_truth
from nerfreg_ns.geometry.cameras import c2w_opencv_from_bop_w2c, c2w_opengl_to_opencv, in_image, pixel_index, project
from nerfreg_ns.geometry.transforms import apply, invert, make_T


def _bop_scene(case, side):
    folder = case / "bop" / "onboarding_static" / f"obj_000001_{side}"
    return folder, json.loads((folder / "scene_camera.json").read_text()), json.loads((folder / "scene_gt.json").read_text())


@pytest.mark.parametrize("seq, side", [("seq1", "up"), ("seq2", "down")])
def test_vertex_projects_to_same_pixel_through_nerfstudio_and_bop(tiny_case, seq, side):
    truth = read_truth(tiny_case / "truth.json")
    T_seq_obj = truth.T_seq1_obj if seq == "seq1" else truth.T_seq2_obj
    verts_obj = np.asarray(load_mesh(truth.model_path).vertices)
    ds = read_nerfstudio_dataset(tiny_case / seq)
    folder, cams, gts = _bop_scene(tiny_case, side)
    assert len(ds.frames) == len(cams) == 8
    for i, frame in enumerate(ds.frames):
        # nerfstudio: OpenGL camera-to-world in the sequence frame, model placed by the truth
        T_cam_seq = invert(c2w_opengl_to_opencv(frame.T_world_camgl))
        uv_ns, z_ns = project(frame.K, T_cam_seq @ T_seq_obj, verts_obj)
        # BOP: cam_K and the model-to-camera pose of scene_gt.json
        g = gts[str(i)][0]
        T_cam_obj = make_T(np.reshape(g["cam_R_m2c"], (3, 3)), g["cam_t_m2c"])
        uv_bop, z_bop = project(np.reshape(cams[str(i)]["cam_K"], (3, 3)), T_cam_obj, verts_obj)
        np.testing.assert_allclose(uv_ns, uv_bop, atol=1e-6)
        np.testing.assert_allclose(z_ns, z_bop, atol=1e-6)
        # ... and the world-to-camera of scene_camera.json is the sequence frame's
        T_seq_cam_bop = c2w_opencv_from_bop_w2c(cams[str(i)]["cam_R_w2c"], cams[str(i)]["cam_t_w2c"])
        np.testing.assert_allclose(invert(T_seq_cam_bop), T_cam_seq, atol=1e-9)
        # the projected model lands on the mask: the rendered pixels agree with both files
        # (vertices on the silhouette may fall just off a pixel-centre-sampled mask: allow 1 px)
        mask = cv2.dilate(read_mask(frame.mask_path).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        assert in_image(uv_ns, frame.width, frame.height).all(), "the object must be fully inside the image"
        ij = pixel_index(uv_ns)
        hits = mask[ij[:, 1], ij[:, 0]]
        assert hits.all()


def test_sequences_cover_their_hemispheres(tiny_case):
    truth = read_truth(tiny_case / "truth.json")
    for seq, T_seq_obj, sign in (("seq1", truth.T_seq1_obj, 1), ("seq2", truth.T_seq2_obj, -1)):
        ds = read_nerfstudio_dataset(tiny_case / seq)
        centres_obj = apply(invert(T_seq_obj), np.stack([f.T_world_camgl[:3, 3] for f in ds.frames]))
        elev = np.degrees(np.arctan2(centres_obj[:, 2], np.hypot(centres_obj[:, 0], centres_obj[:, 1])))
        assert np.all(sign * elev > 9) and np.all(sign * elev < 81)
    # seq2's frame is not seq1's: the unknown transform is far from the identity
    assert np.linalg.norm(truth.T_seq1_seq2 - np.eye(4)) > 0.5


def test_truth_against_itself_and_a_known_perturbation(tiny_case, tmp_path):
    from nerfreg_ns.evaluate import TruthModel, evaluate_registration
    from nerfreg_ns.geometry.transforms import axis_angle_to_R

    truth = read_truth(tiny_case / "truth.json")
    model = TruthModel(truth, samples=5000)
    zero = evaluate_registration(truth.T_seq1_seq2, model)
    for key in ("rotation_error_deg", "translation_error", "add_frac", "adds_frac", "surface_error_frac"):
        assert zero[key] == pytest.approx(0.0, abs=1e-5), key
    assert zero["success"]

    # rotate sequence 1 by 3 degrees about the model centre, then shift it by 2 mm
    c_seq1 = apply(truth.T_seq1_obj, np.zeros((1, 3)))[0]
    R = axis_angle_to_R([0.3, -1.0, 0.2], np.radians(3.0))
    T_delta = make_T(np.eye(3), [0.0, 2.0, 0.0]) @ make_T(R, c_seq1 - R @ c_seq1)
    res = evaluate_registration(T_delta @ truth.T_seq1_seq2, model)
    assert res["rotation_error_deg"] == pytest.approx(3.0, abs=1e-6)
    assert res["translation_error"] == pytest.approx(2.0, abs=1e-6)
    assert res["surface_error"] > 0.5 and not res["success"]

    # the same through the console script, with JSON output
    reg = tmp_path / "reg.json"
    reg.write_text(json.dumps({"T_seq1_seq2": (T_delta @ truth.T_seq1_seq2).tolist(), "case_id": truth.case_id}))
    proc = run_cli("eval", "--truth", tiny_case / "truth.json", "--registration", reg, "--out", tmp_path / "e.json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads((tmp_path / "e.json").read_text())["registration"]
    assert out["rotation_error_deg"] == pytest.approx(3.0, abs=1e-6)
    assert "surface_error_frac" in proc.stdout


def test_synth_cli_default_object_writes_both_formats(tmp_path):
    out = tmp_path / "case"
    proc = run_cli("synth", "--out", out, "--views", 4, "--width", 48, "--height", 48, "--rot-noise-deg", 1.0, "--trans-noise", 0.01)
    assert proc.returncode == 0, proc.stderr
    for rel in ("truth.json", "preview.png", "model.ply", "seq1/transforms.json", "seq2/masks/frame_00003.png",
                "bop/models/obj_000001.ply", "bop/models/models_info.json",
                "bop/onboarding_static/obj_000001_up/scene_camera.json",
                "bop/onboarding_static/obj_000001_down/mask_visib/000003_000000.png"):
        assert (out / rel).is_file(), rel
    assert not list(tmp_path.glob(".*partial")), "no temporary folder left behind"
    # recorded poses carry the requested noise; truth stays exact
    truth = read_truth(out / "truth.json")
    assert truth.object_name == "nerfreg_part"


@pytest.mark.skipif(not (TLESS / "obj_05.stl").is_file(), reason="needs ../shared/data/tless_scaled")
def test_synth_cli_on_tless_obj05(tmp_path):
    out = tmp_path / "obj05"
    proc = run_cli("synth", "--mesh", TLESS / "obj_05.stl", "--out", out, "--views", 4, "--width", 48, "--height", 48)
    assert proc.returncode == 0, proc.stderr
    truth = read_truth(out / "truth.json")
    info = json.loads((TLESS / "models_info.json").read_text())
    d_ref = next(v["diameter"] for k, v in info.items() if int(k) == 5)
    assert truth.diameter == pytest.approx(d_ref, rel=1e-3)
    bop_info = json.loads((out / "bop" / "models" / "models_info.json").read_text())["1"]
    assert bop_info["diameter"] == pytest.approx(d_ref, rel=1e-3)
    assert read_nerfstudio_dataset(out / "seq2").has_masks
