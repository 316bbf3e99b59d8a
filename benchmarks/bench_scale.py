"""`nerfreg-register --estimate-scale` on trained runs: sequence 2 rescaled as SfM would leave it.

    .venv/bin/python benchmarks/bench_scale.py --work WORK [--factors 0.3 2.5]

WORK is an object folder of `bench_register.py` (case/ and runs/seq1, runs/seq2 trained). Both
runs are loaded once; sequence 2's lengths are multiplied by each factor (points, cameras,
diameter) and the default plugin set registers them with `--estimate-scale`. Scored: the found
scale against 1/factor, and the pose against the truth (the pose maps sequence 2 once rescaled,
so it is comparable with the true T_seq1_seq2 when the scale is right). Results in
WORK/results_scale.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_register as br  # noqa: E402  (run_config: where a benchmark run is)


def main() -> None:
    from nerfreg_ns.cli import register as reg_cli
    from nerfreg_ns.data.truth import read_truth
    from nerfreg_ns.evaluate import TruthModel, evaluate_registration
    from nerfreg_ns.plugins import load_registry
    from nerfreg_ns.register.inputs import load_sequence
    from nerfreg_ns.register.scale import scaled_sequence

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--factors", type=float, nargs="+", default=[0.3, 2.5])
    args = ap.parse_args()
    runs = args.work / "runs"
    seqs = [load_sequence(br.run_config(runs, s), s) for s in ("seq1", "seq2")]
    truth = read_truth(args.work / "case" / "truth.json")
    model = TruthModel(truth)
    registry = load_registry()
    results = {}
    for f in args.factors:
        sfm2 = scaled_sequence(seqs[1], f)
        sfm2.unit = None
        out = args.work / f"reg_scale_{f:g}"
        cmd = reg_cli.command(registry, ["--seq1", "seq1", "--seq2", "seq2", "--out", str(out), "--overwrite", "--estimate-scale"])
        t = time.time()
        code = reg_cli.run(cmd, sequences=(seqs[0], sfm2))
        reg = json.loads((out / "registration.json").read_text())
        import numpy as np

        row = {"factor": f, "exit_code": code, "time_s": time.time() - t, "scale": reg["scale"],
               "scale_error": reg["scale"] * f - 1, "confident": reg["confident"],
               **evaluate_registration(np.array(reg["T_seq1_seq2"]), model)}
        results[f"{f:g}"] = row
        print(f"factor {f:g}: scale x factor = {reg['scale'] * f:.4f}, success {row['success']}, rot {row['rotation_error_deg']:.2f} deg, "
              f"surface {row['surface_error_frac']:.4f} d, confident {row['confident']}, {row['time_s']:.0f} s", flush=True)
        (args.work / "results_scale.json").write_text(json.dumps(results, indent=2, default=float))


if __name__ == "__main__":
    sys.exit(main())
