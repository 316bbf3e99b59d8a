"""The object's edge along each view ray (`export.boundary_points`): on a face whose density
rises to a low plateau, half the ray's opacity is reached well inside the part; the edge of the
density is where the face is, whatever the plateau."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

RES = 128
VOX = 2.0 / RES  # the fake hull box is [-1, 1]^3 in nerfstudio coordinates: to_unit is the identity


class _RampField:
    """Density per voxel length: 0 before the plane n.x = c, `plateau` beyond it, a linear ramp of
    `ramp_vox` voxels centred on the plane (a grid's blurred step; half the plateau on the plane)."""

    def __init__(self, normal, c: float, plateau: float, ramp_vox: float = 2.0) -> None:
        self.n, self.c, self.plateau, self.ramp = torch.tensor(normal, dtype=torch.float32), c, plateau, ramp_vox * VOX

    def density_at(self, x: torch.Tensor) -> torch.Tensor:
        s = (x @ self.n - self.c) / self.ramp + 0.5
        return self.plateau * s.clamp(0, 1)


class _Model:
    def __init__(self, field: _RampField) -> None:
        self.field = field
        self.hull_aabb = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])
        self.voxel_size = VOX

    def to_unit(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _half_opacity_depth(field: _RampField, origin: np.ndarray, d: np.ndarray, t_max: float = 2.0) -> float:
    """Where a ray's opacity reaches one half (optical depth ln 2), by fine numerical integration
    (what the renderer's 50% level approximates)."""
    t = np.arange(0, t_max, VOX / 200)
    x = torch.tensor(origin[None] + t[:, None] * d[None], dtype=torch.float32)
    tau = np.cumsum(field.density_at(x).numpy()) * (VOX / 200) / VOX
    return float(t[np.searchsorted(tau, math.log(2))])


@pytest.mark.parametrize("plateau", [0.3, 1.0, 20.0])
@pytest.mark.parametrize("angle_deg", [0.0, 50.0])
def test_the_edge_is_on_the_face_whatever_the_density_inside(plateau, angle_deg):
    from nerfreg_ns.nerf.export import boundary_points

    field = _RampField([1.0, 0.0, 0.0], c=0.1, plateau=plateau)
    a = math.radians(angle_deg)
    d = np.array([math.cos(a), math.sin(a), 0.0])  # towards the face, at angle_deg from its normal
    origins = np.array([[-0.8, y, z] for y in (-0.3, 0.0, 0.2) for z in (-0.1, 0.4)])
    points = np.array([o + _half_opacity_depth(field, o, d) * d for o in origins])
    inside = points[:, 0] - 0.1
    if plateau < 0.5:
        assert inside.min() > 1.0 * VOX  # the 50% level lies more than a voxel inside a low-density face
    edge = boundary_points(_Model(field), torch.tensor(points, dtype=torch.float32),
                           torch.tensor(np.broadcast_to(d, points.shape).copy(), dtype=torch.float32)).numpy()
    np.testing.assert_allclose(edge[:, 0], 0.1, atol=0.1 * VOX)  # on the face
    moved = edge - points
    np.testing.assert_allclose(np.cross(moved, d), 0.0, atol=1e-5)  # along its own ray, never sideways
    if plateau < 0.5:
        assert (moved @ d < -VOX).all()  # back towards the camera, by more than a voxel


def test_a_point_with_no_rise_behind_it_stays_where_it_is():
    from nerfreg_ns.nerf.export import boundary_points

    class _Uniform:  # fog of one density everywhere: no edge within reach
        def density_at(self, x):
            return torch.full((len(x),), 0.3)

    points = torch.tensor([[0.0, 0.0, 0.0], [0.2, -0.1, 0.3]])
    dirs = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.6, 0.8]])
    edge = boundary_points(_Model(_Uniform()), points, dirs)
    np.testing.assert_array_equal(edge.numpy(), points.numpy())
