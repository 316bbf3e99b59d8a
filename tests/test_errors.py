"""Bad input: one clear line on stderr, a non-zero exit, and nothing partial written."""

import json
import shutil

import numpy as np
import pytest
import trimesh

from conftest import run_cli
from nerfreg_ns.data.images import write_png
from nerfreg_ns.data.nerfstudio_io import read_nerfstudio_dataset
from nerfreg_ns.errors import ExitCode, NerfregError


def assert_clean_failure(proc, fragment, out=None):
    assert proc.returncode == ExitCode.USAGE, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0] and "Traceback" not in proc.stderr, proc.stderr
    assert fragment in lines[0], lines[0]
    if out is not None:
        assert not out.exists(), "a failed command must not leave its output"
        assert not list(out.parent.glob(f".{out.name}*")), "no temporary leftovers"


def test_synth_missing_mesh(tmp_path):
    out = tmp_path / "case"
    assert_clean_failure(run_cli("synth", "--mesh", tmp_path / "nope.stl", "--out", out), "mesh file not found", out)


@pytest.mark.parametrize("name, payload, fragment", [
    ("notes.txt", b"hello", "not a mesh file"),
    ("broken.stl", b"solid x\nthis is not an stl\n", "mesh"),
    ("empty.ply", b"", "mesh"),
])
def test_synth_non_mesh_file(tmp_path, name, payload, fragment):
    bad = tmp_path / name
    bad.write_bytes(payload)
    out = tmp_path / "case"
    assert_clean_failure(run_cli("synth", "--mesh", bad, "--out", out, "--views", 2), fragment, out)


def test_synth_refuses_to_overwrite(tmp_path):
    out = tmp_path / "case"
    out.mkdir()
    assert_clean_failure(run_cli("synth", "--out", out), "already exists")


def test_import_bop_with_an_empty_mask(tiny_case, tmp_path):
    bop = tmp_path / "bop"
    shutil.copytree(tiny_case / "bop", bop)
    write_png(bop / "onboarding_static" / "obj_000001_down" / "mask_visib" / "000002_000000.png", np.zeros((64, 64), bool))
    out = tmp_path / "imported"
    proc = run_cli("import_bop", "--bop-root", bop, "--obj-id", 1, "--out", out, "--layout", "onboarding")
    assert_clean_failure(proc, "image 2: the mask is empty", out)


def test_import_bop_without_scene_camera(tiny_case, tmp_path):
    bop = tmp_path / "bop"
    shutil.copytree(tiny_case / "bop", bop)
    (bop / "onboarding_static" / "obj_000001_up" / "scene_camera.json").unlink()
    out = tmp_path / "imported"
    proc = run_cli("import_bop", "--bop-root", bop, "--obj-id", 1, "--out", out, "--layout", "onboarding")
    assert_clean_failure(proc, "no scene_camera.json", out)


def test_eval_rejects_a_non_rigid_transform(tiny_case, tmp_path):
    truth = json.loads((tiny_case / "truth.json").read_text())
    T = np.array(truth["T_seq1_seq2"])
    T[:3, :3] *= 1.05  # a 5% scale is not a rigid motion
    reg = tmp_path / "reg.json"
    reg.write_text(json.dumps({"T_seq1_seq2": T.tolist()}))
    out = tmp_path / "eval.json"
    proc = run_cli("eval", "--truth", tiny_case / "truth.json", "--registration", reg, "--out", out)
    assert_clean_failure(proc, "not rigid", out)


def test_eval_rejects_a_truth_of_another_object(tiny_case, tmp_path):
    box = tmp_path / "box.stl"
    trimesh.creation.box(extents=[30.0, 20.0, 10.0]).export(box)
    other = tmp_path / "other"
    assert run_cli("synth", "--mesh", box, "--out", other, "--views", 2, "--width", 32, "--height", 32).returncode == 0
    out = tmp_path / "eval.json"
    proc = run_cli("eval", "--truth", other / "truth.json", "--registration", tiny_case / "truth.json", "--out", out)
    assert_clean_failure(proc, "another", out)


def test_eval_rejects_a_reconstruction_in_another_unit(tiny_case, tmp_path):
    recon = tmp_path / "recon_in_m.ply"
    mesh = trimesh.load(tiny_case / "model.ply")
    mesh.apply_scale(0.001)  # metres, while the truth is in mm
    mesh.export(recon)
    proc = run_cli("eval", "--truth", tiny_case / "truth.json", "--recon", recon)
    assert_clean_failure(proc, "another object or unit")


def test_dataset_reader_rejects_empty_mask_and_missing_images(tiny_case, tmp_path):
    ds = tmp_path / "seq1"
    shutil.copytree(tiny_case / "seq1", ds)
    write_png(ds / "masks" / "frame_00001.png", np.zeros((64, 64), bool))
    with pytest.raises(NerfregError, match="frame 1: the mask is empty"):
        read_nerfstudio_dataset(ds)
    (ds / "images" / "frame_00003.png").unlink()
    with pytest.raises(NerfregError, match="image listed but not found"):
        read_nerfstudio_dataset(ds)
