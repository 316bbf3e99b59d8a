"""nerfreg-batch on a local Ray cluster of this machine: three tiny objects and one whose sequence
2 is unusable, a transient failure retried, a second run that redoes nothing, and bad input."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import run_cli
from nerfreg_ns.data.procedural import make_default_part
from nerfreg_ns.data.synth import SynthOptions, make_case

TINY_TRAIN = ("--max-num-iterations 150 --pipeline.nerf-steps 150 --pipeline.model.density-res 64 "
              "--pipeline.datamanager.train-num-rays-per-batch 1024 nerfreg-data --hull-res 64")


def _batch(cases: Path, out: Path, ray_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    return run_cli("batch", "--cases", cases, "--out", out, "--num-cpus", 2, "--cpus-per-train", 1, "--ray-temp-dir", ray_dir,
                   f"--train-args={TINY_TRAIN}", *extra)


def _ray_processes(ray_dir: Path) -> list[str]:
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout.splitlines()
    return [p for p in ps if str(ray_dir) in p]


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch")
    cases = root / "cases"
    for i in range(3):
        (cases / f"part_{i}").mkdir(parents=True)
        make_case(make_default_part(), "nerfreg_part", "mm", SynthOptions(views=8, width=64, height=64, seed=20 + i), cases / f"part_{i}")
    bad = cases / "part_bad"
    bad.mkdir()
    make_case(make_default_part(), "nerfreg_part", "mm", SynthOptions(views=8, width=64, height=64, seed=30), bad)
    for m in (bad / "seq2" / "masks").glob("*.png"):  # a segmenter that found nothing
        cv2.imwrite(str(m), np.zeros((64, 64), np.uint8))
    ray_dir = Path(tempfile.mkdtemp(prefix="nrb", dir="/tmp"))  # Ray's socket paths must stay under 107 bytes
    first = _batch(cases, root / "out", ray_dir, "--fail-once", "part_1")
    assert not _ray_processes(ray_dir), "the batch left Ray running"
    return cases, root / "out", ray_dir, first


def _mtimes(out: Path) -> dict[str, float]:
    files = [*out.glob("objects/*/runs/*/*/batch/batch_done.json"), *out.glob("objects/*/runs/*/*/batch/nerfstudio_models/*"),
             *out.glob("objects/*/register/registration.json")]
    return {str(f): f.stat().st_mtime for f in files}


def test_the_good_objects_are_labelled_and_the_bad_one_reported(batch):
    _, out, _, proc = batch
    assert proc.returncode == 4, proc.stderr[-2000:]  # one object failed: the batch says so in its exit code
    summary = json.loads((out / "summary.json").read_text())
    objects = summary["objects"]
    for name in ("part_0", "part_1", "part_2"):
        assert objects[name]["status"] in ("labelled", "not confident"), objects[name]
        assert objects[name]["errors"] is not None and objects[name]["seconds"]["train_seq1"] > 0
    assert objects["part_bad"]["status"] == "failed" and "masks are empty" in objects["part_bad"]["error"]
    assert "part_bad: FAILED" in proc.stderr and "failed: part_bad" in proc.stdout
    assert (out / "summary.md").read_text().count("| part_") == 4


def test_a_transient_failure_is_retried(batch):
    _, out, _, proc = batch
    assert (out / "objects" / "part_1" / "logs" / "injected_failure").is_file()  # it did fail once
    assert json.loads((out / "summary.json").read_text())["objects"]["part_1"]["status"] != "failed"


def test_one_bop_dataset_holds_every_labelled_object(batch):
    _, out, _, _ = batch
    info = json.loads((out / "bop" / "models" / "models_info.json").read_text())
    assert sorted(info) == ["1", "2", "3"]  # part_0..2 in name order; part_bad (4) has no labels
    assert sorted(p.name for p in (out / "bop" / "models").glob("*.ply")) == [f"obj_00000{i}.ply" for i in (1, 2, 3)]
    scenes = sorted((out / "bop" / "scenes").iterdir())
    assert [s.name for s in scenes] == [f"{i:06d}" for i in range(1, 7)]
    for k, scene in enumerate(scenes):
        gt = json.loads((scene / "scene_gt.json").read_text())
        assert {e["obj_id"] for entries in gt.values() for e in entries} == {k // 2 + 1}
        assert len(list((scene / "rgb").glob("*.png"))) == len(gt) == 8
    own = json.loads((out / "objects" / "part_0" / "register" / "bop" / "scenes" / "000001" / "scene_gt.json").read_text())
    assert {e["obj_id"] for entries in own.values() for e in entries} == {1}  # the object's own labels untouched


def test_a_second_run_retrains_nothing(batch):
    cases, out, ray_dir, _ = batch
    before = _mtimes(out)
    assert len(before) > 6
    proc = _batch(cases, out, ray_dir)
    assert proc.returncode == 4, proc.stderr[-2000:]
    assert _mtimes(out) == before
    summary = json.loads((out / "summary.json").read_text())
    assert all(o.get("retrained") == [] for n, o in summary["objects"].items() if n != "part_bad")
    assert not _ray_processes(ray_dir)


def test_bad_input_gets_one_line_and_nothing_in_out(batch, tmp_path):
    cases, _, ray_dir, _ = batch
    lonely = tmp_path / "lonely"
    (lonely / "obj" / "seq1").mkdir(parents=True)
    (lonely / "obj" / "seq1" / "transforms.json").write_text("{}")
    for args, needle in (
        (["--cases", lonely], "no seq2/"),
        (["--cases", cases, "--address", "127.0.0.1:1"], "no Ray cluster answers at --address 127.0.0.1:1"),
        (["--cases", cases, "--num-cpus", 1, "--cpus-per-train", 2, "--ray-temp-dir", ray_dir], "has 2 CPUs for one training"),
    ):
        out = tmp_path / "out"
        proc = run_cli("batch", *args, "--out", out)
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert needle in proc.stderr and "Traceback" not in proc.stderr
        assert not out.exists()
