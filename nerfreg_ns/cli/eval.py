"""nerfreg-eval: score a registration (and optionally a reconstruction) against truth.json."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

from nerfreg_ns.cli import run_cli


@dataclass
class EvalConfig:
    """Score an estimated T_seq1_seq2 against a case's truth: rotation and translation errors,
    ADD, ADD-S and the surface error that decides success (< 0.01 of the diameter)."""

    truth: Path
    """truth.json of the case."""
    registration: Optional[Path] = None
    """A registration JSON with T_seq1_seq2 (e.g. nerfreg-register's registration.json)."""
    recon: Optional[Path] = None
    """A reconstructed model (PLY/OBJ/STL, points or mesh) to compare with the CAD model."""
    recon_frame: Literal["seq1", "seq2", "obj"] = "seq1"
    """Frame the reconstruction is expressed in."""
    visible_from: Optional[Literal["seq1", "seq2"]] = None
    """Compare the reconstruction with the part of the model these views see (default: all of it)."""
    well_seen_by: int = 0
    """With a whole-surface comparison of a merged model: also split model-to-reconstruction
    between the surface at least this many cameras see at under 60 degrees of incidence and the
    rest (0: off; it reads both sequences' cameras from the truth's case folder)."""
    out: Optional[Path] = None
    """Write the results as JSON here."""
    samples: int = 20000
    """Surface samples of the model."""


def main(cfg: EvalConfig) -> int:
    from rich.console import Console
    from rich.table import Table

    from nerfreg_ns.data.truth import read_truth
    from nerfreg_ns.errors import NerfregError
    from nerfreg_ns.evaluate import TruthModel, evaluate_reconstruction, evaluate_registration, load_points, read_registration
    from nerfreg_ns.io_utils import write_json_atomic

    if cfg.registration is None and cfg.recon is None:
        raise NerfregError("nothing to evaluate: give --registration and/or --recon")
    truth = read_truth(cfg.truth)
    T_est = read_registration(cfg.registration, truth) if cfg.registration else None
    recon = load_points(cfg.recon) if cfg.recon else None
    model = TruthModel(truth, samples=cfg.samples)
    result: dict = {"truth": str(cfg.truth)}
    if T_est is not None:
        result["registration"] = {"file": str(cfg.registration), **evaluate_registration(T_est, model)}
    if recon is not None:
        result["reconstruction"] = {"file": str(cfg.recon), **evaluate_reconstruction(recon, model, cfg.recon_frame, cfg.visible_from, cfg.well_seen_by)}
    if cfg.out:
        write_json_atomic(cfg.out, result)

    table = Table(title=f"nerfreg-eval: {truth.object_name} (d = {truth.diameter:.2f} {truth.unit})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for section in ("registration", "reconstruction"):
        for key, value in result.get(section, {}).items():
            if key in ("file", "object", "unit", "diameter", "frame", "model_surface"):
                continue
            text = f"{value:.4f}" if isinstance(value, float) else str(value)
            table.add_row(f"{section[:5]}. {key}", text)
    Console().print(table)
    return 0


def entrypoint() -> None:
    sys.exit(run_cli("nerfreg-eval", EvalConfig, main))


if __name__ == "__main__":
    entrypoint()
