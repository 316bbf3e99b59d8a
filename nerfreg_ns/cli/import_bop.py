"""nerfreg-import-bop: a BOP dataset -> two nerfstudio datasets (upper, lower) and truth.json."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

from nerfreg_ns.cli import run_cli


@dataclass
class ImportBopConfig:
    """Turn a BOP dataset into nerfreg's two sequences: either an object-centric training split
    (T-LESS train_primesense, train_pbr-style scenes) split by elevation, or BOP 2024 model-free
    onboarding_static/obj_XXXXXX_up and _down folders."""

    bop_root: Path
    """The BOP dataset folder (holding models/ and the split folders)."""
    obj_id: int
    """The object to import."""
    out: Path
    """Output folder: seq1/, seq2/, truth.json (when known), model.ply, preview.png."""
    layout: Literal["train", "onboarding"] = "train"
    """'train': scenes of a training split, split by elevation; 'onboarding': _up/_down folders."""
    split: Optional[str] = None
    """Split folder (default: train_primesense for 'train', onboarding_static for 'onboarding')."""
    split_elevation: float = 0.0
    """'train' layout: views at or above this elevation (degrees, object frame) form seq1."""
    seed: int = 0
    """'train' layout: seed of the random frames each sequence is re-expressed in."""
    overwrite: bool = False


def main(cfg: ImportBopConfig) -> int:
    from nerfreg_ns.data.import_bop import import_onboarding, import_train
    from nerfreg_ns.io_utils import atomic_output_dir

    with atomic_output_dir(cfg.out, overwrite=cfg.overwrite) as tmp:
        if cfg.layout == "train":
            truth = import_train(cfg.bop_root, cfg.split or "train_primesense", cfg.obj_id, tmp, cfg.seed, cfg.split_elevation)
        else:
            truth = import_onboarding(cfg.bop_root, cfg.obj_id, tmp, cfg.split or "onboarding_static")
    note = "with truth.json" if truth else "without truth (no scene_gt.json or model)"
    print(f"wrote {cfg.out}: seq1/ and seq2/ {note}")
    return 0


def entrypoint() -> None:
    sys.exit(run_cli("nerfreg-import-bop", ImportBopConfig, main))


if __name__ == "__main__":
    entrypoint()
