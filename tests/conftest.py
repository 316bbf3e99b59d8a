"""Shared fixtures: tiny synthetic cases made on the fly (small images, few views)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
TLESS = SHARED / "data" / "tless_scaled"


def run_cli(module: str, *args: str) -> subprocess.CompletedProcess:
    """Runs a console script's module in a subprocess, as a user would, capturing its output."""
    return subprocess.run([sys.executable, "-m", f"nerfreg_ns.cli.{module}", *map(str, args)],
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="session")
def tiny_case(tmp_path_factory) -> Path:
    """The embedded default part: 8 views per side, 64x64, some principal-point jitter."""
    from nerfreg_ns.data.procedural import make_default_part
    from nerfreg_ns.data.synth import SynthOptions, make_case

    out = tmp_path_factory.mktemp("tiny") / "case"
    out.mkdir()
    make_case(make_default_part(), "nerfreg_part", "mm", SynthOptions(views=8, width=64, height=64, seed=3, principal_jitter=2.0), out)
    return out
