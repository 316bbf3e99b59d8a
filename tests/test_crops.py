"""Turned object crops and the test-time rotation search of the query encoder."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from nerfreg_ns.embedding.crops import crop, crop_to_image_pixels, square_box


def _coordinate_image(h: int, w: int) -> torch.Tensor:
    """(2, H, W): each pixel holds its own centre (x, y)."""
    y, x = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    return torch.stack([x, y]).float()


@pytest.mark.parametrize("angle", [0.0, 0.7, math.pi / 2, math.pi, -2.0])
def test_turned_crop_samples_where_crop_to_image_pixels_points(angle):
    img = _coordinate_image(60, 80)
    box, size = (20.0, 10.0, 36.0), 24
    c = crop(img, box, size, angle=angle)  # bilinear of a linear ramp is exact inside the image
    ij = torch.stack(torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij"), -1).reshape(-1, 2)
    uv = crop_to_image_pixels(ij, box, size, angle)
    got = c.permute(1, 2, 0).reshape(-1, 2)
    assert torch.allclose(got, uv, atol=1e-3)
    # the crop turns about the box centre: its centre pixel pair straddles (38, 28) whatever the angle
    assert torch.allclose(uv.mean(0), torch.tensor([38.0, 28.0]), atol=1e-3)
    # and a quarter turn moves the crop's x axis onto the image's y axis (y down)
    step = crop_to_image_pixels(torch.tensor([[0, 1]]), box, size, angle) - crop_to_image_pixels(torch.tensor([[0, 0]]), box, size, angle)
    s = box[2] / size
    assert torch.allclose(step[0], torch.tensor([math.cos(angle) * s, math.sin(angle) * s]), atol=1e-4)


def _turned_crops(angles, right: int, size: int, box, K, T_cam_obj, g):
    """Crop queries at `angles` for an object of random points seen through K from T_cam_obj (4, 4):
    at turn `right` each foreground crop pixel's query is the key of the point it sees; at the
    other turns the same queries sit at shuffled pixels (what a wrong turn gives: confident
    matches that no single pose explains). Returns each turn's queries as plugins get them
    (image coordinates in OpenCV's convention), the keys (M, E) and points (M, 3)."""
    from nerfreg_ns.embedding.match import CropQueries, turn_queries
    from nerfreg_ns.geometry.cameras import opencv_from_continuous

    M, E = 300, 32
    ij = torch.stack([torch.randint(2, size - 2, (M,), generator=g), torch.randint(2, size - 2, (M,), generator=g)], 1)
    ij = torch.unique(ij, dim=0)
    uv = opencv_from_continuous(crop_to_image_pixels(ij, box, size, angles[right]).double().numpy())
    depth = 5.0 + torch.rand(len(ij), generator=g, dtype=torch.float64).numpy()
    cam = np.c_[uv, np.ones(len(uv))] @ np.linalg.inv(K).T * depth[:, None]
    T_obj_cam = np.linalg.inv(T_cam_obj)
    points = cam @ T_obj_cam[:3, :3].T + T_obj_cam[:3, 3]
    keys = torch.nn.functional.normalize(torch.randn(len(ij), E, generator=g), dim=1) * 8
    crops = []
    for k, a in enumerate(angles):
        q = torch.zeros(size, size, E)
        fg = torch.zeros(size, size, dtype=torch.bool)
        order = torch.arange(len(ij)) if k == right else torch.randperm(len(ij), generator=g)
        q[ij[:, 0], ij[:, 1]] = keys[order]
        fg[ij[:, 0], ij[:, 1]] = True
        crops.append(turn_queries(CropQueries(q, fg.float(), fg, box, a)))
    return crops, keys.numpy(), points


@pytest.mark.parametrize("right", [0, 3, 5])
def test_pnp_picks_the_turn_whose_matches_one_pose_explains(right):
    from nerfreg_ns.embedding.match import pnp_best_turn
    from nerfreg_ns.geometry.transforms import make_T

    g = torch.Generator().manual_seed(right)
    K = np.array([[150.0, 0, 64], [0, 150.0, 64], [0, 0, 1]])
    a = 0.4
    T_cam_obj = make_T(np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]]), np.array([0.1, -0.2, 0.3]))
    angles = [2 * math.pi * k / 8 for k in range(8)]
    crops, keys, points = _turned_crops(angles, right, 40, (30.0, 25.0, 60.0), K, T_cam_obj, g)
    pose = pnp_best_turn(crops, keys, points, K, matches=400)
    assert pose is not None and pose.turn == right
    assert pose.inliers > 0.9 * pose.matches
    assert np.allclose(pose.T_cam_obj, T_cam_obj, atol=1e-3)
    # no turn explained by a pose: nothing, rather than a guess
    wrong = [c for k, c in enumerate(crops) if k != right]
    assert pnp_best_turn(wrong, keys, points, K, matches=400, min_inliers=60) is None


def test_crop_queries_turn_the_crop_and_its_mask():
    from nerfreg_ns.embedding.match import crop_queries

    class Identity(nn.Module):  # queries = the image itself, so the turned crop can be checked
        def forward(self, images):
            return images, images[:, :1]

    rgb = torch.zeros(64, 64, 3)
    mask = torch.zeros(64, 64, dtype=torch.bool)
    mask[16:48, 20:44] = True
    rgb[16:24, 20:44] = 1.0  # a bright top band
    crops = crop_queries(Identity(), rgb, mask, 32, rotations=4)
    assert [c.angle for c in crops] == pytest.approx([0, math.pi / 2, math.pi, 3 * math.pi / 2])
    for c in crops:
        assert c.box == square_box(mask) and c.queries.shape == (32, 32, 3)
        bright = c.queries[..., 0] > 0.5
        assert bright.any() and not (bright & ~c.fg).any()  # the mask turns with the image
    rows = [c.queries[..., 0].nonzero()[:, 0].float().mean() for c in crops]
    cols = [c.queries[..., 0].nonzero()[:, 1].float().mean() for c in crops]
    # a quarter turn samples along axes turned clockwise on screen (y down): the crop's columns
    # run down the image, so the top band lands at the crop's left; half a turn, at its bottom
    assert rows[0] < 12 and rows[2] > 20 and cols[1] < 12 and cols[3] > 20, (rows, cols)
