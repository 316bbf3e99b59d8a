"""A batch's outputs: one BOP dataset of every labelled object, and the summary (summary.json,
summary.md and a table in the terminal)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from nerfreg_ns.batch.cases import Case, has_truth
from nerfreg_ns.data.bop_io import model_filename
from nerfreg_ns.io_utils import atomic_output_dir, write_bytes_atomic, write_json_atomic


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)  # the images are large and never change: share them where the file system can
    except OSError:
        shutil.copy2(src, dst)


def merge_bop(out: Path, labelled: list[tuple[Case, Path]]) -> dict[str, list[int]]:
    """Writes `out` (replaced whole): models/ with each object's model under its id and one
    models_info.json, and its two sequences as scenes 2k-1 and 2k (k-th object in id order).
    `labelled`: (case, its registration folder holding bop/). Returns the scene ids per object."""
    scenes: dict[str, list[int]] = {}
    with atomic_output_dir(out, overwrite=True) as tmp:
        info = {}
        for k, (case, reg) in enumerate(sorted(labelled, key=lambda c: c[0].obj_id), start=1):
            src = reg / "bop"
            (tmp / "models").mkdir(parents=True, exist_ok=True)
            _link_or_copy(str(src / "models" / model_filename(1)), str(tmp / "models" / model_filename(case.obj_id)))
            info[str(case.obj_id)] = json.loads((src / "models" / "models_info.json").read_text())["1"]
            scenes[case.name] = []
            for j, seq_scene in enumerate(("000001", "000002")):
                scene_id = 2 * k - 1 + j
                dst = tmp / "scenes" / f"{scene_id:06d}"
                shutil.copytree(src / "scenes" / seq_scene, dst, copy_function=_link_or_copy)
                gt_path = dst / "scene_gt.json"
                gt = json.loads(gt_path.read_text())
                for entries in gt.values():
                    for e in entries:
                        e["obj_id"] = case.obj_id
                gt_path.unlink()  # a hard link to the object's own file: write a new one, not through it
                write_json_atomic(gt_path, gt)
                scenes[case.name].append(scene_id)
        write_json_atomic(tmp / "models" / "models_info.json", info)
    return scenes


def truth_errors(case: Case, registration: Path) -> dict | None:
    """The registration's errors against the case's truth, when it has one."""
    if not has_truth(case):
        return None
    from nerfreg_ns.data.truth import read_truth
    from nerfreg_ns.evaluate import TruthModel, evaluate_registration, read_registration

    truth = read_truth(case.truth)
    res = evaluate_registration(read_registration(registration, truth), TruthModel(truth))
    return {k: res[k] for k in ("success", "rotation_error_deg", "translation_error", "surface_error_frac") if k in res}


COLUMNS = ("object", "id", "status", "confident", "score", "labels flagged", "train seq1 s", "train seq2 s", "register s",
           "rot err deg", "surface err % d", "success")


def summary_rows(summary: dict) -> list[list[str]]:
    """The summary as table rows (COLUMNS), one per object."""
    rows = []
    for name, o in summary["objects"].items():
        e, t = o.get("errors") or {}, o.get("seconds", {})
        fmt = lambda v, f="{:.0f}": "-" if v is None else f.format(v)  # noqa: E731
        rows.append([name, str(o["obj_id"]), o["status"], fmt(o.get("confident"), "{}"), fmt(o.get("score"), "{:.4f}"),
                     fmt(o.get("labels_flagged"), "{}"), fmt(t.get("train_seq1")), fmt(t.get("train_seq2")), fmt(t.get("register")),
                     fmt(e.get("rotation_error_deg"), "{:.2f}"),
                     fmt(None if e.get("surface_error_frac") is None else 100 * e["surface_error_frac"], "{:.2f}"),
                     fmt(e.get("success"), "{}")])
    return rows


def write_summary(out: Path, summary: dict) -> None:
    """summary.json and summary.md (the same table as the terminal's)."""
    write_json_atomic(out / "summary.json", summary)
    lines = [f"# nerfreg-batch: {len(summary['objects'])} objects", "", summary["line"], "",
             "| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    lines += ["| " + " | ".join(r) + " |" for r in summary_rows(summary)]
    errors = [(n, o["error"]) for n, o in summary["objects"].items() if o.get("error")]
    if errors:
        lines += ["", "## Errors", ""] + [f"- **{n}**: {e}" for n, e in errors]
    write_bytes_atomic(out / "summary.md", ("\n".join(lines) + "\n").encode())
