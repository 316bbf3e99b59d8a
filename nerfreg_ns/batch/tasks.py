"""The Ray tasks of a labelling batch: train one sequence, register one object (and label it).

Each task runs the same commands a user would (`ns-train`, `nerfreg-register`) in a subprocess
with as many torch threads as the task was given CPUs (a GPU, when Ray gave it one, is seen
through CUDA_VISIBLE_DEVICES). Each writes its outputs so that a finished one is recognised and
skipped: a training's `batch_done.json` is written last, atomically; a registration's folder
appears whole or not at all. Transient failures (a killed process, a worker that died) are
retried by Ray; bad input (exit code 2: the command said why) is not.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import ray

from nerfreg_ns.cli import console_script as _bin

DONE_FILE = "batch_done.json"
"""Written last into a training's run folder: the run is complete (and which options made it)."""


class TransientError(RuntimeError):
    """A failure worth trying again (a killed process, a crash without a message)."""


class BadInput(RuntimeError):
    """A failure that the same input will meet again: reported, never retried."""


@ray.remote(num_cpus=0)
class ProgressBoard:
    """Where tasks say what they are doing, for the driver's live lines: name -> (stage, since)."""

    def __init__(self) -> None:
        self.state: dict[str, tuple[str, float]] = {}

    def set(self, name: str, stage: str) -> None:
        self.state[name] = (stage, time.time())

    def get(self) -> dict[str, tuple[str, float]]:
        return dict(self.state)


def _run(cmd: list, log: Path, threads: int, ok: tuple[int, ...] = (0,)) -> int:
    """Runs `cmd` with `threads` torch/OpenMP threads, its output in `log`; exit code 2 (bad input)
    raises BadInput with the command's last error line, any other failure TransientError."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONWARNINGS="ignore")
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as f:
        code = subprocess.run([str(c) for c in cmd], stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    if code in ok:
        return code
    lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    said = next((ln for ln in reversed(lines) if "error" in ln.lower()), lines[-1] if lines else "")
    if code == 2:
        raise BadInput(f"{Path(str(cmd[0])).name} refused the input: {said.strip()} (log: {log})")
    raise TransientError(f"{Path(str(cmd[0])).name} failed (exit {code}): {said.strip()} (log: {log})")


def run_complete(run: Path, options: dict) -> bool:
    """Whether `run` holds a finished training made with `options`."""
    done = run / DONE_FILE
    try:
        return json.loads(done.read_text()) == options and (run / "config.yml").is_file()
    except (OSError, ValueError):
        return False


@ray.remote(max_retries=2, retry_exceptions=[TransientError])
def train_sequence(name: str, seq: str, data: Path, runs: Path, method: str, train_args: list[str], threads: int,
                   board, fail_once: Path | None = None) -> dict:
    """Trains `method` on the dataset `data` into `runs/SEQ/METHOD/batch`, unless that run is
    complete; returns {"config": config.yml, "seconds": time taken (0 when skipped)}.
    `fail_once`: a marker path for tests; its first call raises a TransientError."""
    from nerfreg_ns.io_utils import write_json_atomic

    run = runs / seq / method / "batch"
    options = {"method": method, "train_args": list(train_args), "data": str(data)}
    if run_complete(run, options):
        return {"config": str(run / "config.yml"), "seconds": 0.0, "skipped": True}
    board.set.remote(name, f"training {seq}")
    if fail_once is not None and not fail_once.exists():
        fail_once.parent.mkdir(parents=True, exist_ok=True)
        fail_once.write_text("failed once on purpose\n")
        raise TransientError(f"{name} {seq}: a failure injected for a test")
    shutil.rmtree(run, ignore_errors=True)  # broken or made with other options: again from the start
    t = time.time()
    _run([_bin("ns-train"), method, "--data", data, "--output-dir", runs, "--timestamp", "batch", "--vis", "tensorboard",
          *train_args], runs.parent / "logs" / f"train_{seq}.log", threads)
    if not (run / "config.yml").is_file():
        raise TransientError(f"{name} {seq}: ns-train ended without a run in {run}")
    write_json_atomic(run / DONE_FILE, options)
    return {"config": str(run / "config.yml"), "seconds": time.time() - t, "skipped": False}


@ray.remote(max_retries=2, retry_exceptions=[TransientError])
def register_object(name: str, train1: dict, train2: dict, out: Path, register_args: list[str], threads: int, board) -> dict:
    """Registers an object's two runs into `out` (registration, merged model, labels) unless a
    registration newer than both runs is there; returns what the summary needs of it."""
    reg_file = out / "registration.json"
    newest_run = max(Path(t["config"]).parent.joinpath(DONE_FILE).stat().st_mtime for t in (train1, train2))
    seconds, skipped = 0.0, True
    if not reg_file.is_file() or reg_file.stat().st_mtime < newest_run:
        board.set.remote(name, "registering")
        t = time.time()
        _run([_bin("nerfreg-register"), "--seq1", train1["config"], "--seq2", train2["config"], "--out", out, "--overwrite",
              *register_args], out.parent / "logs" / "register.log", threads, ok=(0, 3))
        seconds, skipped = time.time() - t, False
    reg = json.loads(reg_file.read_text())
    board.set.remote(name, "done")
    return {"registration": str(reg_file), "confident": reg["confident"], "score": reg["score"], "seconds": seconds,
            "skipped": skipped, "labels_flagged": (reg.get("labels_qa") or {}).get("flagged"), "bop": reg.get("bop")}
