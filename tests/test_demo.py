"""`nerfreg-demo` (the README's main job) runs the whole pipeline, resumes for real when
interrupted, and tells the truth about the result."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import VENV_BIN

ARGS = ("--views", "10", "--size", "64", "--preset", "tiny", "--keys")  # --keys: seq1 trains long enough to interrupt


def demo(*args) -> subprocess.CompletedProcess:
    return subprocess.run([str(VENV_BIN / "nerfreg-demo"), *map(str, args)], capture_output=True, text=True, timeout=1500)


def _interrupt_after_first_checkpoint(out):
    """Starts the demo and presses Ctrl-C (SIGINT to its process group) once sequence 1's
    training has saved its first checkpoint; returns the finished process and its output."""
    ckpts = out / "runs" / "seq1" / "nerfreg-feature" / "demo" / "nerfstudio_models"
    # A suite started in the background (`make test &`) inherits SIGINT ignored, and so would the demo
    # and its ns-train: they would never see the Ctrl-C. The user's terminal delivers it; so must the test.
    proc = subprocess.Popen([str(VENV_BIN / "nerfreg-demo"), "--out", str(out), *ARGS], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 900  # a bound on the wait, not a measurement
        while not (ckpts.is_dir() and any(ckpts.glob("step-*.ckpt"))):
            assert proc.poll() is None, "the demo ended before seq1 saved a checkpoint"
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.2)
        time.sleep(0.5)  # let the checkpoint file be written whole
        os.killpg(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:  # a failed wait must not leave the demo training behind the suite
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode, stdout, stderr


def test_an_interrupted_demo_resumes_its_training_and_its_exit_code_is_the_evaluation(tmp_path):
    from nerfreg_ns.cli.demo import train_args
    from nerfreg_ns.nerf.saved_surface import SURFACE_FILE, latest_step

    out = tmp_path / "demo"
    run1 = out / "runs" / "seq1" / "nerfreg-feature" / "demo"
    code, _, stderr = _interrupt_after_first_checkpoint(out)
    stopped = latest_step(run1)
    total = train_args("tiny", keys=True)[2]
    assert code != 0 and "Traceback" not in stderr, stderr
    assert stopped is not None and stopped < total - 1  # a half-trained run: it must not pass for a finished one
    assert not (out / "register").exists() and not (run1 / SURFACE_FILE).exists()

    proc = demo("--out", out, *ARGS)
    assert proc.returncode in (0, 1), proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "train nerfreg-feature on seq1 (preset tiny; log in" in proc.stdout
    assert "train nerfreg-field on seq2 (preset tiny; log in" in proc.stdout  # the default registration needs no keys there
    assert f"resuming from step {stopped + 1} of {total}" in proc.stdout, proc.stdout
    # the live bar's last state: every step of each training, and the stage it ended in
    assert f"{total}/{total} steps" in proc.stdout and "{0}/{0} steps".format(train_args("tiny", keys=False)[2]) in proc.stdout, proc.stdout
    assert latest_step(run1) == total - 1 and (run1 / SURFACE_FILE).is_file()
    for stage in ("[3/5]", "[4/5]", "[5/5]"):
        assert stage in proc.stdout
    for rel in ("case/truth.json", "case/preview.png", "register/registration.json", "register/merged.ply",
                "register/report.html", "register/labels_qa.json", "register/bop/scenes/000002/scene_gt_info.json", "eval.json"):
        assert (out / rel).is_file(), rel
    result = json.loads((out / "eval.json").read_text())
    assert (proc.returncode == 0) == result["registration"]["success"]
    assert ("SUCCESS" if result["registration"]["success"] else "FAILED") in proc.stdout
    assert result["reconstruction"]["chamfer_frac"] > 0
    # a finished demo called again: nothing is rendered, trained or registered again
    again = demo("--out", out, *ARGS)
    assert again.returncode == proc.returncode
    assert "[2/5]" not in again.stdout and "[4/5]" not in again.stdout and "[5/5]" in again.stdout


def test_a_stage_exit_code_is_accepted_only_where_it_is_expected(tmp_path):
    from nerfreg_ns.cli.demo import _stage
    from nerfreg_ns.errors import ExitCode, NerfregError

    three = [sys.executable, "-c", "raise SystemExit(3)"]
    with pytest.raises(NerfregError, match=r"stage failed \(exit 3\)"):
        _stage("a training", three, tmp_path / "a.log")  # 3 means "not confident", from nerfreg-register only
    assert _stage("a registration", three, tmp_path / "b.log", ok=(ExitCode.OK, ExitCode.NOT_CONFIDENT)) >= 0


def test_demo_stage_failure_is_one_clear_error(tmp_path):
    out = tmp_path / "demo"
    (out / "case").mkdir(parents=True)
    (out / "case" / "truth.json").write_text("{}")  # a broken earlier output: training cannot find its data
    proc = demo("--out", out, "--views", "4", "--size", "32", "--preset", "tiny")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "nerfreg-demo: error: stage failed" in proc.stderr, proc.stderr
