"""The merged model against the CAD model for several depth-spread thresholds (fog filter).

    .venv/bin/python benchmarks/bench_spread.py --work /tmp/bench_register --objects 14 19

Reads what `bench_register.py` left in WORK/SETTING/obj_XX (the case, both trained runs and the
default plugin set's registration.json), loads both runs as `nerfreg-register` does, and merges
them with `merged_cloud` under each `--thresholds` value (fraction of the diameter; `inf` keeps
every point), once with the registered T_seq1_seq2 and once with the true one. Prints the Chamfer
distance (both directions, as fractions of d) of each merged cloud to the whole CAD model, as
`bench_register` scores `merged.ply`. About a minute per object (each run renders its 60 views).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_register as br  # noqa: E402  (run_config: where a benchmark run is)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench_register"))
    ap.add_argument("--setting", default="wide")
    ap.add_argument("--objects", type=int, nargs="+", default=[14, 19])
    ap.add_argument("--method", default="three-refiners", help="result key of the registration to use")
    ap.add_argument("--thresholds", type=float, nargs="+", default=[float("inf"), 0.1, 0.06, 0.04])
    args = ap.parse_args()

    import numpy as np

    from nerfreg_ns.data.truth import read_truth
    from nerfreg_ns.evaluate import TruthModel, evaluate_reconstruction
    from nerfreg_ns.register.inputs import load_sequence
    from nerfreg_ns.register.outputs import merged_cloud

    rows = []
    for obj in args.objects:
        work = args.work / args.setting / f"obj_{obj:02d}"
        truth = read_truth(work / "case" / "truth.json")
        model = TruthModel(truth)
        seqs = [load_sequence(br.run_config(work / "runs", s), s) for s in ("seq1", "seq2")]
        reg = json.loads((work / f"reg_{args.method}" / "registration.json").read_text())
        for pose, T in (("registered", np.array(reg["T_seq1_seq2"])), ("true", truth.T_seq1_seq2)):
            for thr in args.thresholds:
                pts, _ = merged_cloud(*seqs, T, max_spread_frac=thr)
                r = evaluate_reconstruction(pts, model, "seq1")
                rows.append({"object": f"obj_{obj:02d}", "pose": pose, "max_spread_frac": thr, "points": len(pts),
                             **{k: r[k] for k in ("chamfer_frac", "recon_to_model_frac", "model_to_recon_frac")}})
                print(json.dumps(rows[-1]), flush=True)
    print("\n| object | T_seq1_seq2 | max spread / d | merged points | Chamfer / d | merged->CAD / d | CAD->merged / d |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        thr = "none" if r["max_spread_frac"] == float("inf") else f"{r['max_spread_frac']:g}"
        print(f"| {r['object']} | {r['pose']} | {thr} | {r['points']} | {r['chamfer_frac']:.4f} | "
              f"{r['recon_to_model_frac']:.4f} | {r['model_to_recon_frac']:.4f} |")


if __name__ == "__main__":
    main()
