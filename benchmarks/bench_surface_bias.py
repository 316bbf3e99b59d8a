"""Where a trained surface sits against the CAD model, and what moving it would do to the merged
model (issue: any part, any capture; the merged model's error).

    .venv/bin/python benchmarks/bench_surface_bias.py /tmp/bench_register/wide/obj_05 [...more cases]
        [--alphas 0 0.2 0.3 0.5] [--levels 0.5 0.15]

Each argument is a case folder of `bench_register.py` (case/, runs/seq1, runs/seq2, and
reg_three-refiners/registration.json). Per case it prints, for each sequence, the mean signed
distance of its surface points (those the merged model keeps) to the CAD surface (negative:
inside the part) and the merged
model's Chamfer distance to the CAD model (as `bench_register.py` scores it), with the
registration the default found:
- `--alphas`: every point moved along its normal by alpha x its spread (how deep the ray's
  opacity is smeared; a surface reached through fog is found late by the 50% level);
- `--levels`: the runs rendered again with the surface at another level of the ray's opacity
  (0.5 is what a run saves: the median of the ray's weights). Rendering takes about a minute per
  sequence and level.
An analysis command, not a change of the default: run it alone on the machine.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

def signed_error(points: np.ndarray, mesh, T_seq_obj: np.ndarray, d: float, every: int = 10) -> tuple[float, float]:
    """(mean signed, mean unsigned) distance / d of points (N, 3) in a sequence frame to the CAD mesh (object frame)."""
    import trimesh

    from nerfreg_ns.geometry.transforms import apply, invert

    p = apply(invert(T_seq_obj), points[::every])
    closest, _, tri = trimesh.proximity.closest_point(mesh, p)
    sd = ((p - closest) * mesh.face_normals[tri]).sum(1) / d
    return float(sd.mean()), float(np.abs(sd).mean())


def load(case: Path, level: float):
    """The case's two sequences, their surfaces at opacity `level` (0.5: as saved by the runs)."""
    import nerfreg_ns.nerf.saved_surface as saved
    from nerfreg_ns.nerf.model import NerfregModel
    from nerfreg_ns.register.inputs import load_sequence

    config = {s: next((case / "runs" / s).rglob("config.yml")) for s in ("seq1", "seq2")}
    if level == 0.5:
        return [load_sequence(config[s], s) for s in ("seq1", "seq2")]
    quantiles, read = NerfregModel._quantile_depths, saved.read_saved_surface

    def at_level(w, a, t, step, qs):  # the surface level only; the spread keeps its 25-75%
        return quantiles(w, a, t, step, (qs[0], level, qs[2]) if tuple(qs) == (0.25, 0.5, 0.75) else qs)

    NerfregModel._quantile_depths, saved.read_saved_surface = staticmethod(at_level), lambda path: None
    try:
        return [load_sequence(config[s], s) for s in ("seq1", "seq2")]
    finally:
        NerfregModel._quantile_depths, saved.read_saved_surface = staticmethod(quantiles), read


def merged_error(seq1, seq2, T_seq1_seq2: np.ndarray, model) -> dict:
    from nerfreg_ns.evaluate import evaluate_reconstruction
    from nerfreg_ns.register.outputs import merged_cloud

    pts, _ = merged_cloud(seq1, seq2, T_seq1_seq2)
    return evaluate_reconstruction(pts, model, "seq1", well_seen_by=5)


def row(name: str, seqs, truth, model, T: np.ndarray) -> str:
    from nerfreg_ns.register.outputs import MAX_SPREAD_FRAC, surface_kept

    d = truth.diameter
    bias = [signed_error(s.points[surface_kept(s, MAX_SPREAD_FRAC)], model.mesh, T_obj, d) for s, T_obj in zip(seqs, (truth.T_seq1_obj, truth.T_seq2_obj))]
    m = merged_error(*seqs, T, model)
    return (f"| {name} | {100 * bias[0][0]:+.2f} / {100 * bias[1][0]:+.2f} | {100 * bias[0][1]:.2f} / {100 * bias[1][1]:.2f} | "
            f"{100 * m['recon_to_model_frac']:.2f} | {100 * m['model_to_recon_frac']:.2f} | {100 * m['chamfer_frac']:.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cases", nargs="+", type=Path)
    ap.add_argument("--alphas", nargs="*", type=float, default=[0.0, 0.2, 0.3, 0.5])
    ap.add_argument("--levels", nargs="*", type=float, default=[])
    args = ap.parse_args()

    from nerfreg_ns.data.truth import read_truth
    from nerfreg_ns.evaluate import TruthModel
    from nerfreg_ns.register.outputs import MAX_SPREAD_FRAC

    print("| case | variant | signed error seq1 / seq2 (% of d) | unsigned seq1 / seq2 | merged: model to CAD | CAD to model | Chamfer |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for case in args.cases:
        truth = read_truth(case / "case" / "truth.json")
        model = TruthModel(truth)
        T = np.array(json.loads((case / "reg_three-refiners" / "registration.json").read_text())["T_seq1_seq2"])
        seqs = load(case, 0.5)
        points = [s.points.copy() for s in seqs]
        for alpha in args.alphas:
            for s, p in zip(seqs, points):
                # spreads capped where the merged model drops the point anyway
                s.points = p + alpha * np.minimum(s.spread, MAX_SPREAD_FRAC * s.diameter)[:, None] * s.normals
            print(f"| {truth.object_name} " + row(f"moved out by {alpha} x spread", seqs, truth, model, T), flush=True)
        for level in args.levels:
            if level != 0.5:
                print(f"| {truth.object_name} " + row(f"surface at opacity {level}", load(case, level), truth, model, T), flush=True)


if __name__ == "__main__":
    main()
