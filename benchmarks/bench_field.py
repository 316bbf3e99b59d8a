"""A/B of the object field alone (phase 1 of `nerfreg-feature`): surface accuracy per variant.

    .venv/bin/python benchmarks/bench_field.py --objects 05 14 --work /tmp/bench_field \\
        --variant base --variant "camnorm=--pipeline.model.shading camera-normal"

For each T-LESS object: `nerfreg-synth` (60 views per side, 128x128), then per variant
`ns-train nerfreg-feature --data case/seq1 --max-num-iterations NERF_STEPS EXTRA...` (the field
only: phase 2 never starts), `nerfreg-export`, and `nerfreg-eval --visible-from seq1`. Prints a
table of Chamfer (both directions) to the surface seq1 sees, as fractions of the diameter, and
the training wall time. Each training takes about 2-3 minutes here; run it alone on the machine.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TLESS = ROOT.parent / "shared" / "data" / "tless_scaled"
sys.path.insert(0, str(ROOT))

from nerfreg_ns.nerf.config import NERF_STEPS  # noqa: E402


def sh(*cmd) -> float:
    t = time.time()
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"failed: {shlex.join(map(str, cmd))}\n{proc.stderr[-2000:]}")
    return time.time() - t


def run_variant(case: Path, work: Path, name: str, extra: list[str]) -> dict:
    out = work / name
    shutil.rmtree(out, ignore_errors=True)
    train_s = sh(BIN / "ns-train", "nerfreg-feature", "--data", case / "seq1", "--output-dir", out, "--timestamp", "ab",
                 "--max-num-iterations", NERF_STEPS, *extra)
    cfg = out / "seq1" / "nerfreg-feature" / "ab" / "config.yml"
    sh(BIN / "nerfreg-export", "--load-config", cfg, "--out", out / "export", "--overwrite")
    sh(BIN / "nerfreg-eval", "--truth", case / "truth.json", "--recon", out / "export" / "surface.ply",
       "--recon-frame", "seq1", "--visible-from", "seq1", "--out", out / "eval.json")
    rec = json.loads((out / "eval.json").read_text())["reconstruction"]
    return {"train_s": round(train_s), **{k: rec[k] for k in ("chamfer_frac", "recon_to_model_frac", "model_to_recon_frac")}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--objects", nargs="+", default=["05", "14"], help="T-LESS object numbers, e.g. 05 14")
    ap.add_argument("--variant", action="append", default=[],
                    help='NAME or "NAME=ns-train arguments" (repeatable; default: base only)')
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench_field"))
    args = ap.parse_args()
    variants = [(v.partition("=")[0], shlex.split(v.partition("=")[2])) for v in (args.variant or ["base"])]
    rows = []
    for obj in args.objects:
        case = args.work / f"case{obj}"
        if not (case / "truth.json").is_file():
            shutil.rmtree(case, ignore_errors=True)
            sh(BIN / "nerfreg-synth", "--mesh", TLESS / f"obj_{obj}.stl", "--out", case, "--views", "60")
        for name, extra in variants:
            r = run_variant(case, args.work / f"obj{obj}", name, extra)
            rows.append({"object": f"obj_{obj}", "variant": name, "args": shlex.join(extra), **r})
            print(json.dumps(rows[-1]), flush=True)
    (args.work / "results.json").write_text(json.dumps(rows, indent=1))
    print("\n| object | variant | ns-train arguments | Chamfer / d | recon->model / d | model->recon / d | train s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['object']} | {r['variant']} | `{r['args']}` | {r['chamfer_frac']:.4f} | {r['recon_to_model_frac']:.4f} "
              f"| {r['model_to_recon_frac']:.4f} | {r['train_s']} |")


if __name__ == "__main__":
    main()
