"""nerfreg-demo: the main job end to end on the embedded default part.

Runs, as a user would, the commands the README documents: nerfreg-synth, ns-train
nerfreg-field on both sequences (nerfreg-feature on sequence 1 with --keys), nerfreg-register,
nerfreg-eval against the known truth.
Each stage is skipped when its output is complete, so an interrupted demo resumes: a training
whose last checkpoint is short of its final step continues from it (`--load-dir`), one with no
checkpoint starts again.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from nerfreg_ns.cli import console_script as _bin
from nerfreg_ns.cli import run_cli
from nerfreg_ns.errors import ExitCode, NerfregError

# (field steps, key steps, extra ns-train options): smaller trainings for a quick look and for the
# test suite; "default" is ns-train's own (None: the method's default steps).
PRESETS: dict[str, tuple[int | None, int | None, list[str]]] = {
    "default": (None, None, []),
    "quick": (600, 300, []),
    "tiny": (150, 200, ["--pipeline.model.density-res", "64", "--pipeline.datamanager.train-num-rays-per-batch", "1024",
                        "--pipeline.query-size", "48", "--pipeline.embed-batch-images", "4", "--steps-per-save", "100"]),
}


@dataclass
class DemoConfig:
    """Run nerfreg on the embedded procedural part: render both sequences, train the object field
    on each (nerfreg-field; nerfreg-feature on sequence 1 with --keys), register them, and score
    the result against the known truth."""

    out: Path = Path("demo_out")
    """Working folder; each stage writes a subfolder and is skipped if it is already there."""
    views: int = 60
    """Views per sequence."""
    size: int = 128
    """Image width and height (pixels)."""
    preset: Literal["default", "quick", "tiny"] = "default"
    """Training size: default (ns-train's own), quick, or tiny (tests)."""
    keys: bool = False
    """Also train sequence 1's keys and query encoder (nerfreg-feature instead of nerfreg-field: what the
    embedding-pnp generator needs; the default registration uses none). Several minutes more."""
    restart: bool = False
    """Delete the working folder first instead of resuming."""


def train_args(preset: str, keys: bool) -> tuple[str, list[str], int]:
    """(method, ns-train options, steps in all) of one sequence's training in this preset."""
    from nerfreg_ns.nerf.config import EMBED_STEPS, NERF_STEPS

    field, embed, extra = PRESETS[preset]
    field, embed = field or NERF_STEPS, (embed or EMBED_STEPS) if keys else 0
    total = field + embed
    steps = [] if preset == "default" else ["--pipeline.nerf-steps", str(field), "--max-num-iterations", str(total)]
    return ("nerfreg-feature" if keys else "nerfreg-field"), [*steps, *extra], total


def _stage(title: str, cmd: list, log: Path, ok: tuple[int, ...] = (ExitCode.OK,), watch: Path | None = None) -> float:
    """Runs one command, its output in `log`; an exit code outside `ok` ends the demo with the log's
    tail. `watch`: a run folder whose progress file (`nerf.progress`) drives a progress bar."""
    print(f"{title}\n    $ {' '.join(Path(c).name if i == 0 else str(c) for i, c in enumerate(cmd))}", flush=True)
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    t = time.time()
    with open(log, "w") as f:
        proc = subprocess.Popen([str(c) for c in cmd], stdout=f, stderr=subprocess.STDOUT, env=env)
        try:
            if watch is not None:
                _follow(proc, watch)
            code = proc.wait()
        finally:  # interrupted: the child got the same Ctrl-C; do not leave it running
            if proc.poll() is None:
                proc.terminate()
                proc.wait()
    took = time.time() - t
    if code not in ok:
        print("\n".join("    | " + line for line in log.read_text().splitlines()[-12:]), file=sys.stderr)
        raise NerfregError(f"stage failed (exit {code}); its log is {log}", exit_code=ExitCode.STAGE_FAILED)
    print(f"    done in {took:.0f} s", flush=True)
    return took


def _follow(proc: subprocess.Popen, run: Path) -> None:
    """A live bar while `proc` trains `run`: its stage, steps done of all, time left."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from nerfreg_ns.nerf.progress import STAGES, read_progress

    columns = (TextColumn("    {task.description:<20}"), BarColumn(bar_width=20), MofNCompleteColumn(), TextColumn("steps"),
               TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, transient=False) as bar:
        task, started = bar.add_task(STAGES["set-up"], total=None), False
        while True:
            running = proc.poll() is None  # read once more after the end: the bar shows the last step
            p = read_progress(run)
            if p is not None:
                if not started:  # a resumed run: the speed (time left) from this training's steps, not its earlier ones
                    if p["done"] > 0:
                        bar.reset(task, total=p["total"], completed=p["done"])
                    started = True
                bar.update(task, description=STAGES.get(p["stage"], p["stage"]), total=p["total"], completed=p["done"])
            if not running:
                break
            time.sleep(0.5)


def _train(title: str, data: Path, runs: Path, run: Path, preset: str, keys: bool, log: Path) -> float | None:
    """Trains (or finishes training) one sequence; None when its run was already complete."""
    from nerfreg_ns.nerf.progress import PROGRESS_FILE
    from nerfreg_ns.nerf.saved_surface import latest_step

    method, args, total = train_args(preset, keys)
    done = latest_step(run)
    if done is not None and done >= total - 1:
        return None
    cmd = [_bin("ns-train"), method, "--data", data, "--output-dir", runs, "--timestamp", run.name, "--vis", "tensorboard", *args]
    if done is None:
        shutil.rmtree(run, ignore_errors=True)  # stopped before its first checkpoint: start again
    else:  # nerfstudio counts --max-num-iterations from the loaded step on
        cmd += ["--load-dir", run / "nerfstudio_models", "--max-num-iterations", total - (done + 1)]
        title += f", resuming from step {done + 1} of {total}"
        (run / PROGRESS_FILE).unlink(missing_ok=True)  # the stopped training's last word
    took = _stage(title, cmd, log, watch=run)
    reached = latest_step(run)
    if reached is None or reached < total - 1:  # ns-train exits 0 when interrupted
        raise NerfregError(f"training stopped at step {reached} of {total} (interrupted?); run the demo again to resume. "
                           f"Log: {log}", exit_code=ExitCode.STAGE_FAILED)
    return took


def main(cfg: DemoConfig) -> int:
    try:
        return _main(cfg)
    except KeyboardInterrupt:  # what is done stays: that is how the demo resumes
        raise NerfregError("interrupted; run the same command again to resume", exit_code=ExitCode.INTERRUPTED) from None


def _main(cfg: DemoConfig) -> int:
    out = cfg.out
    if cfg.restart and out.exists():
        shutil.rmtree(out)
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    chosen = {"preset": cfg.preset, "views": cfg.views, "size": cfg.size, "keys": cfg.keys}
    record = out / "demo_options.json"
    if record.exists() and json.loads(record.read_text()) != chosen:  # resuming with other options would mix runs
        was = json.loads(record.read_text())
        if "keys" not in was:
            raise NerfregError(f"{out} holds a demo made by an earlier nerfreg-demo (nerfreg-feature on both sequences): "
                               "use another --out, or --restart")
        raise NerfregError(f"{out} holds a demo made with --preset {was.get('preset')} --views {was.get('views')} "
                           f"--size {was.get('size')}{' --keys' if was['keys'] else ''}: give the same options to resume, "
                           "or --restart")
    record.write_text(json.dumps(chosen))
    case, runs, reg = out / "case", out / "runs", out / "register"
    timings: dict[str, float] = {}
    if not (case / "truth.json").exists():
        timings["synth_s"] = _stage(f"[1/5] render the embedded part: {cfg.views} views per side at {cfg.size}x{cfg.size}",
                                    [_bin("nerfreg-synth"), "--out", case, "--views", cfg.views, "--width", cfg.size,
                                     "--height", cfg.size, "--overwrite"], logs / "synth.log")
    configs = {}
    for i, seq in enumerate(("seq1", "seq2")):
        keys = cfg.keys and seq == "seq1"  # only sequence 1's keys are ever matched (embedding-pnp)
        method = train_args(cfg.preset, keys)[0]
        run = runs / seq / method / "demo"
        configs[seq] = run / "config.yml"
        took = _train(f"[{2 + i}/5] train {method} on {seq} (preset {cfg.preset}; log in {logs / f'train_{seq}.log'})",
                      case / seq, runs, run, cfg.preset, keys, logs / f"train_{seq}.log")
        if took is not None:
            timings[f"train_{seq}_s"] = took
    if not (reg / "registration.json").exists() or any(k.startswith("train_") for k in timings):  # new runs: register again
        from nerfreg_ns.cli.register import DEFAULTS  # the demo runs nerfreg-register's own defaults, spelled out

        plugins = [a for kind in ("generator", "verifier", "refiner") for a in (f"--{kind}", DEFAULTS[kind])]
        timings["register_s"] = _stage(f"[4/5] register seq2 to seq1 ({' + '.join(plugins[1::2])})",
                                       [_bin("nerfreg-register"), "--seq1", configs["seq1"], "--seq2", configs["seq2"],
                                        *plugins, "--out", reg, "--overwrite"], logs / "register.log",
                                       ok=(ExitCode.OK, ExitCode.NOT_CONFIDENT))  # not confident: the evaluation says more
    timings["eval_s"] = _stage("[5/5] score it against the truth (nerfreg-eval)",
                               [_bin("nerfreg-eval"), "--truth", case / "truth.json", "--registration", reg / "registration.json",
                                "--recon", reg / "merged.ply", "--out", out / "eval.json"], logs / "eval.log")
    result = json.loads((out / "eval.json").read_text())
    r, m = result["registration"], result["reconstruction"]
    confident = json.loads((reg / "registration.json").read_text())["confident"]
    verdict = "SUCCESS" if r["success"] else "FAILED"
    print(f"\n{verdict}: rotation error {r['rotation_error_deg']:.2f} deg, translation error {r['translation_error']:.2f} "
          f"{r['unit']}, surface error {100 * r['surface_error_frac']:.2f}% of d (success below 1%), "
          f"verifier {'confident' if confident else 'NOT confident'}; merged model vs CAD: Chamfer "
          f"{100 * m['chamfer_frac']:.2f}% of d")
    print(f"look at {reg / 'report.html'} and {case / 'preview.png'}; labels in {reg / 'bop'}; "
          f"numbers in {out / 'eval.json'}")
    previous = json.loads((out / "demo.json").read_text()).get("timings_s", {}) if (out / "demo.json").exists() else {}
    summary = {"preset": cfg.preset, "success": r["success"], "timings_s": {**previous, **timings}}  # a resumed demo keeps earlier stages' times
    (out / "demo.json").write_text(json.dumps(summary, indent=2))
    return ExitCode.OK if r["success"] else ExitCode.WRONG


def entrypoint() -> None:
    sys.exit(run_cli("nerfreg-demo", DemoConfig, main))


if __name__ == "__main__":
    entrypoint()
