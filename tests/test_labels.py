"""Every image's label, rendered and checked: scene_gt_info.json, rendered masks, labels_qa.json,
symmetries in models_info.json and registration.json, and the report page."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh

from chromium import CHROMIUM, browse
from nerfreg_ns.data.images import read_mask
from nerfreg_ns.data.render import Renderer
from nerfreg_ns.geometry.cameras import K_matrix
from nerfreg_ns.geometry.transforms import make_T
from nerfreg_ns.register.labels import check_label, render_label


def test_a_model_cut_by_the_image_border_keeps_its_whole_box():
    box = trimesh.creation.box(extents=[40.0, 40.0, 40.0])
    K = K_matrix(100.0, 100.0, 32.0, 32.0)
    T_cam_obj = make_T(np.eye(3), np.array([-60.0, 0.0, 200.0]))  # its centre 30 px left of the image's, 2 px from the border
    inside = render_label(Renderer(box), np.asarray(box.vertices), K, T_cam_obj, 64, 64)
    wide = render_label(Renderer(box), np.asarray(box.vertices), K_matrix(100.0, 100.0, 132.0, 32.0), T_cam_obj, 264, 64)
    # a 40 mm cube about 20 px across, half of it left of the image; all of it in `wide`, shifted by 100 px
    assert inside.px_count_all == wide.px_count_all == int(wide.mask.sum()) > inside.mask.sum() > 0
    x, y, w, h = inside.bbox_obj
    assert x < 0 and wide.bbox_obj == [x + 100, y, w, h]
    assert inside.mask[:, 0].any() and not inside.mask[:, -1].any()


def test_a_clean_mask_passes_and_an_empty_one_is_flagged():
    box = trimesh.creation.box(extents=[40.0, 30.0, 20.0])
    K = K_matrix(150.0, 150.0, 64.0, 64.0)
    lab = render_label(Renderer(box), np.asarray(box.vertices), K, make_T(np.eye(3), np.array([0.0, 0.0, 150.0])), 128, 128)
    ok = check_label(lab, lab.mask)
    assert not ok["flagged"] and ok["iou"] == 1.0 and ok["outline_px"] == 0.0
    empty = check_label(lab, np.zeros_like(lab.mask))
    assert empty["flagged"] and "empty" in empty["why"]


def test_every_spoiled_frame_is_flagged_and_no_clean_one(labelled):
    qa = json.loads((labelled.out / "labels_qa.json").read_text())
    flagged = {(r["sequence"], r["im_id"]) for r in qa["images"] if r["flagged"]}
    assert flagged == set(labelled.bad), qa["images"][:5]
    assert qa["frames"] == 20 and qa["flagged"] == 3
    assert "3 of 20 frames flagged" in labelled.printed
    reg = json.loads((labelled.out / "registration.json").read_text())
    assert reg["labels_qa"]["flagged"] == 3
    clean = [r for r in qa["images"] if not r["flagged"]]
    assert min(r["iou"] for r in clean) > 0.9 and max(r["outline_px"] for r in clean) < 1.5


def test_scene_gt_info_and_masks_agree_with_the_rendered_model(labelled):
    for scene, seq in (("000001", "seq1"), ("000002", "seq2")):
        folder = labelled.out / "bop" / "scenes" / scene
        info = json.loads((folder / "scene_gt_info.json").read_text())
        assert sorted(info, key=int) == [str(i) for i in range(10)]
        for key, (entry,) in info.items():
            name = f"{int(key):06d}_000000.png"
            full, visib, given = (read_mask(folder / sub / name) for sub in ("mask", "mask_visib", "mask_input"))
            assert entry["px_count_valid"] == int(full.sum()) == entry["px_count_all"]  # nothing outside the image here
            assert entry["px_count_visib"] == int(visib.sum()) and not (visib & ~full).any()
            assert entry["visib_fract"] == pytest.approx(entry["px_count_visib"] / entry["px_count_all"])
            ys, xs = np.nonzero(full)
            assert entry["bbox_obj"] == [xs.min(), ys.min(), xs.max() - xs.min(), ys.max() - ys.min()]
            if (seq, int(key)) == ("seq1", 5):  # the input mask leaves a deep piece out: an occluder, as far as it says
                assert entry["visib_fract"] < 0.95
            elif (seq, int(key)) not in labelled.bad:
                assert entry["visib_fract"] > 0.97 and (given ^ full).mean() < 0.02


def test_the_part_has_no_symmetry_and_its_registration_one_answer(labelled):
    info = json.loads((labelled.out / "bop" / "models" / "models_info.json").read_text())["1"]
    assert "symmetries_discrete" not in info and "symmetries_continuous" not in info
    from nerfreg_ns.register.outputs import SYMMETRY_TOL

    assert info["symmetry_tolerance_mm"]["mean_surface_error"] == pytest.approx(SYMMETRY_TOL * info["diameter"], rel=0.05)
    reg = json.loads((labelled.out / "registration.json").read_text())
    assert reg["symmetries"]["equivalent_T_seq1_seq2"] == [] and reg["symmetries"]["continuous_seq1"] == []


def test_the_report_page_lists_every_frame_worst_first(labelled):
    page = (labelled.out / "report.html").read_text()
    for name in ("report.png", "report_worst.png", "report_seq1.png", "report_seq2.png"):
        assert f'src="{name}"' in page and (labelled.out / name).is_file()
    assert page.count("<tr>") == 20 + 1
    assert "3 of 20 frames flagged" in page


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium")
def test_the_report_page_opens_in_a_browser_and_sorts_by_iou(labelled, tmp_path):
    ious = "Array.from(document.querySelectorAll('#labels tbody tr')).map(r => parseFloat(r.cells[2].dataset.v))"
    shot, (loaded, before, after, verdict) = browse(
        (labelled.out / "report.html").as_uri(), tmp_path / "report.png", wait_s=3,
        scripts=("Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)", ious,
                 f"document.querySelectorAll('#labels th')[2].click(); {ious}", "document.getElementById('verdict').textContent"),
    )
    assert loaded == [True] * 4, loaded  # report.png, the worst labels and two contact sheets, all drawn
    assert len(before) == len(after) == 20
    assert after == sorted(before) and after != before  # worst first as written; lowest IoU first once clicked
    assert verdict == "confident"
    assert shot.std() > 10  # a page with pictures on it, not a blank one


def test_a_missing_image_stops_the_command_before_anything_is_written(perfect_tiny, tmp_path):
    import dataclasses

    from conftest import register_known
    from nerfreg_ns.errors import NerfregError

    truth, s1, s2 = perfect_tiny
    broken = dataclasses.replace(s2, images=[*s2.images[:-1], tmp_path / "gone.png"])
    with pytest.raises(NerfregError, match="gone.png"):
        register_known(truth, (s1, broken), tmp_path / "o")
    assert not (tmp_path / "o").exists()
