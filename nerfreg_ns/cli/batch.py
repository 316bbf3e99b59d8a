"""nerfreg-batch: many objects, two sequences each, trained, registered and labelled on Ray, into
one BOP dataset.

    nerfreg-batch --cases CASES --out OUT                      # an embedded one-machine Ray cluster
    nerfreg-batch --bop-root ROOT --layout onboarding --out OUT
    nerfreg-batch --cases CASES --out OUT --address auto       # a cluster started with `ray start`

Per object: both trainings (independent tasks), then the registration with its labels (a task
that waits for both). A failed or not-confident object is reported and never stops the others.
Run the same command again to resume: finished trainings and registrations are kept.
"""

from __future__ import annotations

import os
import sys
import time
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

from nerfreg_ns.cli import run_cli
from nerfreg_ns.errors import ExitCode, NerfregError


@dataclass
class BatchConfig:
    """Train, register and label many objects on Ray; one BOP dataset and a summary out."""

    out: Path
    """Output folder: bop/ (every object), summary.json, summary.md, objects/NAME/ (runs, registration, logs)."""
    cases: Optional[Path] = None
    """A folder of case folders, one per object, each with seq1/ and seq2/ (as nerfreg-synth writes them)."""
    bop_root: Optional[Path] = None
    """A BOP dataset instead of --cases: every obj_X_up / obj_X_down pair of its onboarding split."""
    layout: Literal["onboarding"] = "onboarding"
    """The BOP layout read with --bop-root."""
    split: str = "onboarding_static"
    """The BOP split folder with --bop-root."""
    address: str = "local"
    """Ray cluster: `local` starts one on this machine for the batch; `auto` or HOST:PORT joins a running one."""
    num_cpus: Optional[int] = None
    """CPUs of the local cluster (default: all of this machine's)."""
    cpus_per_train: int = 2
    """CPUs (and torch threads) each training asks for; on a cluster with GPUs a training asks for one GPU instead."""
    method: Literal["nerfreg-field", "nerfreg-feature"] = "nerfreg-field"
    """What each sequence trains (nerfreg-feature adds keys, for the embedding-pnp generator)."""
    train_args: str = ""
    """More ns-train options for every training, as one string (`--train-args="--max-num-iterations 600"`)."""
    register_args: str = ""
    """More nerfreg-register options for every object, as one string (`--register-args="--unit m"`)."""
    ray_temp_dir: Optional[Path] = None
    """Ray's session folder for a local cluster (keep it short: Ray's socket paths must stay under 107 bytes)."""
    fail_once: Optional[str] = None
    """For tests: the first training of this object's sequence 1 fails with a transient error (Ray retries it)."""


def _cases(cfg: BatchConfig):
    from nerfreg_ns.batch.cases import find_cases, onboarding_cases

    if (cfg.cases is None) == (cfg.bop_root is None):
        raise NerfregError("give either --cases DIR or --bop-root ROOT")
    if cfg.cases is not None:
        return find_cases(cfg.cases)
    return onboarding_cases(cfg.bop_root, cfg.split, cfg.out / "objects")


def _start_ray(cfg: BatchConfig):
    """Starts or joins the cluster; returns the options of a training task. Usage statistics stay off."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    import ray

    kwargs = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if cfg.address not in ("local", "auto"):
        _check_reachable(cfg.address)  # Ray itself waits for an address that does not answer, without end
    try:
        if cfg.address == "local":
            if cfg.ray_temp_dir is not None:
                kwargs["_temp_dir"] = str(cfg.ray_temp_dir)
            ray.init(address="local", num_cpus=cfg.num_cpus, **kwargs)
        else:
            ray.init(address=cfg.address, **kwargs)
    except Exception as e:  # Ray raises ConnectionError, ValueError, RuntimeError... for an address it cannot use
        raise NerfregError(f"cannot use the Ray cluster at --address {cfg.address}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    if any(n.get("GPU", 0) >= 1 for n in nodes):
        return {"num_gpus": 1, "num_cpus": 1}, 1
    most = max((n.get("CPU", 0) for n in nodes), default=0)
    if most < cfg.cpus_per_train:
        ray.shutdown()
        raise NerfregError(f"no machine of the Ray cluster has {cfg.cpus_per_train} CPUs for one training (the largest has "
                           f"{most:g}): lower --cpus-per-train")
    return {"num_cpus": cfg.cpus_per_train}, cfg.cpus_per_train


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """A HOST:PORT where something answers, or a one-line error."""
    import socket

    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise NerfregError(f"--address must be local, auto or HOST:PORT (the head's GCS port, 6379 by default), not {address!r}")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as e:
        raise NerfregError(f"no Ray cluster answers at --address {address} ({e.strerror or type(e).__name__}): "
                           "start one with `ray start --head` there, or leave --address out for a local one") from None


def _stage_line(name: str, stage: str, since: float, start: float) -> str:
    return f"{name:<16} {stage:<34} {time.time() - since:6.0f} s   (all {time.time() - start:5.0f} s)"


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # a kill runs the same clean-up as Ctrl-C: the local cluster is shut down


def main(cfg: BatchConfig) -> int:
    import signal

    cases = _cases(cfg)  # every case folder checked before anything is written or started
    signal.signal(signal.SIGTERM, _interrupt)
    train_opts, threads = _start_ray(cfg)
    import ray
    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

    from nerfreg_ns.batch import output, tasks
    from nerfreg_ns.batch.cases import import_case

    try:
        cfg.out.mkdir(parents=True, exist_ok=True)
        board = tasks.ProgressBoard.remote()
        start = time.time()
        pending: dict[str, tuple] = {}
        errors: dict[str, str] = {}
        train_args, register_args = shlex.split(cfg.train_args), shlex.split(cfg.register_args)
        for case in cases:
            try:
                case = import_case(case, cfg.split)
            except NerfregError as e:
                errors[case.name] = str(e)
                continue
            work = cfg.out / "objects" / case.name
            fail = work / "logs" / "injected_failure" if cfg.fail_once == case.name else None
            t1 = tasks.train_sequence.options(**train_opts).remote(case.name, "seq1", case.seq1.resolve(), work / "runs", cfg.method,
                                                                   train_args, threads, board, fail)
            t2 = tasks.train_sequence.options(**train_opts).remote(case.name, "seq2", case.seq2.resolve(), work / "runs", cfg.method,
                                                                   train_args, threads, board)
            reg = tasks.register_object.options(num_cpus=threads).remote(  # threads is 1 where the trainings get a GPU
                case.name, t1, t2, work / "register", register_args, threads, board)
            pending[case.name] = (case, t1, t2, reg)
        results: dict[str, dict] = {}
        with Live(console=Console(stderr=True), refresh_per_second=2, transient=True) as live:
            waiting = {v[3]: k for k, v in pending.items()}
            while waiting:
                done, _ = ray.wait(list(waiting), timeout=0.5)
                finished = [waiting.pop(ref) for ref in done]
                state = ray.get(board.get.remote())
                lines = [_stage_line(n, *state.get(n, ("waiting for CPUs", start)), start) for n in pending if n not in results]
                live.update("\n".join(lines))
                for name in finished:
                    results[name] = _collect(pending[name])
                    print(_done_line(name, results[name]), file=sys.stderr, flush=True)
        summary = _summary(cases, results, errors, cfg, start)
        output.write_summary(cfg.out, summary)
    finally:
        ray.shutdown()
    table = Table(title=f"nerfreg-batch: {cfg.out}")
    for col in output.COLUMNS:
        table.add_column(col)
    for row in output.summary_rows(summary):
        table.add_row(*row)
    Console().print(table)
    print(summary["line"])
    if summary["failed"]:
        return ExitCode.STAGE_FAILED
    return ExitCode.NOT_CONFIDENT if summary["not_confident"] else ExitCode.OK


def _collect(entry: tuple) -> dict:
    """What became of one object: its tasks' results, or the first error among them (one line)."""
    import ray

    from nerfreg_ns.batch import tasks

    _, t1, t2, reg = entry
    try:
        train1, train2, registered = ray.get([t1, t2, reg])
        return {"train1": train1, "train2": train2, "registered": registered}
    except ray.exceptions.RayTaskError as e:
        cause = e.cause if isinstance(e.cause, (tasks.BadInput, tasks.TransientError)) else e
        return {"error": str(cause).strip().splitlines()[-1]}
    except ray.exceptions.RayError as e:  # a worker lost more often than the retries allow
        return {"error": f"{type(e).__name__}: {str(e).strip().splitlines()[0]}"}


def _done_line(name: str, r: dict) -> str:
    if "error" in r:
        return f"{name}: FAILED: {r['error']}"
    reg = r["registered"]
    return f"{name}: labelled, {'confident' if reg['confident'] else 'NOT confident'} (score {reg['score']:.4f})"


def _summary(cases, results, errors, cfg: BatchConfig, start: float) -> dict:
    from nerfreg_ns.batch import output

    objects, labelled = {}, []
    for case in cases:
        r = results.get(case.name, {"error": errors.get(case.name, "not run")})
        o: dict = {"obj_id": case.obj_id, "case": str(case.seq1.parent)}
        if "error" in r:
            o.update(status="failed", error=r["error"])
        else:
            reg = r["registered"]
            o.update(status="labelled" if reg["confident"] else "not confident", confident=reg["confident"], score=reg["score"],
                     labels_flagged=reg["labels_flagged"], registration=reg["registration"],
                     seconds={"train_seq1": r["train1"]["seconds"], "train_seq2": r["train2"]["seconds"], "register": reg["seconds"]},
                     retrained=[s for s, t in (("seq1", r["train1"]), ("seq2", r["train2"])) if not t["skipped"]])
            o["errors"] = output.truth_errors(case, Path(reg["registration"]))
            if reg["bop"]:
                labelled.append((case, Path(reg["registration"]).parent))
        objects[case.name] = o
    scenes = output.merge_bop(cfg.out / "bop", labelled) if labelled else {}
    for name, ids in scenes.items():
        objects[name]["bop_scenes"] = ids
    failed = [n for n, o in objects.items() if o["status"] == "failed"]
    unsure = [n for n, o in objects.items() if o["status"] == "not confident"]
    line = (f"{len(objects) - len(failed) - len(unsure)} of {len(objects)} objects labelled and confident"
            + (f"; not confident: {', '.join(unsure)}" if unsure else "") + (f"; failed: {', '.join(failed)}" if failed else "")
            + f"; {time.time() - start:.0f} s; BOP dataset in {cfg.out / 'bop'}")
    return {"objects": objects, "failed": failed, "not_confident": unsure, "line": line, "seconds": time.time() - start,
            "options": {"method": cfg.method, "cpus_per_train": cfg.cpus_per_train, "train_args": cfg.train_args,
                        "register_args": cfg.register_args, "address": cfg.address}}


def entrypoint() -> None:
    sys.exit(run_cli("nerfreg-batch", BatchConfig, main))


if __name__ == "__main__":
    entrypoint()
