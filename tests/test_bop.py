"""BOP export -> import round trips, in both layouts."""

import numpy as np
import pytest

from conftest import run_cli
from nerfreg_ns.data.bop_io import write_bop_models, write_bop_scene
from nerfreg_ns.data.images import encode_png
from nerfreg_ns.data.nerfstudio_io import read_nerfstudio_dataset
from nerfreg_ns.data.procedural import make_default_part
from nerfreg_ns.data.render import Renderer
from nerfreg_ns.data.synth import camera_poses
from nerfreg_ns.data.truth import read_truth
from nerfreg_ns.geometry.cameras import K_matrix, c2w_opengl_to_opencv, elevation_deg
from nerfreg_ns.geometry.transforms import invert


def test_onboarding_round_trip_keeps_poses_and_intrinsics(tiny_case, tmp_path):
    out = tmp_path / "imported"
    proc = run_cli("import_bop", "--bop-root", tiny_case / "bop", "--obj-id", 1, "--out", out, "--layout", "onboarding")
    assert proc.returncode == 0, proc.stderr
    for seq in ("seq1", "seq2"):
        a, b = read_nerfstudio_dataset(tiny_case / seq), read_nerfstudio_dataset(out / seq)
        assert len(a.frames) == len(b.frames)
        for fa, fb in zip(a.frames, b.frames):
            np.testing.assert_allclose(fb.T_world_camgl, fa.T_world_camgl, atol=1e-6)
            np.testing.assert_allclose(fb.K, fa.K, atol=1e-6)
            assert (fb.width, fb.height) == (fa.width, fa.height)
    # principal points differ per image (jitter), and survived
    assert len({round(f.K[0, 2], 6) for f in a.frames}) > 1
    t_orig, t_imp = read_truth(tiny_case / "truth.json"), read_truth(out / "truth.json")
    np.testing.assert_allclose(t_imp.T_seq1_seq2, t_orig.T_seq1_seq2, atol=1e-6)


def _write_train_scene(root, n=16, size=64, seed=0):
    """A T-LESS train_primesense-like scene: views all around the object, world = object frame."""
    mesh = make_default_part()
    rng = np.random.default_rng(seed)
    renderer = Renderer(mesh)
    poses = camera_poses(n, (-70.0, 70.0), 250.0, rng)
    Ks = [K_matrix(80.0, 80.0, size / 2 + rng.uniform(-3, 3), size / 2 + rng.uniform(-3, 3)) for _ in poses]
    views = [renderer.render(K, T, size, size) for K, T in zip(Ks, poses)]
    write_bop_models(root / "models", {5: mesh})
    write_bop_scene(root / "train_primesense" / "000005", [encode_png(v.rgb) for v in views], Ks, poses,
                    [[(5, invert(T), encode_png(v.mask))] for T, v in zip(poses, views)])
    return poses, Ks


def test_train_layout_splits_by_elevation_and_keeps_poses(tmp_path):
    poses, Ks = _write_train_scene(tmp_path / "tless")
    out = tmp_path / "imported"
    proc = run_cli("import_bop", "--bop-root", tmp_path / "tless", "--obj-id", 5, "--out", out, "--seed", 7)
    assert proc.returncode == 0, proc.stderr
    truth = read_truth(out / "truth.json")
    upper = [i for i, T in enumerate(poses) if elevation_deg(T[:3, 3]) >= 0]
    lower = [i for i in range(len(poses)) if i not in upper]
    for seq, idx, T_seq_obj in (("seq1", upper, truth.T_seq1_obj), ("seq2", lower, truth.T_seq2_obj)):
        ds = read_nerfstudio_dataset(out / seq)
        assert len(ds.frames) == len(idx) > 0
        for frame, i in zip(ds.frames, idx):
            T_obj_cam = invert(T_seq_obj) @ c2w_opengl_to_opencv(frame.T_world_camgl)
            np.testing.assert_allclose(T_obj_cam, poses[i], atol=1e-6)
            np.testing.assert_allclose(frame.K, Ks[i], atol=1e-6)
    # each half lives in its own frame
    assert np.linalg.norm(truth.T_seq1_seq2 - np.eye(4)) > 0.5
    assert truth.diameter == pytest.approx(76.0, abs=0.5)
