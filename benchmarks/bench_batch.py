"""nerfreg-batch against the plain commands one after another (issue: a labelling batch on Ray):
the same T-LESS objects, the same default trainings and registration, wall time of each, in one run.

    .venv/bin/python benchmarks/bench_batch.py --work /tmp/bench_batch [--objects 5 11 19 23] [--cpus-per-train 2]

The cases are rendered once (`nerfreg-synth`, 60 views per side, 128x128, clean) into
WORK/cases; then, timed: (1) for each object `ns-train nerfreg-field` on seq1 and seq2 and
`nerfreg-register`, one command at a time, into WORK/plain; (2) `nerfreg-batch --cases
WORK/cases --out WORK/batch` (a local Ray cluster of this machine). Both start from nothing (their
folders are removed first). Prints both times, their ratio and the batch's summary line, and
writes WORK/bench_batch.json. Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TLESS = ROOT.parent / "shared" / "data" / "tless_scaled"
BIN = Path(sys.executable).parent


def _run(cmd: list, log: Path, ok: tuple[int, ...] = (0,)) -> None:
    with open(log, "w") as f:
        code = subprocess.run([str(c) for c in cmd], stdout=f, stderr=subprocess.STDOUT).returncode
    if code not in ok:
        raise SystemExit(f"{cmd[0]} failed ({code}); see {log}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench_batch"))
    ap.add_argument("--objects", nargs="+", type=int, default=[5, 11, 19, 23])
    ap.add_argument("--cpus-per-train", type=int, default=2)
    args = ap.parse_args()
    cases, logs = args.work / "cases", args.work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for obj in args.objects:
        case = cases / f"obj_{obj:02d}"
        if not (case / "truth.json").is_file():
            _run([BIN / "nerfreg-synth", "--mesh", TLESS / f"obj_{obj:02d}.stl", "--out", case, "--views", 60, "--overwrite"],
                 logs / f"synth_{obj}.log")
    plain = args.work / "plain"
    shutil.rmtree(plain, ignore_errors=True)
    t = time.time()
    for case in sorted(cases.iterdir()):
        runs = plain / case.name
        for seq in ("seq1", "seq2"):
            _run([BIN / "ns-train", "nerfreg-field", "--data", case / seq, "--output-dir", runs, "--timestamp", "plain",
                  "--vis", "tensorboard"], logs / f"plain_{case.name}_{seq}.log")
        _run([BIN / "nerfreg-register", "--seq1", runs / "seq1" / "nerfreg-field" / "plain" / "config.yml",
              "--seq2", runs / "seq2" / "nerfreg-field" / "plain" / "config.yml", "--out", runs / "register"],
             logs / f"plain_{case.name}_register.log", ok=(0, 3))
    plain_s = time.time() - t
    batch = args.work / "batch"
    shutil.rmtree(batch, ignore_errors=True)
    t = time.time()
    _run([BIN / "nerfreg-batch", "--cases", cases, "--out", batch, "--cpus-per-train", args.cpus_per_train], logs / "batch.log",
         ok=(0, 3, 4))
    batch_s = time.time() - t
    summary = json.loads((batch / "summary.json").read_text())
    result = {"objects": args.objects, "plain_s": plain_s, "batch_s": batch_s, "batch_over_plain": batch_s / plain_s,
              "batch_line": summary["line"], "cpus_per_train": args.cpus_per_train}
    (args.work / "bench_batch.json").write_text(json.dumps(result, indent=2))
    print(f"plain commands one after another: {plain_s:.0f} s; nerfreg-batch: {batch_s:.0f} s "
          f"({batch_s / plain_s:.2f}x); {summary['line']}")


if __name__ == "__main__":
    main()
