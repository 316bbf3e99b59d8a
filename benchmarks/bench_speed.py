"""Speed of the whole job (issue: an object in 5 minutes on 2 CPU cores): `nerfreg-demo` at full
size with this checkout's default and with an earlier commit's, in one run, and where the time goes.

    .venv/bin/python benchmarks/bench_speed.py --work /tmp/bench_speed [--previous cd85e29] [--only current|previous]

1. `nerfreg-demo --out WORK/current` from this checkout (60 views per side, 128x128, default
   preset): each command's wall time (the demo's `demo.json`), the trainings' own parts (their
   progress files' `times_s`: visual hull, frame check, field steps, key steps, saving the
   surface; the rest of a training's wall time is start-up: imports, reading the images) and
   nerfreg-register's stages (`registration.json`: loading, generator, each refiner, verifier,
   merged model, BOP labels, report).
2. The same demo from `--previous` (a git worktree of that commit in WORK/previous_code, run with
   this venv: its package and its own entry points are put first on PYTHONPATH), for the ratio.
Each demo resumes when stopped (it is `nerfreg-demo`); a finished one is not run again. Writes
WORK/speed.md (the tables) and WORK/speed.json. Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
COMMANDS = [("synth_s", "nerfreg-synth (render both sequences)"), ("train_seq1_s", "ns-train, sequence 1"),
            ("train_seq2_s", "ns-train, sequence 2"), ("register_s", "nerfreg-register"), ("eval_s", "nerfreg-eval")]


def previous_checkout(commit: str, work: Path) -> Path:
    """A worktree of `commit` with a dist-info carrying that commit's entry points, so that
    nerfstudio discovers the methods the old code defines (not this checkout's)."""
    code = work / "previous_code"
    if not (code / "nerfreg_ns").is_dir():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--force", str(code), commit], check=True,
                       stdout=subprocess.DEVNULL)
    text = (code / "pyproject.toml").read_text()
    groups = re.findall(r'\[project\.entry-points\."([^"]+)"\]\n((?:[^\[\n][^\n]*\n)+)', text)
    scripts = re.search(r"\[project\.scripts\]\n((?:[^\[\n][^\n]*\n)+)", text)
    lines = []
    for name, body in ([("console_scripts", scripts.group(1))] if scripts else []) + groups:
        lines += [f"[{name}]", *(ln.replace('"', "") for ln in body.strip().splitlines()), ""]
    info = code / "nerfreg-0.1.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: nerfreg\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("\n".join(lines))
    return code


def run_demo(out: Path, env: dict, log: Path) -> float:
    """nerfreg-demo at full size (resumes a stopped one); its wall time in this call."""
    t = time.time()
    with open(log, "a") as f:
        # cwd outside any checkout: Python puts it first on sys.path, before PYTHONPATH's code and entry points
        code = subprocess.run([str(BIN / "python"), "-m", "nerfreg_ns.cli.demo", "--out", str(out)], env=env, stdout=f,
                              stderr=subprocess.STDOUT, cwd=out.parent).returncode
    if code not in (0, 1):
        raise SystemExit(f"the demo in {out} failed (exit {code}): see {log}")
    return time.time() - t


def stage_rows(out: Path) -> list[tuple[str, float]]:
    """(stage, seconds) of a finished demo: each command, the trainings' parts, registration's stages."""
    demo = json.loads((out / "demo.json").read_text())["timings_s"]
    rows = [("nerfreg-synth (render both sequences)", demo.get("synth_s", float("nan")))]
    for seq in ("seq1", "seq2"):
        progress = next((out / "runs" / seq).glob("*/demo/nerfreg_progress.json"), None)
        times = json.loads(progress.read_text()).get("times_s", {}) if progress else {}
        wall = demo.get(f"train_{seq}_s", float("nan"))
        rows.append((f"ns-train, {seq} ({progress.parent.parent.name if progress else '?'})", wall))
        for part, secs in times.items():
            rows.append((f"  {part}", secs))
        if times:
            rows.append(("  start-up, images, exit (the rest)", wall - sum(times.values())))
    reg = json.loads((out / "register" / "registration.json").read_text())
    rows.append(("nerfreg-register", demo.get("register_s", float("nan"))))
    inner = {r["stage"]: r["time_s"] for r in reg.get("stages", [])}
    plugin = reg.get("timings_s", {})
    for name, secs in inner.items():
        rows.append((f"  {name}", secs))
        if name.startswith("register"):
            rows += [(f"    {k.removesuffix('_s').replace('_', ' ')}", v) for k, v in plugin.items() if k != "refine_and_verify_s"]
    rows.append(("  start-up, imports, exit (the rest)", demo.get("register_s", float("nan")) - sum(inner.values())))
    rows.append(("nerfreg-eval", demo.get("eval_s", float("nan"))))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench_speed"))
    ap.add_argument("--previous", default="cd85e29", help="the commit whose default is compared (before the speed work)")
    ap.add_argument("--only", choices=["current", "previous"], help="run one of the two demos only")
    args = ap.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    res_path = work / "speed.json"
    res = json.loads(res_path.read_text()) if res_path.exists() else {}
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    runs = {"current": (work / "current", dict(env, PYTHONPATH=str(ROOT)))}
    if args.previous:
        code = previous_checkout(args.previous, work)
        runs["previous"] = (work / "previous", dict(env, PYTHONPATH=str(code)))
    for name, (out, run_env) in runs.items():
        if args.only and name != args.only:
            continue
        if not (out / "demo.json").exists():
            print(f"{name}: nerfreg-demo --out {out}", flush=True)
            run_demo(out, run_env, work / f"{name}.log")
        demo = json.loads((out / "demo.json").read_text())
        ev = json.loads((out / "eval.json").read_text())
        res[name] = {"timings_s": demo["timings_s"], "total_s": sum(demo["timings_s"].values()),
                     "success": ev["registration"]["success"], "rotation_error_deg": ev["registration"]["rotation_error_deg"],
                     "surface_error_frac": ev["registration"]["surface_error_frac"],
                     "merged_chamfer_frac": ev["reconstruction"]["chamfer_frac"]}
        if name == "current":
            res["stages"] = stage_rows(out)
        res_path.write_text(json.dumps(res, indent=2))
    lines = ["| command | " + " | ".join(n for n in ("current", "previous") if n in res) + " | ratio |", "| --- | --- | --- | --- |"]
    for key, title in [*COMMANDS, ("total_s", "whole demo")]:
        vals = [res[n]["total_s"] if key == "total_s" else res[n]["timings_s"].get(key) for n in ("current", "previous") if n in res]
        ratio = f"{vals[1] / vals[0]:.2f}x" if len(vals) == 2 and vals[0] else "-"
        lines.append(f"| {title} | " + " | ".join(f"{v:.0f} s" if v is not None else "-" for v in vals) + f" | {ratio} |")
    for n in ("current", "previous"):
        if n in res:
            r = res[n]
            lines.append(f"\n{n}: {'SUCCESS' if r['success'] else 'FAILED'}, rotation {r['rotation_error_deg']:.2f} deg, "
                         f"surface {100 * r['surface_error_frac']:.2f}% of d, merged {100 * r['merged_chamfer_frac']:.2f}% of d")
    if "stages" in res:
        lines += ["", "| stage (current default) | s |", "| --- | --- |"]
        lines += [f"| {name.replace(' ', '&nbsp;', len(name) - len(name.lstrip()))} | {secs:.1f} |" for name, secs in res["stages"]]
    (work / "speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
