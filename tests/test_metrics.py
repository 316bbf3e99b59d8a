import numpy as np
import pytest
import trimesh

from nerfreg_ns.data.mesh import SurfaceDistance, sample_surface
from nerfreg_ns.geometry import metrics
from nerfreg_ns.geometry.transforms import axis_angle_to_R, make_T


def test_chamfer_of_a_shifted_cloud():
    rng = np.random.default_rng(0)
    a = rng.uniform(size=(500, 3))
    # a lattice shifted by far less than its spacing: every nearest neighbour is its own shifted point
    grid = np.stack(np.meshgrid(*[np.arange(5.0)] * 3), -1).reshape(-1, 3)
    ch = metrics.chamfer(grid, grid + [0.1, 0, 0])
    assert ch["a_to_b"] == pytest.approx(0.1) and ch["b_to_a"] == pytest.approx(0.1)
    assert metrics.chamfer(a, a)["mean"] == 0.0


def test_surface_error_sees_symmetry_but_add_does_not():
    box = trimesh.creation.box(extents=[4.0, 2.0, 1.0])
    pts, _ = sample_surface(box, 4000, seed=1)
    dist = SurfaceDistance(box)
    T_gt = make_T(axis_angle_to_R([0, 1, 0], 0.3), [1.0, 2.0, 3.0])
    flip = make_T(axis_angle_to_R([0, 0, 1], np.pi), [0, 0, 0])  # a true symmetry of the box
    T_est = T_gt @ flip
    # distances measured in seq2's frame, where the box sits at the origin here
    assert metrics.surface_error(T_est, T_gt, pts, dist) < 1e-4
    assert metrics.rotation_error_deg(T_est, T_gt) == pytest.approx(180.0)
    assert metrics.add(T_est, T_gt, pts) > 0.5
    # a quarter turn is no symmetry of a 4x2x1 box
    quarter = make_T(axis_angle_to_R([0, 0, 1], np.pi / 2), [0, 0, 0])
    assert metrics.surface_error(T_gt @ quarter, T_gt, pts, dist) > 0.1


def test_add_of_a_pure_translation_is_its_length():
    pts = np.random.default_rng(2).normal(size=(100, 3))
    T_gt = make_T(np.eye(3), [0, 0, 0])
    T_est = make_T(np.eye(3), [0.3, 0.4, 0])
    assert metrics.add(T_est, T_gt, pts) == pytest.approx(0.5)
    assert metrics.translation_error(T_est, T_gt, np.zeros(3)) == pytest.approx(0.5)


def test_symmetries_off_the_principal_axes_are_found():
    from nerfreg_ns.geometry.symmetry import find_symmetries
    from nerfreg_ns.geometry.transforms import apply, rotation_angle_deg

    # a 1x1.02x3 prism: its two short principal moments nearly tie, so the SVD axes in that plane
    # are arbitrary; its half turns about x and y are symmetries all the same
    prism = trimesh.creation.box(extents=[1.0, 1.02, 3.0])
    prism.apply_transform(make_T(axis_angle_to_R([0, 0, 1], np.radians(25)), [0.3, -0.2, 0.1]))
    pts, _ = sample_surface(prism, 3000, seed=2)
    dist = SurfaceDistance(prism)
    found = find_symmetries(pts, dist, diameter=3.3, tol=0.005)
    turned_axes = []
    for T in found[1:]:
        assert np.mean(dist(apply(T, pts))) < 0.005 * 3.3
        w, v = np.linalg.eig(T[:3, :3])
        turned_axes.append(np.real(v[:, np.argmin(np.abs(w - 1))]))
    crosswise = [a for a, T in zip(turned_axes, found[1:]) if abs(a[2]) < 0.1 and abs(rotation_angle_deg(T[:3, :3]) - 180) < 2]
    assert crosswise, [rotation_angle_deg(T[:3, :3]) for T in found]
    lengthwise = [a for a, T in zip(turned_axes, found[1:]) if abs(a[2]) > 0.99 and abs(rotation_angle_deg(T[:3, :3]) - 180) < 2]
    assert lengthwise  # the half turn about the long axis, which the SVD does pin down


def test_camera_support_finds_surface_no_camera_sees(tmp_path):
    """A box with a smaller box hidden inside it: the hidden faces have no camera support, the
    outer faces have, and the model-to-reconstruction split judges a reconstruction of the
    outer box alone as right where the cameras see and far off only where they cannot."""
    import trimesh

    from nerfreg_ns.data.synth import SynthOptions, make_case
    from nerfreg_ns.data.truth import read_truth
    from nerfreg_ns.evaluate import TruthModel, camera_support, evaluate_reconstruction
    from nerfreg_ns.geometry.transforms import apply

    outer, inner = trimesh.creation.box((60, 50, 40)), trimesh.creation.box((12, 12, 12))
    make_case(trimesh.util.concatenate([outer, inner]), "nested", "mm", SynthOptions(views=16, width=64, height=64, seed=1), tmp_path)
    model = TruthModel(read_truth(tmp_path / "truth.json"), samples=4000)
    hidden = np.abs(model.points_obj).max(1) < 6.01
    support = camera_support(model)
    assert hidden.any() and (support[hidden] == 0).all()
    assert (support[~hidden] >= 2).mean() > 0.9
    recon = apply(model.truth.T_seq1_obj, sample_surface(outer, 20000, seed=2)[0])
    res = evaluate_reconstruction(recon, model, "seq1", well_seen_by=2)
    assert res["model_to_recon_well_seen_frac"] < 0.01 < res["model_to_recon_rest_frac"]
    # the top face is seen from above only: by sequence 1's 16 cameras (the flipped capture looks at the bottom)
    top = ~hidden & (model.normals_obj[:, 2] > 0.99)
    assert 0 < support[top].max() <= 16
