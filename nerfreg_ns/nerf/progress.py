"""A training's progress as a small file in its run folder, for whoever waits on it.

`ns-train` draws its own table on a terminal; a command that runs trainings as subprocesses
(`nerfreg-demo`) reads this file instead of parsing that table: which stage the run is in and
how many of its steps are done.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from nerfreg_ns.io_utils import write_json_atomic

PROGRESS_FILE = "nerfreg_progress.json"
STAGES = {"set-up": "starting, hull", "field": "object field", "keys": "keys + query encoder",
          "surface": "saving surface", "done": "done"}
"""Stage names a run goes through, and how a progress display words them (at most 20 characters:
the line must fit an 80-column terminal)."""


def write_progress(run_dir: Path, stage: str, done: int, total: int, times_s: Optional[dict] = None) -> None:
    """Records that the run is in `stage` with `done` of its `total` steps finished; `times_s`:
    seconds per part of the training so far (set-up stages, field steps, key steps, surface)."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}")
    record = {"stage": stage, "done": int(done), "total": int(total)}
    if times_s:
        record["times_s"] = {k: round(float(v), 2) for k, v in times_s.items()}
    write_json_atomic(Path(run_dir) / PROGRESS_FILE, record)


def read_progress(run_dir: Path) -> Optional[dict]:
    """{"stage", "done", "total"[, "times_s"]} as last written, None before the run wrote any (or mid-write)."""
    try:
        return json.loads((Path(run_dir) / PROGRESS_FILE).read_text())
    except (OSError, ValueError):
        return None
