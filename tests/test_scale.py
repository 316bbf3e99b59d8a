"""7-DoF registration (--estimate-scale): sequences posed each in its own scale, as SfM poses them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nerfreg_ns.errors import NerfregError
from nerfreg_ns.geometry.transforms import apply


@pytest.fixture(scope="module")
def perfect(tmp_path_factory):
    from nerfreg_ns.data.procedural import make_default_part
    from nerfreg_ns.data.synth import SynthOptions, make_case
    from nerfreg_ns.data.truth import read_truth
    from nerfreg_ns.register.synthetic import sequence_from_truth

    out = tmp_path_factory.mktemp("scale") / "case"
    out.mkdir()
    make_case(make_default_part(), "nerfreg_part", "mm", SynthOptions(views=12, width=96, height=96, seed=9), out)
    return out, read_truth(out / "truth.json"), sequence_from_truth(out, "seq1"), sequence_from_truth(out, "seq2")


def test_scaled_sequence_moves_cameras_with_the_points(perfect):
    """A scaled sequence must still project its points onto the same pixels."""
    from nerfreg_ns.geometry.cameras import project
    from nerfreg_ns.geometry.transforms import invert
    from nerfreg_ns.register.scale import scaled_sequence

    _, _, s1, _ = perfect
    big = scaled_sequence(s1, 3.5)
    assert big.diameter == pytest.approx(3.5 * s1.diameter)
    for i in (0, 5):
        uv, _ = project(s1.Ks[i], invert(s1.T_world_camcv[i]), s1.points[:200])
        uv_big, _ = project(big.Ks[i], invert(big.T_world_camcv[i]), big.points[:200])
        np.testing.assert_allclose(uv_big, uv, atol=1e-6)
    with pytest.raises(NerfregError, match="positive"):
        scaled_sequence(s1, -1.0)


def test_the_scale_polish_recovers_scale_and_pose_from_a_nearby_start(perfect):
    """Started 6% off in scale and a little off in pose, the similarity ICP lands on the truth."""
    from nerfreg_ns.geometry.metrics import rotation_error_deg
    from nerfreg_ns.geometry.transforms import axis_angle_to_R, make_T
    from nerfreg_ns.register.scale import scaled_sequence, similarity_icp

    _, truth, s1, s2 = perfect
    start = scaled_sequence(s2, 1.06)
    nudge = make_T(axis_angle_to_R([0.3, 1.0, 0.2], np.radians(2)), [0.01 * truth.diameter, 0, 0])
    rel, T = similarity_icp(s1, start, nudge @ truth.T_seq1_seq2)
    assert rel * 1.06 == pytest.approx(1.0, abs=0.005)
    assert rotation_error_deg(T, truth.T_seq1_seq2) < 0.5


def test_the_command_refuses_two_scales_unless_asked_and_reports_the_scale(perfect, tmp_path):
    """Without --estimate-scale the size check refuses (and names the flag); with it,
    registration.json gives scale, T_seq1_seq2 and S_seq1_seq2, and the BOP labels of sequence 2
    put the model on its masks."""
    from nerfreg_ns.cli import register as reg_cli
    from nerfreg_ns.data.bop_io import read_bop_scene
    from nerfreg_ns.data.images import read_mask
    from nerfreg_ns.data.mesh import load_mesh
    from nerfreg_ns.geometry.cameras import in_image, pixel_index, project
    from nerfreg_ns.plugins import load_registry
    from nerfreg_ns.register.scale import scaled_sequence

    _, truth, s1, s2 = perfect
    sfm2 = scaled_sequence(s2, 0.3)
    sfm2.unit = None  # SfM: no unit
    registry = load_registry(autoload=False)
    args = ["--seq1", "seq1", "--seq2", "seq2", "--out", str(tmp_path / "o")]
    with pytest.raises(NerfregError, match="--estimate-scale"):
        reg_cli.run(reg_cli.command(registry, args), sequences=(s1, sfm2))
    assert not (tmp_path / "o").exists()
    code = reg_cli.run(reg_cli.command(registry, [*args, "--estimate-scale"]), sequences=(s1, sfm2))
    assert code == 0
    reg = json.loads((tmp_path / "o" / "registration.json").read_text())
    assert reg["scale"] == pytest.approx(1 / 0.3, rel=0.01) and reg["unit"] == "mm" and reg["confident"]
    stages = {r["stage"]: r for r in reg["stages"]}
    assert {"register (search, refine, verify)", "merged model", "BOP labels", "report"} <= set(stages)
    assert all(r["time_s"] >= 0 and r["peak_rss_mb"] > 0 for r in reg["stages"])
    S = np.array(reg["S_seq1_seq2"])
    np.testing.assert_allclose(apply(S, sfm2.points[:300]), apply(truth.T_seq1_seq2, s2.points[:300]), atol=0.01 * truth.diameter)
    verts = np.asarray(load_mesh(tmp_path / "o" / "bop" / "models" / "obj_000001.ply").vertices)
    inside = []
    for im in read_bop_scene(tmp_path / "o" / "bop" / "scenes" / "000002", require_gt=True)[::3]:
        gt = im.gts[0]
        uv, _ = project(im.K, gt.T_camcv_obj, verts)
        mask = read_mask(gt.mask_path)
        ij = pixel_index(uv[in_image(uv, mask.shape[1], mask.shape[0])])
        inside.append(mask[ij[:, 1], ij[:, 0]].mean())
    assert np.mean(inside) > 0.9, inside
