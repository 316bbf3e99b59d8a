"""The frame check against the truth (issue: any part, any capture; frames whose masks disagree):
which of a sequence's frames with a gross mask error it leaves out, and which clean frames.

    .venv/bin/python benchmarks/bench_frame_check.py --work /tmp/bench_frame_check [--cases p10:clean 5:bad10:0 ...]

A case is `OBJECT:KIND[:SEED]`: OBJECT as in `bench_register.py` (5, p1, ...), KIND one of
`clean`, `realistic` (the preset), `bad10` (10% bad frames), `mask3` (3 px mask error), `pose1`
and `pose2` (1 and 2 degrees of pose noise with 1% and 2% of d in position), each otherwise the
wide clean setting (60 views per side, 128x128), rendered as `bench_sweep.py` renders its trials.
Nothing is trained: each sequence goes through the dataparser's own reading, hull and check.
`truth.json` names the bad frames. Per sequence it prints what the check (`checked_hull`, as the
dataparser runs it) caught and flagged wrongly, the same for the previous rule (one round, the
hull's silhouette outside the mask in place of `piece_missing`) and for the first round alone,
and the seconds the check and the previous rule took; then
the totals. Scores per frame go to WORK/results.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_register as br  # noqa: E402
import bench_sweep as bs  # noqa: E402

KINDS = {
    "clean": [],
    "bad10": ["--bad-frames", 0.1],
    "mask3": ["--mask-error-px", 3.0],
    "pose1": ["--rot-noise-deg", 1.0, "--trans-noise", 0.01],
    "pose2": ["--rot-noise-deg", 2.0, "--trans-noise", 0.02],
}
DEFAULT_CASES = ["p10:clean", "5:realistic", "19:realistic", "p1:realistic", *(f"{o}:bad10:{t}" for o in ("5", "p1") for t in range(3)),
                 *(f"{o}:{k}:{t}" for o in ("5", "p1") for k in ("mask3", "pose1", "pose2") for t in range(2))]


def render(spec: str, root: Path) -> Path:
    """The case's folder under `root`, rendered when missing."""
    obj, kind, *seed = spec.split(":")
    work = root / spec.replace(":", "_")
    if kind == "realistic":
        br.prepare(obj, "realistic", work, train=False)
    else:
        br.prepare(obj, "wide", work, train=False, synth_args=[*bs.object_flags(obj, root), *KINDS[kind], "--seed", *(seed or [0])])
    return work / "case"


def hull_outside_mask(c2w, K, masks, aabb, occ, tol_px) -> torch.Tensor:
    """The previous rule's second term, per view (N,): the hull's silhouette outside the mask by
    more than the slack, over the mask's area."""
    import cv2

    from nerfreg_ns.nerf.hull import silhouettes

    out = []
    for sil, m, r in silhouettes(c2w, K, masks, aabb, occ, tol_px):
        out.append(float((sil > cv2.dilate(m, np.ones((2 * r + 1, 2 * r + 1), np.uint8))).sum()) / max(float(m.sum()), 1.0))
    return torch.tensor(out)


def check(seq_dir: Path, bad: dict[int, str]) -> dict:
    """The dataparser's frame check on one sequence, and the previous rule's, against the truth."""
    from nerfreg_ns.data.images import read_mask
    from nerfreg_ns.nerf.dataparser import NerfregDataParserConfig
    from nerfreg_ns.nerf.hull import blob_added, checked_hull, disagreeing_frames, piece_missing, visual_hull

    cfg = NerfregDataParserConfig(data=seq_dir)
    dp = cfg.setup()
    dp._hull_cache = (torch.zeros(2, 3), None, None, None)  # the outputs only: the check is run below, timed
    out = dp._generate_dataparser_outputs("train")
    masks = [torch.from_numpy(read_mask(f)) for f in out.metadata["fg_mask_filenames"]]
    frames = [int(Path(f).stem.split("_")[-1]) for f in out.image_filenames]
    c2w, K = out.cameras.camera_to_worlds, out.cameras.get_intrinsics_matrices()
    opts = dict(tol_px=cfg.mask_dilate_px, votes=cfg.carve_votes, min_seen_frac=cfg.min_seen_frac)
    t0 = time.perf_counter()
    now = checked_hull(c2w, K, masks, cfg.hull_res, **opts)
    t1 = time.perf_counter()
    aabb, occ, voters = visual_hull(c2w, K, masks, cfg.hull_res, **opts)
    blob = blob_added(c2w, K, masks, aabb, occ, cfg.mask_dilate_px)
    before = blob + hull_outside_mask(c2w, K, masks, aabb, occ, cfg.mask_dilate_px)
    t2 = time.perf_counter()
    one_round = blob + piece_missing(c2w, K, masks, aabb, voters, cfg.mask_dilate_px)
    is_bad = np.array([f in bad for f in frames])
    row = {"frames": len(frames), "bad": int(is_bad.sum()), "seconds": {"now": t1 - t0, "before": t2 - t1}}
    for rule, flagged in (("now", now.flagged.numpy()), ("one round", disagreeing_frames(one_round).numpy()),
                          ("before", disagreeing_frames(before).numpy())):
        row[rule] = {"caught": int((flagged & is_bad).sum()), "false": int((flagged & ~is_bad).sum()),
                     "missed": [f"{frames[k]} ({bad[frames[k]]})" for k in np.nonzero(is_bad & ~flagged)[0]],
                     "false_frames": [frames[k] for k in np.nonzero(flagged & ~is_bad)[0]]}
    row["scores"] = {frames[k]: [round(float(now.disagreement[k]), 3), round(float(before[k]), 3)]
                     for k in np.nonzero(is_bad | (now.disagreement > 0.01).numpy() | (before > 0.01).numpy())[0]}
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--cases", nargs="+", default=DEFAULT_CASES)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    totals = {rule: {"caught": 0, "bad": 0, "false": 0, "clean": 0} for rule in ("now", "one round", "before")}
    results = {}
    for spec in args.cases:
        case = render(spec, args.work)
        truth = json.loads((case / "truth.json").read_text())
        for seq in ("seq1", "seq2"):
            bad = {b["frame"]: b["error"] for b in truth["bad_frames"][seq]}
            row = results[f"{spec} {seq}"] = check(case / seq, bad)
            for rule in totals:
                t = totals[rule]
                t["caught"] += row[rule]["caught"]
                t["bad"] += row["bad"]
                t["false"] += row[rule]["false"]
                t["clean"] += row["frames"] - row["bad"]
            print(f"{spec:14s} {seq}  " + "  ".join(f"{rule}: {row[rule]['caught']}/{row['bad']} bad caught, clean flagged "
                                                  f"{row[rule]['false_frames']}, missed {row[rule]['missed']}" for rule in totals)
                  + f"  ({row['seconds']['now']:.1f} / {row['seconds']['before']:.1f} s)", flush=True)
        (args.work / "results.json").write_text(json.dumps({"cases": results, "totals": totals}, indent=1))
    for rule, t in totals.items():
        print(f"{rule}: bad frames caught {t['caught']}/{t['bad']}, clean frames flagged {t['false']}/{t['clean']}")


if __name__ == "__main__":
    main()
