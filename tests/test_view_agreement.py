"""How far each view's mask sits from the sequence's own surface: a known shift is recovered in
the stated direction and units; masks that are grown or ragged all round shift nothing."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from nerfreg_ns.geometry.transforms import apply, invert
from nerfreg_ns.geometry.view_agreement import outline, outline_shift, registration_precision, shift_rms, standard_error, view_shifts


@pytest.fixture(scope="module")
def seq1(tiny_case):
    from nerfreg_ns.register.synthetic import sequence_from_truth

    return sequence_from_truth(tiny_case, "seq1")


def _moved(mask: np.ndarray, du: float, dv: float) -> np.ndarray:
    M = np.float32([[1, 0, du], [0, 1, dv]])
    return cv2.warpAffine(mask.astype(np.uint8), M, mask.shape[::-1], flags=cv2.INTER_NEAREST) > 0


def _px_per_d(seq, i: int) -> float:
    depth = apply(invert(seq.T_world_camcv[i]), np.median(seq.points, axis=0)[None])[0, 2]
    return seq.Ks[i][0, 0] * seq.diameter / depth


def _shifts(seq, masks):
    return view_shifts(seq.points, seq.Ks, seq.T_world_camcv, masks, seq.diameter)


def test_outline_shift_recovers_a_translation_both_ways():
    square = np.zeros((40, 40), bool)
    square[10:31, 8:29] = True
    pts, nrm = outline(square)
    assert np.allclose(np.abs(nrm).sum(axis=1)[np.all((pts > 10) & (pts < 28), axis=1)], 1.0)  # edges: normals along an axis
    for shift in ([2.0, -1.0], [-3.0, 0.5]):
        assert outline_shift(pts, pts + shift, nrm) == pytest.approx(shift, abs=0.05)
        assert outline_shift(pts + shift, pts, nrm) == pytest.approx(-np.array(shift), abs=0.05)
    assert outline_shift(pts, np.zeros((0, 2)), np.zeros((0, 2))) == pytest.approx([0.0, 0.0])


def test_exact_masks_agree_with_the_surface(seq1):
    s = _shifts(seq1, seq1.masks)
    assert np.abs(s).max() < 0.01  # under 1% of d per view
    assert standard_error(s) < 0.002


@pytest.mark.parametrize("du,dv", [(2, 0), (0, -2), (-2, 1)])
def test_a_mask_moved_in_the_image_is_measured_in_that_direction_in_fractions_of_d(seq1, du, dv):
    s = _shifts(seq1, [_moved(m, du, dv) for m in seq1.masks])
    for i, (su, sv) in enumerate(s):
        assert su * _px_per_d(seq1, i) == pytest.approx(du, abs=0.5)
        assert sv * _px_per_d(seq1, i) == pytest.approx(dv, abs=0.5)


def test_masks_grown_or_ragged_all_round_shift_nothing(seq1):
    rng = np.random.default_rng(0)
    grown = [cv2.dilate(m.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0 for m in seq1.masks]
    ragged = [m ^ ((rng.random(m.shape) < 0.3) & (cv2.morphologyEx(m.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0))
              for m in seq1.masks]
    for masks in (grown, ragged):
        s = _shifts(seq1, masks)
        assert np.abs(s * np.array([[_px_per_d(seq1, i)] for i in range(len(s))])).max() < 0.6  # pixels


def test_the_standard_error_trims_the_worst_views_and_falls_with_more_views():
    shifts = np.full((20, 2), [0.003, 0.004])  # 0.5% of d each
    assert shift_rms(shifts) == pytest.approx(0.005)
    assert standard_error(shifts) == pytest.approx(0.005 / np.sqrt(20))
    gross = shifts.copy()
    gross[:2] = [0.5, 0.0]  # two views with a gross mask error: trimmed (10%)
    assert shift_rms(gross) == pytest.approx(0.005)
    assert shift_rms(gross, trim=0.0) > 0.1
    assert standard_error(np.tile(shifts, (4, 1))) == pytest.approx(standard_error(shifts) / 2)
    assert registration_precision(0.003, 0.004) == pytest.approx(0.005)
    assert shift_rms(np.zeros((0, 2))) == 0.0
