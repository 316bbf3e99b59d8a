import numpy as np
import pytest

from nerfreg_ns.errors import NerfregError
from nerfreg_ns.geometry.cameras import c2w_opencv_to_opengl, c2w_opengl_to_opencv, elevation_deg
from nerfreg_ns.geometry.transforms import (
    apply, axis_angle_to_R, check_rigid, invert, look_at_c2w_opencv, make_T, random_rotation, rotation_angle_deg,
    so3_exp,
)


def test_invert_and_compose_recover_points():
    rng = np.random.default_rng(0)
    T_a_b = make_T(random_rotation(rng), rng.normal(size=3))
    T_b_c = make_T(random_rotation(rng), rng.normal(size=3))
    p_c = rng.normal(size=(10, 3))
    T_a_c = T_a_b @ T_b_c
    np.testing.assert_allclose(apply(T_a_c, p_c), apply(T_a_b, apply(T_b_c, p_c)), atol=1e-12)
    np.testing.assert_allclose(apply(invert(T_a_c), apply(T_a_c, p_c)), p_c, atol=1e-12)


def test_rotation_angle_recovers_known_angles():
    for deg in (0.0, 1e-3, 5.0, 90.0, 179.0, 180.0):
        R = axis_angle_to_R([1.0, 2.0, -0.5], np.radians(deg))
        assert rotation_angle_deg(R) == pytest.approx(deg, abs=1e-4)


def test_so3_exp_turns_about_the_axis_by_the_norm():
    w = np.array([[0.0, 0.0, np.pi / 2], [1e-12, 0.0, 0.0], [0.3, -0.4, 1.2]])
    R = so3_exp(w)
    np.testing.assert_allclose(R[0] @ [1.0, 0, 0], [0, 1.0, 0], atol=1e-12)  # a quarter turn about z
    np.testing.assert_allclose(R[1], np.eye(3), atol=1e-11)
    np.testing.assert_allclose(R[2] @ w[2], w[2], atol=1e-12)  # the axis stays
    assert rotation_angle_deg(R[2]) == pytest.approx(np.degrees(np.linalg.norm(w[2])))
    np.testing.assert_allclose(R @ R.transpose(0, 2, 1), np.broadcast_to(np.eye(3), R.shape), atol=1e-12)


def test_random_rotations_are_proper_and_spread():
    rng = np.random.default_rng(1)
    Rs = [random_rotation(rng) for _ in range(200)]
    for R in Rs:
        np.testing.assert_allclose(R.T @ R, np.eye(3), atol=1e-12)
        assert np.linalg.det(R) == pytest.approx(1.0)
    # uniform on SO(3): the mean angle is pi/2 + 2/pi rad (about 126.5 deg)
    assert np.mean([rotation_angle_deg(R) for R in Rs]) == pytest.approx(126.5, abs=6)


@pytest.mark.parametrize(
    "T, msg",
    [
        (np.diag([2.0, 1, 1, 1]), "not orthonormal"),
        (np.diag([1.0, 1, -1, 1]), "reflection"),
        (np.eye(3), "must be 4x4"),
        (np.array([[1, 0.2, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]]), "not orthonormal"),
        (np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 1.0]]), "last row"),
        (np.full((4, 4), np.nan), "non-finite"),
    ],
)
def test_check_rigid_rejects(T, msg):
    with pytest.raises(NerfregError, match=msg):
        check_rigid(T)


def test_opencv_opengl_round_trip_and_axes():
    T = look_at_c2w_opencv(np.array([0.0, -3.0, 1.0]), np.zeros(3), np.array([0.0, 0.0, 1.0]))
    T_gl = c2w_opencv_to_opengl(T)
    np.testing.assert_allclose(c2w_opengl_to_opencv(T_gl), T, atol=1e-12)
    # OpenCV looks along +z, OpenGL along -z: both point at the target (the origin)
    to_target = -T[:3, 3] / np.linalg.norm(T[:3, 3])
    np.testing.assert_allclose(T[:3, 2], to_target, atol=1e-12)
    np.testing.assert_allclose(-T_gl[:3, 2], to_target, atol=1e-12)
    # image up (OpenGL +y) points to world +z as much as possible
    assert T_gl[2, 1] > 0.9
    assert elevation_deg(T[:3, 3]) == pytest.approx(np.degrees(np.arctan2(1, 3)))
