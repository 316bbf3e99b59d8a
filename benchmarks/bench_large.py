"""Image size end to end (issue 15): the same object and capture at several image sizes, each
stage timed with its peak memory, in one run so the ratios compare like with like.

    .venv/bin/python benchmarks/bench_large.py --work /tmp/bench_large [--object 5] [--sizes 256x256 1280x720]
        [--capture realistic] [--method nerfreg-field] [--train-args ...]

Per size: `nerfreg-synth` (60 views per side), `ns-train METHOD` on both sequences (the default
`nerfreg-field`, what a user trains for the default registration),
`nerfreg-register` with its defaults, `nerfreg-eval`; every command in a subprocess of its own,
its wall time and peak resident memory (the child's, from wait4) recorded, and
nerfreg-register's own stage table, all under WORK/SIZE/METHOD. Each stage is skipped when its
output exists (resumable); WORK/large.md holds the table. Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SHARED = ROOT.parent / "shared" / "data" / "tless_scaled"


def timed(cmd: list, log: Path) -> dict:
    """Runs cmd, output to log; returns wall seconds, peak memory (MiB) and the exit code."""
    t = time.time()
    with open(log, "w") as f:
        p = subprocess.Popen([str(c) for c in cmd], stdout=f, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return {"time_s": round(time.time() - t, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "exit": p.returncode}


def run_size(size: str, obj: str, capture: str, work: Path, method: str, train_args: list[str]) -> dict:
    w, h = size.split("x")
    root = work / size / method  # a folder per method: a resumed run never scores another method's registration
    root.mkdir(parents=True, exist_ok=True)
    rec_path = root / "stages.json"
    rec = json.loads(rec_path.read_text()) if rec_path.exists() else {}

    def stage(name: str, done: Path, cmd: list) -> None:
        if name in rec and done.exists():
            return
        print(f"  {size}: {name}", flush=True)
        rec[name] = timed(cmd, root / f"{name}.log")
        rec_path.write_text(json.dumps(rec, indent=2))
        if rec[name]["exit"] not in (0, 3):
            raise SystemExit(f"{name} failed at {size}: see {root / (name + '.log')}")

    case = root / "case"
    src = ["--part", "random", "--seed", obj[1:]] if obj.startswith("p") else ["--mesh", SHARED / f"obj_{int(obj):02d}.stl", "--obj-id", obj]
    stage("synth", case / "truth.json", [BIN / "nerfreg-synth", *src, "--out", case, "--views", 60, "--width", w, "--height", h,
                                         "--capture", capture, "--overwrite"])
    for seq in ("seq1", "seq2"):
        stage(f"train {seq}", root / "runs" / seq / method / "bench" / "nerfstudio_models",
              [BIN / "ns-train", method, "--data", case / seq, "--output-dir", root / "runs", "--timestamp", "bench",
               *train_args])
    cfg = lambda s: root / "runs" / s / method / "bench" / "config.yml"  # noqa: E731
    stage("register", root / "reg" / "registration.json",
          [BIN / "nerfreg-register", "--seq1", cfg("seq1"), "--seq2", cfg("seq2"), "--out", root / "reg", "--overwrite"])
    stage("eval", root / "eval.json", [BIN / "nerfreg-eval", "--truth", case / "truth.json", "--registration",
                                       root / "reg" / "registration.json", "--recon", root / "reg" / "merged.ply", "--out", root / "eval.json"])
    reg = json.loads((root / "reg" / "registration.json").read_text())
    ev = json.loads((root / "eval.json").read_text())
    return {"stages": rec, "register_stages": reg.get("stages", []), "confident": reg["confident"],
            "registration": ev["registration"], "merged_chamfer_frac": ev["reconstruction"]["chamfer_frac"]}


def table(results: dict) -> str:
    sizes = list(results)
    names = list(dict.fromkeys(n for r in results.values() for n in r["stages"]))
    lines = ["| stage | " + " | ".join(f"{s} time (s) | {s} peak (MiB)" for s in sizes) + " | time ratio |",
             "| --- | " + " | ".join("--- | ---" for _ in sizes) + " | --- |"]
    for n in names:
        cells = [f"{results[s]['stages'][n]['time_s']:.1f} | {results[s]['stages'][n]['peak_rss_mb']:.0f}" for s in sizes]
        ratio = results[sizes[-1]]["stages"][n]["time_s"] / max(results[sizes[0]]["stages"][n]["time_s"], 1e-9)
        lines.append(f"| {n} | " + " | ".join(cells) + f" | {ratio:.2f} |")
    total = {s: sum(v["time_s"] for k, v in results[s]["stages"].items() if k != "synth") for s in sizes}
    lines.append("| **end to end (train both + register + eval)** | " + " | ".join(f"**{total[s]:.1f}** | -" for s in sizes)
                 + f" | **{total[sizes[-1]] / total[sizes[0]]:.2f}** |")
    lines += ["", "nerfreg-register's own stages (s / peak MiB):", ""]
    for s in sizes:
        lines.append(f"- {s}: " + ", ".join(f"{r['stage']} {r['time_s']:.1f} s / {r['peak_rss_mb']:.0f}" for r in results[s]["register_stages"]))
    lines += ["", "| size | success | surface err / d | rot err (deg) | confident | merged Chamfer / d |", "| --- | --- | --- | --- | --- | --- |"]
    for s in sizes:
        r = results[s]
        g = r["registration"]
        lines.append(f"| {s} | {'yes' if g['success'] else 'no'} | {g['surface_error_frac']:.4f} | {g['rotation_error_deg']:.2f} | "
                     f"{'yes' if r['confident'] else 'no'} | {r['merged_chamfer_frac']:.4f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="/tmp/bench_large")
    ap.add_argument("--object", default="5", help="T-LESS part number, or pN for procedural part N")
    ap.add_argument("--sizes", nargs="+", default=["256x256", "1280x720"], help="WxH; ratios are against the first")
    ap.add_argument("--capture", default="realistic", choices=["clean", "realistic"])
    ap.add_argument("--method", default="nerfreg-field", choices=["nerfreg-field", "nerfreg-feature"],
                    help="what ns-train trains on both sequences (nerfreg-feature: the keys too)")
    ap.add_argument("--train-args", nargs=argparse.REMAINDER, default=[], help="extra ns-train flags, last on the line")
    args = ap.parse_args()
    work = Path(args.work)
    results = {s: run_size(s, args.object, args.capture, work, args.method, args.train_args) for s in args.sizes}
    (work / "large.md").write_text(table(results))
    print((work / "large.md").read_text())


if __name__ == "__main__":
    main()
