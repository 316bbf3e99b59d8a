"""Benchmark of the whole pipeline (issue: nerfreg-register) on T-LESS and procedural parts.

    .venv/bin/python benchmarks/bench_register.py --work /tmp/bench_register [--objects 5 7 p3 p12 ...]
        [--setting wide|narrow|realistic] [--perfect] [--stage all|train|register] [--methods KEY ...] [--redo KEY ...]
        [--train-args ...]

Objects: a number is that T-LESS part of ../shared/data/tless_scaled; `pN` is procedural part N
(`nerfreg-synth --part random --seed N`). `--setting realistic` is the wide setting rendered with
`--capture realistic` (noisy masks and poses, bad frames, room light, noisy background).
Per object: `nerfreg-synth` (60 views per side, 128x128), `ns-train nerfreg-field` on both
sequences (default config; `nerfreg-feature` on sequence 1 when embedding-pnp is compared: it
needs keys), then `nerfreg-register` with each compared plugin set on the same two
runs, each scored with `nerfreg-eval`'s metrics; the default's merged model is compared with the
CAD model. Every stage is skipped when its output exists, so the command resumes where it stopped
and the table (WORK/table.md, WORK/results.json) always shows what has been measured.
`--perfect` replaces the trained runs by the true surface seen by each camera (no training): the
plugins' ceiling. `--setting narrow` uses elevations 35..80 vs -80..-35 (less overlap).
Run it alone on the machine: training time is part of the table.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SHARED = ROOT.parent / "shared" / "data" / "tless_scaled"
OBJECTS = [4, 5, 7, 8, 11, 14, 19, 23]
SYMMETRY_TOL = 0.005
"""A part counts as symmetric when a turn maps its whole CAD surface onto itself within this
fraction of d (half the success tolerance): its rotation error then says nothing."""
SYMMETRY_SEARCH = f"tol {SYMMETRY_TOL}, polished turns v2"  # stored flags from another search are redone
SETTINGS = {"wide": ((10.0, 80.0), (-80.0, -10.0)), "narrow": ((35.0, 80.0), (-80.0, -35.0)),
            "realistic": ((10.0, 80.0), (-80.0, -10.0))}
CAPTURE = {"realistic": "realistic"}  # settings rendered with a capture preset (others: clean)


def object_name(obj: str) -> str:
    """The folder and row name of an object argument: obj_05, part_003."""
    return f"part_{int(obj[1:]):03d}" if str(obj).startswith("p") else f"obj_{int(obj):02d}"


def object_source(obj: str) -> list:
    """nerfreg-synth flags that make the object."""
    if str(obj).startswith("p"):
        return ["--part", "random", "--seed", int(obj[1:]), "--obj-id", 100 + int(obj[1:])]
    return ["--mesh", SHARED / f"obj_{int(obj):02d}.stl", "--obj-id", int(obj)]
# (row name, result key, generator, verifier, refiner): the default first, then the classic baseline
METHODS = [
    ("default (silhouette-search + combined + silhouette-icp,icp,none: refined by each or not, the verifier picks)",
     "three-refiners", "silhouette-search", "combined", "silhouette-icp,icp,none"),
    ("fpfh + chamfer + icp (classic)", "fpfh", "fpfh", "chamfer", "icp"),
    ("fpfh-flips + combined + icp (default before silhouette-search)", "fpfh-flips", "fpfh-flips", "combined", "icp"),
    ("embedding-pnp + combined + icp", "embedding-pnp", "embedding-pnp", "combined", "icp"),
    ("silhouette-search + combined + silhouette-icp (previous default)", "silhouette-search", "silhouette-search", "combined",
     "silhouette-icp"),
    ("silhouette-search + combined + silhouette-icp,icp (both refiners, the verifier picks)", "two-refiners",
     "silhouette-search", "combined", "silhouette-icp,icp"),
]


def sh(*cmd) -> float:
    t = time.time()
    subprocess.run([str(c) for c in cmd], check=True, stdout=subprocess.DEVNULL)
    return time.time() - t


def run_config(runs: Path, seq: str) -> Path:
    """The config.yml of a sequence's run (nerfreg-feature first: runs of earlier benchmark
    commands, or sequence 1 when keys were needed; else nerfreg-field)."""
    for method in ("nerfreg-feature", "nerfreg-field"):
        if (cfg := runs / seq / method / "bench" / "config.yml").is_file():
            return cfg
    raise FileNotFoundError(f"no trained run of {seq} in {runs}")


def prepare(obj: str, setting: str, work: Path, train: bool, train_args: list[str] = (), synth_args: list | None = None,
            keys: bool = False) -> dict:
    """Renders the case and trains both runs (each skipped when done); returns timings.
    `synth_args` replaces the object and capture flags the setting would give nerfreg-synth;
    `keys`: sequence 1 trains its keys too (nerfreg-feature)."""
    case, runs = work / "case", work / "runs"
    info_path = work / "train.json"
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    if not (case / "truth.json").exists():
        el1, el2 = SETTINGS[setting]
        flags = synth_args if synth_args is not None else [*object_source(obj), "--capture", CAPTURE.get(setting, "clean")]
        sh(BIN / "nerfreg-synth", *flags, "--out", case, "--views", "60", "--elevation1", *el1, "--elevation2", *el2,
           "--overwrite")
    if train:
        for seq in ("seq1", "seq2"):
            method = "nerfreg-feature" if keys and seq == "seq1" else "nerfreg-field"
            # runs of earlier benchmark commands (no method recorded) are nerfreg-feature runs
            keyless = keys and seq == "seq1" and info.get(f"method_{seq}", "nerfreg-feature") != "nerfreg-feature"
            if f"train_{seq}_s" not in info or keyless:  # recorded when ns-train ended: a run without it was stopped midway
                shutil.rmtree(runs / seq, ignore_errors=True)
                for stale in [*work.glob("results*.json"), *work.glob("reg_*")]:  # registered on the old run
                    shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
                print(f"  training {seq} of {object_name(obj)} ({setting})", flush=True)
                info[f"method_{seq}"] = method
                info[f"train_{seq}_s"] = sh(BIN / "ns-train", method, "--data", case / seq, "--output-dir", runs,
                                            "--timestamp", "bench", *train_args)
                info_path.write_text(json.dumps(info, indent=2))
    return info


def register_all(work: Path, perfect: bool, methods, redo: tuple[str, ...] = ()) -> dict:
    """Each plugin set on the same two sequences; results keyed by generator name. Keys in `redo`
    are registered again (this checkout's code on the same trained runs)."""
    from nerfreg_ns.cli import register as reg_cli
    from nerfreg_ns.data.mesh import sample_surface
    from nerfreg_ns.data.truth import read_truth
    from nerfreg_ns.evaluate import TruthModel, evaluate_reconstruction, evaluate_registration, load_points, read_registration
    from nerfreg_ns.geometry.symmetry import find_symmetries
    from nerfreg_ns.geometry.transforms import apply
    from nerfreg_ns.plugins import load_registry

    case = work / "case"
    res_path = work / ("results_perfect.json" if perfect else "results.json")
    results = json.loads(res_path.read_text()) if res_path.exists() else {}
    for key in redo:
        results.pop(key, None)
    todo = [m for m in methods if m[1] not in results and not (perfect and m[2] == "embedding-pnp")]
    truth = read_truth(case / "truth.json")
    model = TruthModel(truth)
    if results.get("symmetry_search") != SYMMETRY_SEARCH:
        pts, _ = sample_surface(model.mesh, 5000, 0)
        syms = find_symmetries(pts, model.distance_obj, truth.diameter, tol=0.01)[1:]  # within the success tolerance
        results["symmetries"] = [{"T_obj": S.tolist(), "surface_error_frac": float(np.mean(model.distance_obj(apply(S, pts))) / truth.diameter)}
                                 for S in syms]
        results["symmetric"] = any(s["surface_error_frac"] < SYMMETRY_TOL for s in results["symmetries"])
        results["symmetry_search"] = SYMMETRY_SEARCH
        res_path.write_text(json.dumps(results, indent=2))
    if not todo:
        return results
    t = time.time()
    if perfect:
        from nerfreg_ns.register.synthetic import sequence_from_truth

        seqs = (sequence_from_truth(case, "seq1"), sequence_from_truth(case, "seq2"))
    else:
        from nerfreg_ns.register.inputs import load_sequence

        runs = work / "runs"
        seqs = tuple(load_sequence(run_config(runs, s), s) for s in ("seq1", "seq2"))
    results["load_s"] = time.time() - t
    registry = load_registry()
    for label, key, gen, ver, ref in todo:
        out = work / f"{'reg_perfect' if perfect else 'reg'}_{key}"
        cmd = reg_cli.command(registry, ["--seq1", "seq1", "--seq2", "seq2", "--out", str(out), "--generator", gen,
                                         "--verifier", ver, "--refiner", ref, "--overwrite"])
        t = time.time()
        code = reg_cli.run(cmd, sequences=seqs)
        row = {"method": label, "exit_code": code, "time_s": time.time() - t}
        row.update(evaluate_registration(read_registration(out / "registration.json", truth), model))
        reg = json.loads((out / "registration.json").read_text())
        row["confident"] = reg["confident"]
        row["score_details"] = reg["score_details"]
        merged = evaluate_reconstruction(load_points(out / "merged.ply"), model, "seq1", well_seen_by=5)
        row["merged_chamfer_frac"] = merged["chamfer_frac"]
        # the same mean with CAD-to-model over the surface 5 cameras see well only (a bore's walls left out)
        row["merged_well_seen_frac"] = (merged["recon_to_model_frac"] + merged["model_to_recon_well_seen_frac"]) / 2
        row["well_seen_surface_frac"] = merged["well_seen_surface_frac"]
        results[key] = row
        res_path.write_text(json.dumps(results, indent=2))
        print(f"  {label}: success {row['success']}, rot {row['rotation_error_deg']:.2f} deg, "
              f"surface {row['surface_error_frac']:.4f} d, merged chamfer {row['merged_chamfer_frac']:.4f} d", flush=True)
    return results


def _details(work: Path, clouds: str, key: str) -> dict:
    reg = work / f"{'reg_perfect' if clouds == 'perfect' else 'reg'}_{key}" / "registration.json"
    return json.loads(reg.read_text()).get("score_details", {}) if reg.exists() else {}


def _confident_now(details: dict) -> bool:
    """The `combined` verifier's verdict under its current default thresholds, from a row's details."""
    from nerfreg_ns.default_plugins.verifiers import CombinedConfig

    return CombinedConfig().trusts(details["outside_seq1_masks"], details["outside_seq2_masks"], details.get("fitness", 1.0),
                                   details.get("floor_seq1", 0.0), details.get("floor_seq2", 0.0), details.get("precision", 0.0))


def _rot_err_up_to_symmetry(work: Path, clouds: str, key: str, res: dict) -> float:
    """Rotation error to the nearest pose that differs from the truth by one of the object's
    (near-)symmetries within the success tolerance; NaN when the row's registration is gone."""
    from nerfreg_ns.data.truth import read_truth
    from nerfreg_ns.evaluate import read_registration
    from nerfreg_ns.geometry.metrics import rotation_error_deg
    from nerfreg_ns.geometry.transforms import invert

    reg = work / f"{'reg_perfect' if clouds == 'perfect' else 'reg'}_{key}" / "registration.json"
    if not reg.exists():
        return float("nan")
    truth = read_truth(work / "case" / "truth.json")
    T_est = read_registration(reg, truth)
    alts = [np.eye(4)] + [np.array(s["T_obj"]) for s in res.get("symmetries", [])]
    T_seq2_obj = truth.T_seq2_obj
    return min(rotation_error_deg(T_est, truth.T_seq1_obj @ S @ invert(T_seq2_obj)) for S in alts)


def _frac(x) -> str:
    return "-" if x is None else f"{x:.4f}"


def table(root: Path, objects: list[str], settings: list[str], perfect_too: bool) -> str:
    """Markdown: one row per object, setting and plugin set, then a summary per plugin set."""
    lines = ["| object | setting | clouds | method | success | surface err / d | ADD < 0.1d | ADD / d | ADD-S / d | rot err (deg) | trans err / d | "
             "rot err up to sym (deg) | confident | outside masks | merged Chamfer / d | merged, well-seen surface / d | register s | "
             "train s (seq1+seq2) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    summary: dict[tuple, list] = {}
    for setting in settings:
        for obj in objects:
            work = root / setting / object_name(obj)
            train = json.loads((work / "train.json").read_text()) if (work / "train.json").exists() else {}
            tsum = sum(v for k, v in train.items() if k.startswith("train_"))
            for clouds, fname in (("trained", "results.json"), ("perfect", "results_perfect.json")):
                if clouds == "perfect" and not perfect_too or not (work / fname).exists():
                    continue
                res = json.loads((work / fname).read_text())
                for label, key, _, _, _ in METHODS:
                    if key not in res:
                        continue
                    r = res[key]
                    sym = " (sym)" if res.get("symmetric") else ""
                    train_s = f"{tsum:.0f}" if clouds == "trained" else "-"
                    det = r.get("score_details") or _details(work, clouds, key)
                    outside = max(det.get("outside_seq1_masks", -1), det.get("outside_seq2_masks", -1))
                    outside_s = f"{outside:.4f}" if outside >= 0 else "-"
                    if outside >= 0:  # rows measured before a threshold change: today's default decides
                        r["confident"] = _confident_now(det)
                    r["rot_sym"] = _rot_err_up_to_symmetry(work, clouds, key, res)
                    lines.append(
                        f"| {object_name(obj)}{sym} | {setting} | {clouds} | {label} | {'yes' if r['success'] else 'no'} | {r['surface_error_frac']:.4f} | "
                        f"{'yes' if r['add_success'] else 'no'} | {r['add_frac']:.3f} | {r['adds_frac']:.3f} | {r['rotation_error_deg']:.2f} | "
                        f"{r['translation_error_frac']:.4f} | {r['rot_sym']:.2f} | {'yes' if r['confident'] else 'no'} | {outside_s} | {r['merged_chamfer_frac']:.4f} | "
                        f"{_frac(r.get('merged_well_seen_frac'))} | {r['time_s']:.0f} | {train_s} |"
                    )
                    summary.setdefault((setting, clouds, label), []).append((r, res.get("symmetric", False)))
    lines += ["", "| setting | clouds | method | objects | success | confident and wrong | median rot err, non-symmetric (deg) | "
              "median rot err up to sym, all (deg) | median merged Chamfer / d | merged within 0.015 d |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for (setting, clouds, label), rows in summary.items():
        ok = sum(r["success"] for r, _ in rows)
        bad_conf = sum(r["confident"] and not r["success"] for r, _ in rows)
        rot = [r["rotation_error_deg"] for r, s in rows if not s]
        med = f"{np.median(rot):.2f}" if rot else "-"
        lines.append(f"| {setting} | {clouds} | {label} | {len(rows)} | {ok}/{len(rows)} | {bad_conf} | {med} | "
                     f"{np.nanmedian([r['rot_sym'] for r, _ in rows]):.2f} | "
                     f"{np.median([r['merged_chamfer_frac'] for r, _ in rows]):.4f} | "
                     f"{sum(r['merged_chamfer_frac'] <= 0.015 for r, _ in rows)}/{len(rows)} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="/tmp/bench_register")
    ap.add_argument("--objects", nargs="+", default=[str(o) for o in OBJECTS],
                    help="T-LESS part numbers and procedural parts pN (default: the 8 T-LESS parts)")
    ap.add_argument("--setting", choices=sorted(SETTINGS), nargs="+", default=["wide"])
    ap.add_argument("--perfect", action="store_true", help="also run the plugins on the true surfaces (no training)")
    ap.add_argument("--stage", choices=["all", "train", "register"], default="all")
    ap.add_argument("--methods", nargs="+", choices=[m[1] for m in METHODS], default=[m[1] for m in METHODS],
                    help="plugin sets to register with (result keys); default: all")
    ap.add_argument("--redo", nargs="+", default=[], choices=[m[1] for m in METHODS],
                    help="register these plugin sets again on the existing runs (after a registration change)")
    ap.add_argument("--train-args", nargs=argparse.REMAINDER, default=[],
                    help="extra ns-train flags, last on the line (e.g. --max-num-iterations 1210: the default's field with a "
                         "token phase 2; the default registration uses no keys)")
    args = ap.parse_args()
    root = Path(args.work)
    methods = [m for m in METHODS if m[1] in args.methods]
    for setting in args.setting:
        for obj in args.objects:
            work = root / setting / object_name(obj)
            work.mkdir(parents=True, exist_ok=True)
            print(f"{object_name(obj)} ({setting})", flush=True)
            info = prepare(obj, setting, work, train=args.stage != "register", train_args=args.train_args,
                           keys="embedding-pnp" in args.methods)
            if args.perfect:
                register_all(work, True, methods, tuple(args.redo))
            if args.stage != "train" and {"train_seq1_s", "train_seq2_s"} <= info.keys():  # both trained to the end
                register_all(work, False, methods, tuple(args.redo))
            (root / "table.md").write_text(table(root, args.objects, args.setting, True))
    print((root / "table.md").read_text())


if __name__ == "__main__":
    main()
