"""`nerfreg-demo` (the README's main job) runs the whole pipeline and tells the truth about it."""

from __future__ import annotations

import json
import subprocess

from conftest import VENV_BIN


def demo(*args) -> subprocess.CompletedProcess:
    return subprocess.run([str(VENV_BIN / "nerfreg-demo"), *map(str, args)], capture_output=True, text=True, timeout=1500)


def test_demo_runs_every_stage_and_its_exit_code_is_the_evaluation(tmp_path):
    out = tmp_path / "demo"
    proc = demo("--out", out, "--views", "10", "--size", "64", "--preset", "tiny")
    assert proc.returncode in (0, 1), proc.stdout[-2000:] + proc.stderr[-2000:]
    for stage in ("[1/5]", "[2/5]", "[3/5]", "[4/5]", "[5/5]"):
        assert stage in proc.stdout
    for rel in ("case/truth.json", "case/preview.png", "register/registration.json", "register/merged.ply",
                "register/report.png", "register/bop/scenes/000002/scene_gt.json", "eval.json"):
        assert (out / rel).is_file(), rel
    result = json.loads((out / "eval.json").read_text())
    assert (proc.returncode == 0) == result["registration"]["success"]
    assert ("SUCCESS" if result["registration"]["success"] else "FAILED") in proc.stdout
    assert result["reconstruction"]["chamfer_frac"] > 0
    # a second call resumes: nothing is rendered or trained again, only the evaluation reruns
    again = demo("--out", out, "--views", "10", "--size", "64", "--preset", "tiny")
    assert again.returncode == proc.returncode
    assert "[2/5]" not in again.stdout and "[4/5]" not in again.stdout and "[5/5]" in again.stdout


def test_demo_stage_failure_is_one_clear_error(tmp_path):
    out = tmp_path / "demo"
    (out / "case").mkdir(parents=True)
    (out / "case" / "truth.json").write_text("{}")  # a broken earlier output: training cannot find its data
    proc = demo("--out", out, "--views", "4", "--size", "32", "--preset", "tiny")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "nerfreg-demo: error: stage failed" in proc.stderr, proc.stderr
