"""The merged model from the points (the 50% opacity level) and from their boundary (the density's
edge, `export.boundary_points`), on runs and registrations `bench_register.py` left on disk.

    .venv/bin/python benchmarks/bench_boundary.py /tmp/brr/realistic/* [--out table.md]

Each argument is a case folder of `bench_register.py` (case/, runs/seq1, runs/seq2,
reg_three-refiners/registration.json). Runs saved before the boundary existed are rendered again
(about a minute per sequence); the registration is the one on disk (the boundary does not change
what registration reads). Both merged models are built as `nerfreg-register` builds them and
scored as `bench_register.py` scores them (mean Chamfer both ways / d). Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_register import run_config  # noqa: E402

TARGET = 0.015


def merged_both_ways(case_dir: Path) -> dict:
    """{"points": Chamfer / d, "boundary": Chamfer / d, "load_s": s} of one case."""
    from nerfreg_ns.data.truth import read_truth
    from nerfreg_ns.evaluate import TruthModel, evaluate_reconstruction, read_registration
    from nerfreg_ns.nerf.saved_surface import read_saved_surface
    from nerfreg_ns.register.inputs import load_sequence
    from nerfreg_ns.register.outputs import merged_cloud

    model = TruthModel(read_truth(case_dir / "case" / "truth.json"))
    T = read_registration(case_dir / "reg_three-refiners" / "registration.json", model.truth)
    t = time.time()
    seqs = []
    for name in ("seq1", "seq2"):
        cfg = run_config(case_dir / "runs", name)
        saved = read_saved_surface(cfg)
        if saved is not None and saved.surface.boundary is None:  # saved before the boundary: render the run
            import nerfreg_ns.nerf.saved_surface as ss

            real, ss.read_saved_surface = ss.read_saved_surface, lambda path: None
            try:
                seq = load_sequence(cfg, name)
            finally:
                ss.read_saved_surface = real
        else:
            seq = load_sequence(cfg, name)
        seqs.append(seq)
    row = {"load_s": time.time() - t, "object": model.truth.object_name}
    without = [dataclasses.replace(s, boundary=None) for s in seqs]  # the merged model as before the boundary
    for key, (s1, s2) in (("points", without), ("boundary", seqs)):
        pts, _ = merged_cloud(s1, s2, T)
        row[key] = evaluate_reconstruction(pts, model, "seq1")["chamfer_frac"]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cases", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, help="also write the table here (markdown)")
    args = ap.parse_args()
    lines = ["| case | object | merged, points / d | merged, boundary / d |", "| --- | --- | --- | --- |"]
    rows = []
    for case in args.cases:
        if not (case / "reg_three-refiners" / "registration.json").is_file():
            print(f"skipped {case}: no default registration", flush=True)
            continue
        r = merged_both_ways(case)
        rows.append(r)
        lines.append(f"| {case.parent.name}/{case.name} | {r['object']} | {r['points']:.4f} | {r['boundary']:.4f} |")
        print(lines[-1], f"(loaded in {r['load_s']:.0f} s)", flush=True)
    if rows:
        pts, bnd = np.array([r["points"] for r in rows]), np.array([r["boundary"] for r in rows])
        lines.append(f"| **within {TARGET:.1%} of d** | | **{(pts <= TARGET).sum()}/{len(rows)}** | **{(bnd <= TARGET).sum()}/{len(rows)}** |")
        lines.append(f"| median | | {np.median(pts):.4f} | {np.median(bnd):.4f} |")
    print("\n".join(lines))
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
