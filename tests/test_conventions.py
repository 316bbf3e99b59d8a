"""Conventions converted in one place (`geometry/`), tested both ways: pixel centres at the
nerfstudio and BOP boundaries, units, and the rotation exponential against an independent formula."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from nerfreg_ns.data.capture import CaptureOptions
from nerfreg_ns.data.mesh import load_mesh
from nerfreg_ns.data.procedural import make_default_part
from nerfreg_ns.data.synth import SynthOptions, make_case
from nerfreg_ns.geometry.transforms import make_T, so3_exp


@pytest.fixture(scope="module")
def cm_case(tmp_path_factory):
    """A non-square case (80 x 48) in centimetres, principal points off-centre per image."""
    mesh = make_default_part()
    mesh.apply_scale(0.1)
    out = tmp_path_factory.mktemp("conv") / "case"
    out.mkdir()
    make_case(mesh, "part_cm", "cm", SynthOptions(views=4, width=80, height=48, seed=2, capture=CaptureOptions(principal_jitter=6.0)), out)
    return out


def _bop_pixels(case, verts_mm):
    """Vertices (mm, object frame) projected by the BOP files alone, read as the format says:
    x = cam_K (R_m2c v + t_m2c), pixel (u, v)'s centre at (u, v)."""
    scene = case / "bop" / "onboarding_static" / "obj_000001_up"
    cams, gts = (json.loads((scene / f).read_text()) for f in ("scene_camera.json", "scene_gt.json"))
    out = []
    for key in sorted(cams, key=int):
        K = np.array(cams[key]["cam_K"]).reshape(3, 3)
        g = gts[key][0]
        x = verts_mm @ np.array(g["cam_R_m2c"]).reshape(3, 3).T + np.array(g["cam_t_m2c"])
        out.append((x @ K.T)[:, :2] / x[:, 2:])
    return out


def _nerfstudio_pixels(case, verts_unit):
    """The same vertices (case unit, object frame) projected by seq1's transforms.json alone, as
    nerfstudio reads it: OpenGL camera-to-world, its pixel j's centre at j + 0.5 (returned as
    OpenCV coordinates, i.e. minus half a pixel)."""
    truth = json.loads((case / "truth.json").read_text())
    p_seq = verts_unit @ np.array(truth["T_seq1_obj"])[:3, :3].T + np.array(truth["T_seq1_obj"])[:3, 3]
    out = []
    for fr in json.loads((case / "seq1" / "transforms.json").read_text())["frames"]:
        T = np.array(fr["transform_matrix"])
        p_gl = (p_seq - T[:3, 3]) @ T[:3, :3]  # world -> OpenGL camera
        x, y, z = p_gl[:, 0], -p_gl[:, 1], -p_gl[:, 2]
        u_ns, v_ns = fr["fl_x"] * x / z + fr["cx"], fr["fl_y"] * y / z + fr["cy"]
        out.append(np.stack([u_ns - 0.5, v_ns - 0.5], 1))
    return out


def test_a_vertex_lands_on_the_same_pixel_centre_through_bop_and_nerfstudio_files(cm_case):
    verts_mm = np.asarray(load_mesh(cm_case / "bop" / "models" / "obj_000001.ply").vertices)[::7]
    bop = _bop_pixels(cm_case, verts_mm)
    ns = _nerfstudio_pixels(cm_case, verts_mm / 10.0)  # the case is in cm
    frames = json.loads((cm_case / "seq1" / "transforms.json").read_text())["frames"]
    assert len({round(f["cx"], 3) for f in frames}) > 1 and all(f["w"] == 80 and f["h"] == 48 for f in frames)
    for a, b in zip(bop, ns, strict=True):
        assert np.abs(a - b).max() < 0.01


def test_nerfstudio_rays_go_through_the_surface_seen_at_each_pixel(cm_case):
    """A mask pixel's surface point, back-projected with the OpenCV intrinsics nerfreg reads from
    transforms.json, lies on the ray nerfstudio itself generates for that pixel."""
    from nerfstudio.cameras.cameras import Cameras

    from nerfreg_ns.data.nerfstudio_io import read_nerfstudio_dataset
    from nerfreg_ns.data.render import Renderer, backproject
    from nerfreg_ns.geometry.cameras import c2w_opengl_to_opencv, pixel_index, project
    from nerfreg_ns.geometry.transforms import invert

    truth = json.loads((cm_case / "truth.json").read_text())
    T_seq_obj = np.array(truth["T_seq1_obj"])
    renderer = Renderer(load_mesh(cm_case / "model.ply"))
    raw = json.loads((cm_case / "seq1" / "transforms.json").read_text())["frames"]
    for f, fr in zip(read_nerfstudio_dataset(cm_case / "seq1").frames, raw):
        T_seq_cam = c2w_opengl_to_opencv(f.T_world_camgl)
        view = renderer.render(f.K, invert(T_seq_obj) @ T_seq_cam, f.width, f.height)
        rows, cols, pts = backproject(view, f.K, T_seq_cam)
        cams = Cameras(camera_to_worlds=torch.tensor(f.T_world_camgl[None, :3], dtype=torch.float64),
                       fx=fr["fl_x"], fy=fr["fl_y"], cx=fr["cx"], cy=fr["cy"], width=f.width, height=f.height)
        rays = cams.generate_rays(camera_indices=0)
        o = rays.origins[rows, cols].double().numpy()
        d = rays.directions[rows, cols].double().numpy()
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        off = (pts - o) - ((pts - o) * d).sum(1, keepdims=True) * d
        assert np.linalg.norm(off, axis=1).max() < 1e-4 * truth["object"]["diameter"]
        # and projecting the point back gives the pixel it was seen in (masks are indexed [row, col])
        uv, _ = project(f.K, invert(T_seq_cam), pts)
        np.testing.assert_array_equal(pixel_index(uv), np.stack([cols, rows], 1))


def test_nerfstudio_intrinsics_convert_both_ways():
    from nerfreg_ns.geometry.cameras import K_from_nerfstudio, centred_K, nerfstudio_intrinsics

    K = centred_K(100.0, 80, 48, (3.25, -2.5))
    assert (K[0, 2], K[1, 2]) == (39.5 + 3.25, 23.5 - 2.5)  # the image centre, in OpenCV coordinates
    file = nerfstudio_intrinsics(K)
    assert (file["cx"], file["cy"]) == (40.0 + 3.25, 24.0 - 2.5)  # nerfstudio's centre is at W / 2
    np.testing.assert_array_equal(K_from_nerfstudio(file["fl_x"], file["fl_y"], file["cx"], file["cy"]), K)


def test_units_and_scaled_transforms_both_ways():
    from nerfreg_ns.geometry.units import mm_per_unit, scale_T

    T = make_T(so3_exp(np.array([[0.3, -0.2, 0.9]]))[0], [0.1, -0.25, 0.04])  # metres
    S = np.diag([1000.0, 1000.0, 1000.0, 1.0])
    np.testing.assert_allclose(scale_T(T, mm_per_unit("m")), S @ T @ np.linalg.inv(S), atol=1e-12)
    np.testing.assert_allclose(scale_T(scale_T(T, mm_per_unit("in")), 1 / mm_per_unit("in")), T, atol=1e-15)
    with pytest.raises(Exception, match="unknown unit 'furlong'"):
        mm_per_unit("furlong")
    with pytest.raises(Exception, match="no unit"):
        mm_per_unit(None)


def test_so3_exp_agrees_with_an_independent_formula():
    from scipy.spatial.transform import Rotation

    w = np.random.default_rng(4).normal(size=(200, 3)) * np.r_[np.full(100, 0.5), np.full(90, 2.0), np.full(10, 1e-9)][:, None]
    np.testing.assert_allclose(so3_exp(w), Rotation.from_rotvec(w).as_matrix(), atol=1e-12)


def test_a_reduced_view_keeps_points_on_the_same_place_of_the_image():
    """Shrinking a 1280x720 view to 320 px: a point's coordinates move as pixel edges do
    (s (uv + 0.5) - 0.5), back again with the inverse factor, and a disc's mask stays under the
    points of the disc."""
    from nerfreg_ns.geometry.cameras import centred_K, pixel_index, project, reduce_view, resized_K

    K = centred_K(900.0, 1280, 720, (7.0, -4.0))
    rng = np.random.default_rng(0)
    pts = np.c_[rng.uniform(-0.3, 0.3, (200, 2)), rng.uniform(2.0, 3.0, 200)]
    uv, _ = project(K, np.eye(4), pts)
    K_small = resized_K(K, (1280, 720), (320, 180))
    uv_small, _ = project(K_small, np.eye(4), pts)
    np.testing.assert_allclose(uv_small, 0.25 * (uv + 0.5) - 0.5, atol=1e-9)
    np.testing.assert_allclose(resized_K(K_small, (320, 180), (1280, 720)), K, atol=1e-9)
    # a disc of radius 100 px around pixel (700, 300): the reduced mask holds the disc's inner points
    cols, rows = np.meshgrid(np.arange(1280), np.arange(720))
    mask = (cols - 700) ** 2 + (rows - 300) ** 2 <= 100**2
    K2, small = reduce_view(K, mask, 320)
    assert small.shape == (180, 320)
    np.testing.assert_array_equal(K2, K_small)
    inner = pts[np.linalg.norm(uv - [700, 300], axis=1) < 95]
    far = pts[np.linalg.norm(uv - [700, 300], axis=1) > 105]
    for p, want in ((inner, True), (far, False)):
        ij = pixel_index(project(K2, np.eye(4), p)[0])
        ok = (ij[:, 0] >= 0) & (ij[:, 0] < 320) & (ij[:, 1] >= 0) & (ij[:, 1] < 180)
        assert np.all(small[ij[ok, 1], ij[ok, 0]] == want)
    K3, same = reduce_view(K_small, small, 320)  # already small enough: unchanged
    assert same is small and K3 is K_small
