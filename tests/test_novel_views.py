"""Extra phase-2 viewpoints and the phase-2 learning-rate schedule."""

import numpy as np

from nerfreg_ns.data.synth import camera_poses
from nerfreg_ns.geometry.transforms import axis_angle_to_R, make_T
from nerfreg_ns.nerf.novel_views import camera_up, orbit_c2w_opengl
from nerfreg_ns.nerf.pipeline import phase_cosine


def _tilted_upper_cameras(centre, R):
    """Camera centres (N, 3) of an upper-hemisphere orbit, rotated by R and moved to `centre`."""
    T = make_T(R, centre)
    return np.stack([(T @ p)[:3, 3] for p in camera_poses(40, (10.0, 80.0), 3.0, np.random.default_rng(0))])


def test_camera_up_is_the_filmed_hemisphere():
    R = axis_angle_to_R(np.array([1.0, 2.0, 0.5]), 1.1)
    centre = np.array([0.3, -0.2, 1.0])
    up = camera_up(_tilted_upper_cameras(centre, R), centre)
    assert np.degrees(np.arccos(np.clip(up @ R[:, 2], -1, 1))) < 10  # the orbit's +z, rotated


def test_orbit_poses_look_at_the_centre_from_the_band():
    R = axis_angle_to_R(np.array([0.0, 1.0, 1.0]), 2.0)
    centre = np.array([1.0, 2.0, -0.5])
    cams = _tilted_upper_cameras(centre, R)
    poses = orbit_c2w_opengl(cams, centre, 12, (-35.0, 5.0), seed=1)
    assert poses.shape == (12, 3, 4)
    up = camera_up(cams, centre)
    for P in poses:
        eye, forward = P[:, 3], -P[:, 2]  # OpenGL cameras look along -z
        to_centre = (centre - eye) / np.linalg.norm(centre - eye)
        assert np.allclose(forward, to_centre, atol=1e-9)
        assert np.allclose(P[:, :3].T @ P[:, :3], np.eye(3), atol=1e-9) and np.linalg.det(P[:, :3]) > 0
        elevation = np.degrees(np.arcsin((eye - centre) @ up / np.linalg.norm(eye - centre)))
        assert -35.0 <= elevation <= 5.0
        assert np.isclose(np.linalg.norm(eye - centre), np.linalg.norm(cams - centre, axis=1).mean())


def test_phase_cosine_holds_then_decays_to_the_floor():
    f = [phase_cosine(s, 100, 300, 0.05) for s in range(0, 400)]
    assert f[0] == f[100] == 1.0
    assert np.isclose(f[200], 0.525) and np.isclose(f[300], 0.05) and f[399] == f[300]
    assert all(a >= b for a, b in zip(f, f[1:]))
    assert phase_cosine(50, 100, 100, 0.05) == 1.0  # no phase 2: untouched
