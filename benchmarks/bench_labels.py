"""Symmetries and the label check (issue: a BOP training set with every label checked), on the
registrations `bench_register.py` left in WORK (its layout: WORK/OBJ/case, WORK/OBJ/reg_three-refiners).

    .venv/bin/python benchmarks/bench_labels.py --work /tmp/b17/tless/realistic [--every 5]

Per object, on that registration's merged model and pose (this checkout's code, as
`nerfreg-register` runs it):
- symmetries found on the merged model against those `find_symmetries` lists on the CAD model
  (bench_register's `symmetries`, within 1% of d): matched when a written transform (continuous
  axes turned every 10 degrees) lies within 6 degrees; and the surface error each written one
  makes on the CAD model, moved into the CAD frame by the truth;
- the label check on every image: the frames the case recorded as given a gross mask error must
  be flagged, the others (clean) should not; and on every `--every`-th clean frame, two spoiled
  copies: its camera pose turned by 3 degrees about a random axis across the view, and its mask
  given a gross error (`data.capture.gross_error`, as the realistic preset makes them).
Prints a table and writes WORK/labels_bench.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def sequence(case: Path, name: str, diameter: float):
    """What the label check needs of a sequence (masks, cameras, images), from its dataset."""
    from nerfreg_ns.register.inputs import labelled_frames, posed_views
    from nerfreg_ns.registry import SequenceData

    _, frames = labelled_frames(case / name)
    return SequenceData(name, np.zeros((0, 3)), np.zeros((0, 3)), diameter, **posed_views(frames))


def bench_object(obj_dir: Path, every: int, rng: np.random.Generator) -> dict:
    import trimesh

    from nerfreg_ns.data.capture import gross_error
    from nerfreg_ns.data.mesh import SurfaceDistance, load_mesh, sample_surface
    from nerfreg_ns.data.truth import read_truth
    from nerfreg_ns.geometry.transforms import apply, axis_angle_to_R, invert, make_T, rotation_angle_deg
    from nerfreg_ns.register import outputs
    from nerfreg_ns.register.labels import check_label, label_sequence

    reg_dir = obj_dir / "reg_three-refiners"
    truth = read_truth(obj_dir / "case" / "truth.json")
    reg = json.loads((reg_dir / "registration.json").read_text())
    T = np.asarray(reg["T_seq1_seq2"])
    mesh = trimesh.load(reg_dir / "merged_mesh.ply")
    d = truth.diameter
    t0 = time.time()
    syms = outputs.model_symmetries(mesh, d)
    sym_s = time.time() - t0
    cad = load_mesh(truth.model_path)
    cad_pts, _ = sample_surface(cad, 4000, seed=1)
    cad_dist = SurfaceDistance(cad)
    in_cad = syms.moved(invert(truth.T_seq1_obj))
    written = in_cad.transforms(10.0)[1:]
    known = [np.asarray(s["T_obj"]) for s in json.loads((obj_dir / "results.json").read_text())["symmetries"]]
    near = lambda A, Bs: min([rotation_angle_deg(A[:3, :3].T @ B[:3, :3]) for B in Bs] or [999.0]) < 6  # noqa: E731
    cad_err = lambda S: float(np.mean(cad_dist(apply(S, cad_pts))) / d)  # noqa: E731
    sym = {
        "seconds": sym_s, "continuous": len(syms.continuous), "discrete": len(syms.discrete), "known": len(known),
        "matched": sum(near(K, written) for K in known),
        "missed_cad_err": [cad_err(K) for K in known if not near(K, written)],
        "extra_cad_err": [cad_err(S) for S in in_cad.discrete if not near(S, known)],
        "max_written_cad_err": max([cad_err(S) for S in written] or [0.0]),
    }
    seq1, seq2 = (sequence(obj_dir / "case", n, d) for n in ("seq1", "seq2"))
    t0 = time.time()
    labels = outputs.object_labels(seq1, seq2, T, mesh)
    label_s = time.time() - t0
    bad = {s: {b["frame"] for b in v} for s, v in json.loads(truth.path.read_text()).get("bad_frames", {}).items()}
    counts = {"clean": [0, 0], "recorded bad mask": [0, 0], "pose turned 3 deg": [0, 0], "gross mask error added": [0, 0]}
    T_seq1_obj = outputs.model_placement(mesh)
    model = mesh.copy()
    model.apply_transform(invert(T_seq1_obj))
    for seq, T_seq_obj in ((seq1, T_seq1_obj), (seq2, invert(T) @ T_seq1_obj)):
        for i, lab in enumerate(labels[seq.name]):
            kind = "recorded bad mask" if i in bad.get(seq.name, ()) else "clean"
            counts[kind][0] += 1
            counts[kind][1] += lab.check["flagged"]
            if kind != "clean" or i % every:
                continue
            axis_cam = np.cross([0.0, 0.0, 1.0], rng.normal(size=3))  # across the view, in the camera's frame
            turned = seq.T_world_camcv[i] @ make_T(axis_angle_to_R(axis_cam, np.radians(3.0)), np.zeros(3))
            (spoilt,) = label_sequence(model, T_seq_obj, [turned], [seq.Ks[i]], [seq.masks[i]], "turned")
            counts["pose turned 3 deg"][0] += 1
            counts["pose turned 3 deg"][1] += spoilt.check["flagged"]
            counts["gross mask error added"][0] += 1
            counts["gross mask error added"][1] += check_label(lab.rendered, gross_error(seq.masks[i], rng)[0])["flagged"]
    return {"symmetries": sym, "labels_seconds": label_s, "flagged": {k: {"frames": n, "flagged": f} for k, (n, f) in counts.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--every", type=int, default=5, help="spoil every N-th clean frame (a pose turn and a mask error)")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    results = {}
    for obj_dir in sorted(p for p in args.work.iterdir() if (p / "reg_three-refiners" / "merged_mesh.ply").is_file()):
        results[obj_dir.name] = r = bench_object(obj_dir, args.every, rng)
        s, f = r["symmetries"], r["flagged"]
        print(f"{obj_dir.name}: symmetries {s['continuous']} continuous + {s['discrete']} discrete ({s['seconds']:.1f} s); "
              f"CAD's {s['known']} matched {s['matched']}, missed at CAD error {[round(100 * e, 2) for e in s['missed_cad_err']]}% d, "
              f"extra at {[round(100 * e, 2) for e in s['extra_cad_err']]}% d; written ones on the CAD <= {100 * s['max_written_cad_err']:.2f}% d | "
              + ", ".join(f"{k} {v['flagged']}/{v['frames']}" for k, v in f.items()) + f" flagged ({r['labels_seconds']:.1f} s)", flush=True)
    total = {k: [sum(r["flagged"][k]["flagged"] for r in results.values()), sum(r["flagged"][k]["frames"] for r in results.values())]
             for k in next(iter(results.values()))["flagged"]}
    print("all: " + ", ".join(f"{k} {f}/{n} flagged" for k, (f, n) in total.items()))
    (args.work / "labels_bench.json").write_text(json.dumps({"objects": results, "total": total}, indent=2))


if __name__ == "__main__":
    main()
