"""`ns-train nerfreg-feature` end to end on a tiny case: train, checkpoint, resume, export,
the viewer's outputs, key accuracy, and bad datasets. Small images, few steps."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest


from conftest import VENV_BIN, ns_train


def test_ns_train_lists_the_method():
    proc = subprocess.run([str(VENV_BIN / "ns-train"), "-h"], capture_output=True, text=True, timeout=300)
    assert "nerfreg-feature" in proc.stdout and "nerfreg-field" in proc.stdout


def test_train_checkpoints_and_resumes(run, case, tmp_path):
    ckpts = sorted((run / "nerfstudio_models").glob("step-*.ckpt"))
    assert ckpts and ckpts[-1].name == "step-000000349.ckpt"
    resumed = tmp_path / "resumed"
    # nerfstudio counts --max-num-iterations from the loaded step: 10 more steps
    proc = ns_train(case / "seq1", resumed, 10, "--load-dir", str(run / "nerfstudio_models"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Done loading" in proc.stdout + proc.stderr
    assert (resumed / "seq1" / "nerfreg-feature" / "run" / "nerfstudio_models" / "step-000000359.ckpt").is_file()


def test_phase_two_learning_rates_decay_to_their_floor(run):
    import torch

    from nerfreg_ns.nerf.config import make_trainer_config

    # the run ends at step 349 of 350: phase 2 (steps 150..350) has decayed to its floor
    ckpt = torch.load(run / "nerfstudio_models" / "step-000000349.ckpt", map_location="cpu", weights_only=False)
    cfg = make_trainer_config()
    floor = cfg.pipeline.embed_lr_final
    assert floor < 0.5  # a decay the check can see
    for group in ("keys", "query"):
        lr = ckpt["optimizers"][group]["param_groups"][0]["lr"]
        assert np.isclose(lr, floor * cfg.optimizers[group]["optimizer"].lr, rtol=0.01), (group, lr)


def test_export_is_in_the_input_frame_and_close_to_the_truth(run, case, tmp_path):
    from nerfreg_ns.data.truth import read_truth
    from nerfreg_ns.evaluate import TruthModel, evaluate_reconstruction

    out = tmp_path / "export"
    proc = subprocess.run([str(VENV_BIN / "nerfreg-export"), "--load-config", str(run / "config.yml"), "--out", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    npz = np.load(out / "surface.npz")
    assert npz["keys"].shape == (len(npz["points"]), 12) and len(npz["points"]) > 500
    np.testing.assert_allclose(np.linalg.norm(npz["normals"], axis=1), 1.0, atol=1e-3)
    model = TruthModel(read_truth(case / "truth.json"), samples=5000)
    # the depth over which each point's ray opacity rose (25% -> 75%): short on most of the surface
    spread = npz["spread"] / model.truth.diameter
    assert spread.shape == (len(npz["points"]),) and spread.min() >= 0 and np.median(spread) < 0.05, np.percentile(spread, [10, 50, 90])
    # the density's edge: each point moved along its own ray, by at most the search window (6 voxels of the 64-voxel box)
    moved = np.linalg.norm(npz["boundary"] - npz["points"], axis=1) / model.truth.diameter
    assert npz["boundary"].shape == npz["points"].shape and moved.max() < 0.2 and (moved > 0).mean() > 0.5, np.percentile(moved, [10, 50, 90])
    res = evaluate_reconstruction(npz["points"], model, "seq1", visible_from="seq1")
    # a 64-voxel hull box and 150 steps: a few percent of the diameter, in millimetres and seq1's frame
    assert res["chamfer_frac"] < 0.04, res
    # the normals agree with the true surface's outward normals
    from scipy.spatial import cKDTree

    from nerfreg_ns.data.mesh import sample_surface
    from nerfreg_ns.geometry.transforms import apply, rotate

    gt_pts, gt_nrm = sample_surface(model.mesh, 50000, seed=2)
    truth = model.truth
    _, nn = cKDTree(apply(truth.T_seq1_obj, gt_pts)).query(npz["points"])
    cos = np.sum(rotate(truth.T_seq1_obj, gt_nrm[nn]) * npz["normals"], axis=1)
    # 0.799 with the vote-and-seen-fraction hull on this 150-step field (above 0.8 before it)
    assert np.median(cos) > 0.78, np.percentile(cos, [10, 50, 90])
    assert (out / "mesh.ply").is_file() and (out / "surface.ply").read_bytes().startswith(b"ply")


def test_ns_export_pointcloud_works_on_the_checkpoint(run, tmp_path):
    proc = subprocess.run([str(VENV_BIN / "ns-export"), "pointcloud", "--load-config", str(run / "config.yml"),
                           "--output-dir", str(tmp_path), "--num-points", "2000", "--remove-outliers", "False",
                           "--normal-method", "model_output"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "point_cloud.ply").stat().st_size > 10000


def test_keys_and_queries_beat_chance_on_training_views(run, case):
    from nerfreg_ns.data.truth import read_truth
    from nerfreg_ns.nerf.export import load_run
    from nerfreg_ns.nerf.probe import correspondence_accuracy
    from probe_views import probe_views

    pipeline, _ = load_run(run / "config.yml")
    truth = read_truth(case / "truth.json")
    views = probe_views(truth, elevation=(15.0, 75.0), n=6, size=64, seed=11)
    acc = correspondence_accuracy(pipeline, views, 0.1 * truth.diameter)
    # 200 embedding steps on 16 tiny views: measured about 0.10 against a chance of about 0.03
    assert acc["raw"] > 2 * acc["chance"] and acc["raw"] > 0.06, acc
    # the same views at any roll: the crop's turn is chosen by PnP inliers among 8
    rolled = probe_views(truth, elevation=(15.0, 75.0), n=6, size=64, seed=11, roll_deg=180.0)
    acc_any = correspondence_accuracy(pipeline, rolled, 0.1 * truth.diameter, rotations=8)
    assert acc_any["raw"] > 2 * acc_any["chance"], (acc_any, acc)


def test_relit_copies_share_their_view_geometry_and_follow_its_shape(run):
    import torch

    from nerfreg_ns.nerf.export import load_run

    pipeline, _ = load_run(run / "config.yml")
    cfg = pipeline.config
    n = len(pipeline.datamanager.train_dataset)
    cfg.extra_views, cfg.relight_copies = 0, 0
    plain = pipeline.build_embedding_source()
    cfg.relight_copies = 2
    src = pipeline.build_embedding_source()
    assert len(plain.images) == n and len(src.images) == 3 * n
    photo, copies = src.images[0::3], [src.images[1::3], src.images[2::3]]
    assert torch.equal(photo, plain.images)
    for c in copies:
        assert torch.equal(src.point_maps[1::3], plain.point_maps) and torch.equal(src.masks[2::3], plain.masks)
        assert not ((c.sum(1) > 0) & (photo.sum(1) == 0)).any()  # black where the photograph is
        assert (c - photo).abs().mean() > 0.005  # another lighting
        # shaded from the field's normals, the copy still follows the photograph's shading
        fg = plain.masks.expand_as(c) > 0.5
        corr = torch.corrcoef(torch.stack([c[fg], photo[fg]]))[0, 1]
        assert corr > 0.3, corr
    assert (copies[0] - copies[1]).abs().mean() > 0.005  # each copy its own lights
    cfg.extra_views = 4  # extra views take one relit image each, not the field's colours
    assert 3 * n < len(pipeline.build_embedding_source().images) <= 3 * n + 4


def test_viewer_outputs_include_keys(run):
    import torch

    from nerfreg_ns.nerf.export import load_run

    pipeline, _ = load_run(run / "config.yml")
    cam = pipeline.datamanager.train_dataset.cameras[0:1].to(pipeline.device)
    out = pipeline.model.get_outputs_for_camera(cam)
    for name in ("rgb", "depth", "accumulation", "normals", "keys"):
        assert name in out, name
    keys = out["keys"].reshape(-1, out["keys"].shape[-1])
    assert keys.shape[1] == 12 and torch.linalg.matrix_rank(keys - keys.mean(0)) >= 3  # PCA has signal
    assert out["accumulation"].max() > 0.9 and out["accumulation"].min() < 0.1


def test_camera_normal_shading_renders_each_view_with_its_own_camera(case, tmp_path):
    """camera-normal shading reads each ray's camera: a rendered camera (its rays all carry index
    0) must shade exactly as that camera's training rays do, and another camera's rotation must not."""
    import torch

    from nerfreg_ns.nerf.export import load_run

    proc = ns_train(case / "seq1", tmp_path, 60, "--pipeline.model.shading", "camera-normal",
                    "--pipeline.model.sparsity-loss-mult", "0.01", "--pipeline.model.distortion-loss-mult", "0.01")
    assert proc.returncode == 0, proc.stderr[-3000:]
    pipeline, _ = load_run(tmp_path / "seq1" / "nerfreg-feature" / "run" / "config.yml")
    model = pipeline.model
    assert model.config.shading == "camera-normal"
    cams = pipeline.datamanager.train_dataset.cameras.to(pipeline.device)
    i = 5
    rendered = model.get_outputs_for_camera(cams[i : i + 1])["rgb"]
    h, w = rendered.shape[:2]
    yx = torch.stack(torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij"), -1).reshape(-1, 2)
    idx = torch.cat([torch.full((len(yx), 1), i), yx], 1).to(pipeline.device)
    from nerfstudio.model_components.ray_generators import RayGenerator

    rays = RayGenerator(cams)(idx)  # as the training data manager makes them
    with torch.no_grad():
        by_index = model(rays)["rgb"].reshape(h, w, 3)
        # the camera turned furthest from camera i: its rotation must shade the same rays otherwise
        R = cams.camera_to_worlds[:, :3, :3]
        far = int(torch.einsum("ij,nij->n", R[i], R).argmin())
        rays.camera_indices = torch.full_like(rays.camera_indices, far)
        wrong = model(rays)["rgb"].reshape(h, w, 3)
    torch.testing.assert_close(rendered, by_index, atol=1e-5, rtol=0)
    assert (wrong - by_index).abs().max() > 0.02


def test_distortion_matches_its_definition_and_prefers_one_surface():
    """The prefix-sum distortion equals the double sum it stands for, and a ray whose weight sits
    in one place costs less than the same weight split between fog and a surface behind it."""
    import torch

    from nerfreg_ns.nerf.model import distortion

    g = torch.Generator().manual_seed(0)
    w = torch.rand(5, 16, generator=g) / 16
    t = torch.sort(torch.rand(5, 16, generator=g), 1).values
    step = torch.full((5,), 1 / 16)
    brute = (w[:, :, None] * w[:, None, :] * (t[:, :, None] - t[:, None, :]).abs()).sum((1, 2)) + w.square().sum(1) * step / 3
    torch.testing.assert_close(distortion(w, t, step), brute)
    t = torch.linspace(0, 1, 16)[None]
    crisp = torch.zeros(1, 16)
    crisp[0, 12] = 0.9
    foggy = torch.zeros(1, 16)
    foggy[0, 3:7] = 0.1
    foggy[0, 12] = 0.5
    assert distortion(foggy, t, step[:1]) > 5 * distortion(crisp, t, step[:1])


def _broken_dataset(case: Path, tmp_path: Path, how: str) -> Path:
    ds = tmp_path / "ds"
    shutil.copytree(case / "seq1", ds)
    tf = json.loads((ds / "transforms.json").read_text())
    if how == "no masks":
        for f in tf["frames"]:
            f.pop("mask_path")
    elif how == "one image":
        tf["frames"] = tf["frames"][:1]
    elif how == "nan pose":
        tf["frames"][3]["transform_matrix"][0][3] = float("nan")
    elif how == "image list mismatch":
        (ds / tf["frames"][5]["file_path"]).unlink()
    elif how in ("all masks empty", "one mask empty"):
        from nerfreg_ns.data.images import read_mask, write_png

        for f in tf["frames"][: 1 if how == "one mask empty" else None]:
            write_png(ds / f["mask_path"], np.zeros_like(read_mask(ds / f["mask_path"])))
    elif how == "mask of another size":
        from nerfreg_ns.data.images import read_mask, write_png

        write_png(ds / tf["frames"][2]["mask_path"], read_mask(ds / tf["frames"][2]["mask_path"])[:-4])
    elif how == "masks that disagree":  # valid files, but no point lies inside every mask: found at set-up
        from nerfreg_ns.data.images import read_mask, write_png

        for f in tf["frames"]:
            m = np.zeros_like(read_mask(ds / f["mask_path"]))
            m[:3, :3] = True
            write_png(ds / f["mask_path"], m)
    (ds / "transforms.json").write_text(json.dumps(tf))
    return ds


@pytest.mark.parametrize("how, fragment", [
    ("no masks", "no mask_path and no alpha"),
    ("one image", "at least 2 are needed"),
    ("nan pose", "non-finite"),
    ("image list mismatch", "image listed but not found"),
    ("masks that disagree", "the masks carve away everything"),
    ("all masks empty", "masks are empty"),
    ("mask of another size", "the mask is 64x60 but the frame says 64x64"),
])
def test_bad_datasets_fail_with_one_line_and_leave_no_run(case, tmp_path, how, fragment):
    proc = ns_train(_broken_dataset(case, tmp_path, how), tmp_path / "out", 5)
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and fragment in errors[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    runs = [p for p in (tmp_path / "out").rglob("*") if p.is_file()] if (tmp_path / "out").exists() else []
    assert not runs, f"a failed ns-train left {runs}"


def test_a_frame_with_an_empty_mask_is_skipped_with_a_warning(case, tmp_path):
    proc = ns_train(_broken_dataset(case, tmp_path, "one mask empty"), tmp_path / "out", 5)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "1 frame(s) with an empty mask skipped: frame_00000.png" in proc.stderr
    from nerfreg_ns.nerf.export import load_run

    pipeline, _ = load_run(tmp_path / "out" / "ds" / "nerfreg-feature" / "run" / "config.yml")
    assert len(pipeline.datamanager.train_dataset) == 15


def _mix_image_sizes(seq: Path, every: int, size: tuple[int, int]) -> None:
    """Every `every`-th frame of a dataset resized to size (w, h), its intrinsics with it (nerfstudio's
    continuous coordinates scale as they are), as a capture mixing two cameras would have."""
    import cv2

    tj = seq / "transforms.json"
    data = json.loads(tj.read_text())
    for f in data["frames"][::every]:
        sx, sy = size[0] / f["w"], size[1] / f["h"]
        for key, interp in (("file_path", cv2.INTER_AREA), ("mask_path", cv2.INTER_NEAREST)):
            im = cv2.imread(str(seq / f[key]), cv2.IMREAD_UNCHANGED)
            cv2.imwrite(str(seq / f[key]), cv2.resize(im, size, interpolation=interp))
        f.update(fl_x=f["fl_x"] * sx, cx=f["cx"] * sx, fl_y=f["fl_y"] * sy, cy=f["cy"] * sy, w=size[0], h=size[1])
    tj.write_text(json.dumps(data, indent=1))


def test_a_sequence_mixing_image_sizes_trains_and_reconstructs(case, tmp_path):
    """A third of the frames at 96x80 among 64x64 ones, each with its own intrinsics: training and
    loading for registration work per frame, and the surface is as close to the truth as usual."""
    from nerfreg_ns.data.truth import read_truth
    from nerfreg_ns.evaluate import TruthModel, evaluate_reconstruction
    from nerfreg_ns.register.inputs import load_sequence

    mixed = tmp_path / "case"
    shutil.copytree(case, mixed)
    _mix_image_sizes(mixed / "seq1", 3, (96, 80))
    proc = ns_train(mixed / "seq1", tmp_path / "runs", 200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seq = load_sequence(tmp_path / "runs" / "seq1" / "nerfreg-feature" / "run" / "config.yml", "seq1")
    assert {m.shape for m in seq.masks} == {(64, 64), (80, 96)}
    assert seq.mask_trust.all()  # no frame taken for a bad mask because of its size
    res = evaluate_reconstruction(seq.points, TruthModel(read_truth(mixed / "truth.json"), samples=5000), "seq1", visible_from="seq1")
    assert res["chamfer_frac"] < 0.04, res
