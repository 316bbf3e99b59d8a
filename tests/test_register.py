"""nerfreg-register end to end on two tiny runs, its outputs, and its bad inputs."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from conftest import VENV_BIN, NoOptions, register_known
from nerfreg_ns.errors import NerfregError
from nerfreg_ns.hookspecs import hookimpl
from nerfreg_ns.registry import Hypothesis


def register(*args) -> subprocess.CompletedProcess:
    return subprocess.run([str(VENV_BIN / "nerfreg-register"), *map(str, args)], capture_output=True, text=True, timeout=1200)


@pytest.fixture(scope="module")
def registered(run, run2, tmp_path_factory):
    out = tmp_path_factory.mktemp("reg") / "out"
    proc = register("--seq1", run / "config.yml", "--seq2", run2 / "config.yml", "--generator", "fpfh-flips",
                    "--verifier", "combined", "--refiner", "icp", "--out", out, "--icp.iterations", "30")
    assert proc.returncode in (0, 3), proc.stderr[-3000:]
    return out, proc


def test_register_writes_every_output(registered):
    out, proc = registered
    for rel in ("registration.json", "merged.ply", "merged_mesh.ply", "report.png", "report.html", "labels_qa.json", "bop/models/obj_000001.ply",
                "bop/models/models_info.json", "bop/scenes/000001/scene_gt.json", "bop/scenes/000002/scene_camera.json"):
        assert (out / rel).is_file(), rel
    reg = json.loads((out / "registration.json").read_text())
    assert reg["plugins"]["refiner"]["options"]["iterations"] == 30  # the command line reached the plugin
    assert len(reg["hypotheses"]) >= 4 and reg["hypotheses"][0]["score"] >= reg["hypotheses"][-1]["score"]
    assert (proc.returncode == 3) == (not reg["confident"])
    assert 0 < reg["score_details"]["precision"] < 1 and "precision: one standard error is" in proc.stdout
    assert "The views allow a precision of" in (out / "report.html").read_text()


def test_registration_is_right_or_says_it_is_not_confident(registered, case, tmp_path):
    out, _ = registered
    reg = json.loads((out / "registration.json").read_text())
    proc = subprocess.run([str(VENV_BIN / "nerfreg-eval"), "--truth", str(case / "truth.json"), "--registration",
                           str(out / "registration.json"), "--out", str(tmp_path / "e.json")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    res = json.loads((tmp_path / "e.json").read_text())["registration"]
    # 350 steps on 16 64x64 views per side are too rough to always be right; a confident wrong
    # answer is the failure that matters (recovery itself is tested on perfect clouds in test_plugins)
    if reg["confident"]:
        assert res["surface_error_frac"] < 0.03, res


def test_bop_labels_put_the_model_on_the_masks(registered):
    from nerfreg_ns.data.bop_io import read_bop_scene
    from nerfreg_ns.data.images import read_mask
    from nerfreg_ns.geometry.cameras import in_image, pixel_index, project
    from nerfreg_ns.data.mesh import load_mesh

    out, _ = registered
    verts = np.asarray(load_mesh(out / "bop" / "models" / "obj_000001.ply").vertices)
    for scene in ("000001", "000002"):
        images = read_bop_scene(out / "bop" / "scenes" / scene, require_gt=True)
        inside = []
        for im in images[:: max(1, len(images) // 4)]:
            gt = im.gts[0]
            uv, _ = project(im.K, gt.T_camcv_obj, verts)
            mask = read_mask(gt.mask_path)
            ij = pixel_index(uv[in_image(uv, mask.shape[1], mask.shape[0])])
            inside.append(mask[ij[:, 1], ij[:, 0]].mean())
        assert np.mean(inside) > 0.8, (scene, inside)


def test_bad_inputs(run, tmp_path):
    proc = register("--seq1", run / "config.yml", "--seq2", run / "config.yml", "--verifier", "nope", "--out", tmp_path / "o")
    assert proc.returncode == 2 and "unknown verifier 'nope' (known: chamfer, combined, " in proc.stderr
    assert "silhouette" in proc.stderr.splitlines()[0]  # the message lists the known ones
    proc = register("--seq1", run / "config.yml", "--seq2", run / "config.yml", "--refiner", "icp,nope", "--out", tmp_path / "o")
    assert proc.returncode == 2 and "unknown refiner 'nope' (known: " in proc.stderr and "silhouette-icp" in proc.stderr
    proc = register("--list-plugins")
    assert proc.returncode == 0 and "point-icp" in proc.stdout and "[example]" in proc.stdout, proc.stdout
    proc = register("--seq1", tmp_path / "missing.yml", "--seq2", run / "config.yml", "--out", tmp_path / "o")
    assert proc.returncode == 2 and "run config not found" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_runs_of_different_objects_or_units_are_refused():
    from nerfreg_ns.register.inputs import check_same_object
    from nerfreg_ns.registry import SequenceData

    def seq(unit, obj, extent):
        pts = np.random.default_rng(0).uniform(-extent, extent, (500, 3))
        return SequenceData("s", pts, pts, 1.0, unit=unit, object_name=obj)

    with pytest.raises(NerfregError, match="different units"):
        check_same_object(seq("mm", "a", 1), seq("m", "a", 1))
    with pytest.raises(NerfregError, match="different objects"):
        check_same_object(seq("mm", "a", 1), seq("mm", "b", 1))
    with pytest.raises(NerfregError, match="differ in size"):
        check_same_object(seq("mm", "a", 100), seq("mm", "a", 0.1))


def test_embedding_pnp_proposes_hypotheses_through_the_features_interface(run):
    """Sequence 1 against itself: its own training images' queries against its own keys must give
    PnP solutions (rigid, with an inlier fraction). A tiny run's keys are too weak for accurate
    poses: their accuracy is measured on full runs (benchmarks/README.md), PnP itself in test_crops."""
    from nerfreg_ns.geometry.transforms import check_rigid
    from nerfreg_ns.plugins import load_registry
    from nerfreg_ns.register.inputs import load_sequence

    s1 = load_sequence(run / "config.yml", "seq1")
    assert s1.features is not None and s1.keys is not None and len(s1.images) == len(s1.masks)
    turns = s1.features.queries(np.zeros((64, 64, 3), np.uint8) + 128, s1.masks[0], 4)
    assert len(turns) == 4 and all(len(t.uv) == len(t.queries) > 0 for t in turns)
    hyps = load_registry(autoload=False).make("generator", "embedding-pnp", {"max_images": 6}).propose(s1, s1)
    assert hyps, "no image gave enough PnP inliers"
    for h in hyps:
        check_rigid(h.T_seq1_seq2, h.source)
        assert 0 < h.prior <= 1


def test_foreign_runs_are_refused_and_field_runs_only_by_plugins_that_need_keys(field_run, tmp_path):
    foreign = tmp_path / "nerfacto" / "config.yml"
    foreign.parent.mkdir()
    foreign.write_text("!!python/object:nerfstudio.engine.trainer.TrainerConfig\nmethod_name: nerfacto\n")
    proc = register("--seq1", foreign, "--seq2", foreign, "--out", tmp_path / "o")
    assert proc.returncode == 2 and "is a 'nerfacto' run, not nerfreg-feature or nerfreg-field" in proc.stderr, proc.stderr
    # a nerfreg-field run has no keys: the generator that matches keys says how to train them
    config = field_run / "config.yml"
    proc = register("--seq1", config, "--seq2", config, "--generator", "embedding-pnp", "--out", tmp_path / "o")
    assert proc.returncode == 2 and "has no trained keys" in proc.stderr, proc.stderr
    assert "--load-dir RUN/nerfstudio_models --pipeline.nerf-steps FIELD_STEPS --max-num-iterations" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()


class FarAway:
    """An inline generator whose only hypothesis moves sequence 2 beyond sequence 1."""

    __name__ = "far-away"

    @hookimpl
    def nerfreg_register_generators(self, register):
        class Gen:
            def __init__(self, cfg):
                pass

            def propose(self, seq1, seq2):
                T = np.eye(4)
                T[0, 3] = 10 * seq1.diameter
                return [Hypothesis(T, "far")]

        register("far", NoOptions, Gen)


def test_empty_overlap_is_refused_and_nothing_is_written(tmp_path):
    from nerfreg_ns.cli import register as reg_cli
    from nerfreg_ns.plugins import load_registry
    from nerfreg_ns.registry import SequenceData

    rng = np.random.default_rng(0)
    pts = rng.normal(size=(2000, 3))
    pts /= np.linalg.norm(pts, axis=1, keepdims=True)
    seqs = tuple(SequenceData(n, pts, pts, 2.0, masks=[], Ks=[], T_world_camcv=[]) for n in ("seq1", "seq2"))
    registry = load_registry([FarAway()], autoload=False)
    cmd = reg_cli.command(registry, ["--seq1", str(tmp_path / "a"), "--seq2", str(tmp_path / "b"), "--out", str(tmp_path / "o"),
                                     "--generator", "far", "--verifier", "chamfer", "--refiner", "none"])
    with pytest.raises(NerfregError, match="do not overlap: under the best hypothesis only 0.0%"):
        reg_cli.run(cmd, sequences=seqs)
    assert not (tmp_path / "o").exists()


def test_a_degenerate_hypothesis_is_dropped_not_fatal():
    from nerfreg_ns.plugins import load_registry
    from nerfreg_ns.register.run import register_sequences
    from nerfreg_ns.registry import SequenceData

    class Gen:
        def propose(self, seq1, seq2):
            bad = np.full((4, 4), np.nan)
            good = np.eye(4)
            good[:3, 3] = [0.01, 0, 0]
            return [Hypothesis(bad, "nan-pose"), Hypothesis(good, "near")]

    rng = np.random.default_rng(1)
    pts = rng.normal(size=(3000, 3)) * [1.0, 0.6, 0.3]
    seqs = [SequenceData(n, pts, pts / np.linalg.norm(pts, axis=1, keepdims=True), 3.0) for n in ("seq1", "seq2")]
    reg = load_registry(autoload=False)
    res = register_sequences(*seqs, Gen(), reg.make("verifier", "chamfer"), reg.make("refiner", "none"))
    assert [h.source for h in res.hypotheses] == ["near"] and res.dropped[0].startswith("nan-pose: ")
    with pytest.raises(NerfregError, match="every hypothesis was degenerate"):
        class AllBad(Gen):
            def propose(self, seq1, seq2):
                return super().propose(seq1, seq2)[:1]

        register_sequences(*seqs, AllBad(), reg.make("verifier", "chamfer"), reg.make("refiner", "none"))


def test_several_refiners_each_refine_every_hypothesis_and_the_verifier_picks():
    from nerfreg_ns.cli.register import refiner_names
    from nerfreg_ns.plugins import load_registry
    from nerfreg_ns.register.run import register_sequences
    from nerfreg_ns.registry import SequenceData

    shift = np.eye(4)
    shift[:3, 3] = [0.2, 0.0, 0.0]

    class Gen:
        def propose(self, seq1, seq2):
            return [Hypothesis(shift, "off-a"), Hypothesis(shift @ shift, "off-b")]

    class Stay:  # leaves the pose where it is
        def refine(self, seq1, seq2, T):
            return T

    class Snap:  # finds the truth
        def refine(self, seq1, seq2, T):
            return np.eye(4)

    class Broken:
        def refine(self, seq1, seq2, T):
            return np.full((4, 4), np.nan)

    rng = np.random.default_rng(2)
    pts = rng.normal(size=(3000, 3)) * [1.0, 0.6, 0.3]
    seqs = [SequenceData(n, pts, pts / np.linalg.norm(pts, axis=1, keepdims=True), 3.0) for n in ("seq1", "seq2")]
    chamfer = load_registry(autoload=False).make("verifier", "chamfer")
    res = register_sequences(*seqs, Gen(), chamfer, {"stay": Stay(), "snap": Snap(), "broken": Broken()})
    assert sorted((h.source, h.refiner) for h in res.hypotheses) == [
        ("off-a", "snap"), ("off-a", "stay"), ("off-b", "snap"), ("off-b", "stay")]
    assert res.best.refiner == "snap" and np.allclose(res.best.T_seq1_seq2, np.eye(4))
    assert len(res.dropped) == 2 and all(" by broken: " in d for d in res.dropped)
    # the stay results keep their offset: the verifier chose, the refiners did not collude
    assert max(h.score.value for h in res.hypotheses if h.refiner == "stay") < res.best.score.value
    assert refiner_names("silhouette-icp, icp") == ["silhouette-icp", "icp"]
    with pytest.raises(NerfregError, match="names a refiner twice"):
        refiner_names("icp,icp")


def test_merged_model_leaves_out_fog_and_moves_sequence_two_into_sequence_one():
    from nerfreg_ns.geometry.transforms import apply, axis_angle_to_R, invert, make_T
    from nerfreg_ns.register.outputs import MAX_SPREAD_FRAC, merged_cloud
    from nerfreg_ns.registry import SequenceData

    rng = np.random.default_rng(0)
    sphere = rng.normal(size=(4000, 3))
    sphere /= np.linalg.norm(sphere, axis=1, keepdims=True)  # a unit sphere: diameter 2
    fog = rng.uniform(-0.3, 0.3, (500, 3))  # inside it: what a field leaves in an unresolved cavity
    T_seq1_seq2 = make_T(axis_angle_to_R([1, 2, 3], 2.0), [0.5, -1.0, 2.0])
    spread1 = np.r_[np.full(len(sphere), 0.01), np.full(len(fog), 4 * MAX_SPREAD_FRAC * 2.0)]
    seq1 = SequenceData("seq1", np.r_[sphere, fog], np.r_[sphere, fog], 2.0, spread=spread1)
    seq2_pts = apply(invert(T_seq1_seq2), sphere)
    seq2 = SequenceData("seq2", seq2_pts, seq2_pts, 2.0)  # no spread recorded: every point kept
    pts, nrm = merged_cloud(seq1, seq2, T_seq1_seq2)
    radius = np.linalg.norm(pts, axis=1)
    np.testing.assert_allclose(radius, 1.0, atol=1e-9)  # no fog, and seq2's points land on seq1's sphere
    assert len(pts) == len(nrm) > 1000
    # with each point's boundary saved (the density's edge, here 2% further out), the merged model is built from it
    seq1.boundary = 1.02 * seq1.points
    seq2.boundary = apply(invert(T_seq1_seq2), 1.02 * sphere)
    pts, _ = merged_cloud(seq1, seq2, T_seq1_seq2)
    np.testing.assert_allclose(np.linalg.norm(pts, axis=1), 1.02, atol=1e-9)  # the fog still left out by its spread


def test_combined_prefers_the_flipped_over_capture_to_its_upside_down_twin():
    """A part symmetric upside down (a cylinder): with seq1 filmed from above and seq2 from below,
    the true pose and its upside-down twin fit equally; overlap alone prefers the twin (its
    lower half lands on the upper half), the capture prior picks the truth."""
    from nerfreg_ns.default_plugins.verifiers import Combined, CombinedConfig, opposition
    from nerfreg_ns.geometry.cameras import camera_poses
    from nerfreg_ns.geometry.transforms import apply, axis_angle_to_R, make_T
    from nerfreg_ns.registry import SequenceData

    rng = np.random.default_rng(1)
    a, z = rng.uniform(0, 2 * np.pi, 6000), rng.uniform(-1, 1, 6000)
    side = np.stack([np.cos(a), np.sin(a), z], 1)  # cylinder wall, radius 1, height 2
    cams = {name: camera_poses(12, el, 6.0, rng) for name, el in (("seq1", (20, 70)), ("seq2", (-70, -20)))}
    T_seq2_obj = make_T(axis_angle_to_R([0.3, -1, 0.5], 1.1), [1.0, 2.0, -0.5])  # seq2's own frame
    full = [np.ones((64, 64), bool)] * 12  # masks that hold everything: the silhouette term cannot decide
    K = [np.array([[20.0, 0, 31.5], [0, 20.0, 31.5], [0, 0, 1]])] * 12
    seq1 = SequenceData("seq1", side[side[:, 2] > -0.3], side[side[:, 2] > -0.3], 2.8, full, K, cams["seq1"])
    lower = side[side[:, 2] < 0.3]
    seq2 = SequenceData("seq2", apply(T_seq2_obj, lower), apply(T_seq2_obj, lower), 2.8, full, K,
                        [T_seq2_obj @ T for T in cams["seq2"]])
    T_true = np.linalg.inv(T_seq2_obj)
    T_flip = make_T(axis_angle_to_R([1, 0, 0], np.pi), [0, 0, 0]) @ T_true  # the upside-down twin
    assert opposition(seq1, seq2, T_true) > 0.95 and opposition(seq1, seq2, T_flip) < 0.05
    overlap_only = Combined(CombinedConfig(opposite_weight=0.0))
    assert overlap_only.score(seq1, seq2, T_flip).value > overlap_only.score(seq1, seq2, T_true).value
    default = Combined(CombinedConfig())
    assert default.score(seq1, seq2, T_true).value > default.score(seq1, seq2, T_flip).value


def test_an_unknown_unit_writes_no_bop_labels_and_says_how_to_give_it(perfect_tiny, tmp_path, capsys):
    import dataclasses

    truth, s1, s2 = perfect_tiny
    seqs = tuple(dataclasses.replace(s, unit=None) for s in (s1, s2))  # a nerfstudio dataset that says nothing
    assert register_known(truth, seqs, tmp_path / "o") == 0
    err = capsys.readouterr().err
    assert "no BOP labels written" in err and "--unit mm|cm|m|in" in err, err
    assert not (tmp_path / "o" / "bop").exists()
    reg = json.loads((tmp_path / "o" / "registration.json").read_text())
    assert reg["bop"] is None and reg["unit"] is None and "--unit" in reg["bop_not_written"]


def test_a_unit_given_on_the_command_line_scales_the_bop_labels_to_mm(perfect_tiny, tmp_path):
    import dataclasses

    import trimesh

    from nerfreg_ns.data.bop_io import read_bop_scene
    from nerfreg_ns.geometry.transforms import invert

    truth, s1, s2 = perfect_tiny
    seqs = tuple(dataclasses.replace(s, unit=None) for s in (s1, s2))  # the case is in mm; say it is in metres
    assert register_known(truth, seqs, tmp_path / "o", "--unit", "m") == 0
    out = tmp_path / "o"
    merged = trimesh.load(out / "merged_mesh.ply")
    bop = trimesh.load(out / "bop" / "models" / "obj_000001.ply")
    np.testing.assert_allclose(bop.extents, 1000 * merged.extents, rtol=1e-6)
    reg = json.loads((out / "registration.json").read_text())
    assert reg["unit"] == "m"
    image = read_bop_scene(out / "bop" / "scenes" / "000001", require_gt=True)[0]
    T_cam_obj_in_m = invert(s1.T_world_camcv[0]) @ np.array(reg["T_seq1_obj"])
    np.testing.assert_allclose(image.gts[0].T_camcv_obj[:3, 3], 1000 * T_cam_obj_in_m[:3, 3], rtol=1e-9)


def test_a_unit_that_contradicts_the_datasets_is_refused(perfect_tiny, tmp_path):
    truth, s1, s2 = perfect_tiny
    assert s1.unit == "mm"
    with pytest.raises(NerfregError, match="say their unit is mm, but --unit says m; leave --unit out"):
        register_known(truth, (s1, s2), tmp_path / "o", "--unit", "m")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("name, options", [("icp", {"max_points": 400}), ("silhouette-icp", {})])
def test_refiners_recover_a_known_pose_from_thinned_clouds(perfect_tiny, name, options):
    """The built-in refiners match a subset of sequence 2 to a thinned sequence 1 (the
    neighbour search is their cost): from 4 degrees and 3% of d off they still find the truth."""
    from nerfreg_ns.geometry.transforms import axis_angle_to_R, make_T, rotation_angle_deg
    from nerfreg_ns.plugins import load_registry

    truth, seq1, seq2 = perfect_tiny
    d = seq1.diameter
    off = make_T(axis_angle_to_R(np.array([0.6, -0.64, 0.48]), np.radians(4.0)), 0.03 * d * np.array([0.0, 0.6, 0.8]))
    refiner = load_registry(autoload=False).make("refiner", name, options)
    T = refiner.refine(seq1, seq2, off @ truth.T_seq1_seq2)
    dT = np.linalg.inv(truth.T_seq1_seq2) @ T
    assert rotation_angle_deg(dT[:3, :3]) < 1.0, (name, rotation_angle_deg(dT[:3, :3]))
    assert np.linalg.norm(dT[:3, 3]) < 0.01 * d, (name, np.linalg.norm(dT[:3, 3]) / d)
