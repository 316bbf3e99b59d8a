"""Procedural parts and capture-like corruptions of synthetic cases."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nerfreg_ns.data.capture import PRESETS, capture_options, gross_error, ragged_mask, signed_distance
from nerfreg_ns.data.images import read_mask
from nerfreg_ns.data.mesh import diameter
from nerfreg_ns.data.parts import FAMILIES, SIZE_RANGE_MM, make_random_part
from nerfreg_ns.geometry.cameras import camera_poses

from conftest import run_cli


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_makes_a_closed_part_of_the_asked_size(family):
    mesh, info = make_random_part(7, family, size_mm=80.0)
    assert mesh.is_watertight and mesh.body_count == 1
    assert max(mesh.extents) == pytest.approx(80.0, rel=1e-6)
    assert np.allclose(mesh.bounds.mean(axis=0), 0, atol=1e-6)
    again, _ = make_random_part(7, family, size_mm=80.0)
    assert np.array_equal(mesh.vertices, again.vertices)  # a seed is a part


def test_seeds_cycle_through_families_and_sizes_span_the_range():
    infos = [make_random_part(s)[1] for s in range(12)]
    assert {i.family for i in infos} == set(FAMILIES)
    sizes = [i.size_mm for i in infos]
    assert all(SIZE_RANGE_MM[0] <= s <= SIZE_RANGE_MM[1] for s in sizes)
    assert max(sizes) / min(sizes) > 5


def _disc(h=64, w=80, r=18):
    v, u = np.mgrid[:h, :w]
    return (u - 40) ** 2 + (v - 30) ** 2 < r * r


@pytest.mark.parametrize("max_px", [1.0, 3.0])
def test_ragged_masks_move_the_outline_by_at_most_the_stated_pixels(max_px):
    mask, rng = _disc(), np.random.default_rng(0)
    sd = signed_distance(mask)
    moved = 0
    for _ in range(10):
        changed = ragged_mask(mask, max_px, rng) != mask
        moved += int(changed.any())
        assert np.abs(sd[changed]).max(initial=0) <= max_px + 0.5
    assert moved >= 5


def test_a_gross_error_adds_or_removes_a_real_piece():
    mask, rng = _disc(), np.random.default_rng(1)
    kinds = set()
    for _ in range(10):
        new, kind = gross_error(mask, rng)
        kinds.add(kind)
        diff = (new != mask).sum()
        assert diff > 0.03 * mask.sum()
        assert (new.sum() > mask.sum()) == (kind == "blob added")
    assert kinds == {"blob added", "piece missing"}


def test_roll_and_aim_jitter_keep_cameras_at_their_distance_and_roll_about_the_optical_axis():
    plain = camera_poses(6, (10, 80), 5.0, np.random.default_rng(3))
    again = camera_poses(6, (10, 80), 5.0, np.random.default_rng(3))
    assert all(np.array_equal(a, b) for a, b in zip(plain, again))
    rolled = camera_poses(6, (10, 80), 5.0, np.random.default_rng(3), roll_deg=20.0)
    for T in rolled:
        assert np.linalg.norm(T[:3, 3]) == pytest.approx(5.0)
        assert np.allclose(T[:3, 2], -T[:3, 3] / 5.0)  # still looking at the centre
    rolls = [np.degrees(np.arccos(np.clip(a[:3, 0] @ b[:3, 0], -1, 1))) for a, b in zip(plain, rolled)]
    assert max(rolls) > 1 and max(rolls) <= 20.0 + 1e-6


def test_presets_and_overrides():
    opts = capture_options("realistic", bad_frames=0.2)
    assert opts.bad_frames == 0.2 and opts.mask_error_px == PRESETS["realistic"].mask_error_px
    with pytest.raises(ValueError, match="unknown capture preset"):
        capture_options("studio")


def test_synth_cli_realistic_random_part_in_metres(tmp_path):
    out = tmp_path / "case"
    proc = run_cli("synth", "--out", out, "--part", "random", "--seed", "4", "--unit", "m", "--capture", "realistic",
                   "--views", "20", "--width", "72", "--height", "56", "--bad-frames", "0.1")
    assert proc.returncode == 0, proc.stderr
    truth = json.loads((out / "truth.json").read_text())
    mesh, _ = make_random_part(4)
    assert truth["object"]["diameter"] == pytest.approx(diameter(mesh) / 1000, rel=1e-6)  # built in mm, written in m
    assert [len(truth["bad_frames"][s]) for s in ("seq1", "seq2")] == [2, 2]
    tf = json.loads((out / "seq1" / "transforms.json").read_text())
    cx = {f["cx"] for f in tf["frames"]}
    assert len(cx) > 1 and {f["w"] for f in tf["frames"]} == {72}  # per-image principal points
    mask = read_mask(out / "seq1" / tf["frames"][0]["file_path"].replace("images", "masks"))
    from nerfreg_ns.data.images import read_image

    rgb = read_image(out / "seq1" / tf["frames"][0]["file_path"])
    assert rgb[~mask].mean() > 3  # a noisy background, not black
    bad = run_cli("synth", "--out", tmp_path / "bad", "--bad-frames", "1.5", "--views", "4")
    assert bad.returncode == 2 and "fractions between 0 and 1" in bad.stderr and not (tmp_path / "bad").exists()
