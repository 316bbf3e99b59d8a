"""Shared fixtures: tiny synthetic cases made on the fly (small images, few views)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nerfreg_ns.data.procedural import make_default_part
from nerfreg_ns.data.capture import CaptureOptions
from nerfreg_ns.data.synth import SynthOptions, make_case

SHARED = Path(__file__).resolve().parents[2] / "shared"
TLESS = SHARED / "data" / "tless_scaled"


def run_cli(module: str, *args: str) -> subprocess.CompletedProcess:
    """Runs a console script's module in a subprocess, as a user would, capturing its output."""
    return subprocess.run([sys.executable, "-m", f"nerfreg_ns.cli.{module}", *map(str, args)],
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="session")
def tiny_case(tmp_path_factory) -> Path:
    """The embedded default part: 8 views per side, 64x64, some principal-point jitter."""
    out = tmp_path_factory.mktemp("tiny") / "case"
    out.mkdir()
    make_case(make_default_part(), "nerfreg_part", "mm", SynthOptions(views=8, width=64, height=64, seed=3, capture=CaptureOptions(principal_jitter=2.0)), out)
    return out


# `ns-train nerfreg-feature` with a tiny configuration, shared by the method and viewer tests.
VENV_BIN = Path(sys.executable).parent
TINY = [
    "--pipeline.nerf-steps", "150", "--pipeline.model.density-res", "64",
    "--pipeline.datamanager.train-num-rays-per-batch", "1024",
    "--pipeline.query-size", "48", "--pipeline.embed-batch-images", "4", "--pipeline.extra-views", "4", "--vis", "tensorboard",
]


def ns_train(data: Path, out: Path, steps: int, *extra: str, method: str = "nerfreg-feature") -> subprocess.CompletedProcess:
    cmd = [str(VENV_BIN / "ns-train"), method, "--data", str(data), "--output-dir", str(out),
           "--timestamp", "run", "--max-num-iterations", str(steps), *TINY, *extra, "nerfreg-data", "--hull-res", "64"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="session")
def case(tmp_path_factory) -> Path:
    """The default part, 16 views per side at 64x64, for training."""
    out = tmp_path_factory.mktemp("nerf") / "case"
    out.mkdir()
    make_case(make_default_part(), "nerfreg_part", "mm", SynthOptions(views=16, width=64, height=64, seed=5), out)
    return out


def _tiny_run(case: Path, seq: str, out: Path) -> Path:
    proc = ns_train(case / seq, out, 350)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out / seq / "nerfreg-feature" / "run"


@pytest.fixture(scope="session")
def run(case, tmp_path_factory) -> Path:
    """A tiny nerfreg-feature run on the case's seq1: 150 field steps, then 200 embedding steps."""
    return _tiny_run(case, "seq1", tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="session")
def field_run(case, tmp_path_factory) -> Path:
    """A tiny nerfreg-field run on the case's seq1: the field phase of `run` alone, no keys."""
    out = tmp_path_factory.mktemp("field")
    proc = ns_train(case / "seq1", out, 150, method="nerfreg-field")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out / "seq1" / "nerfreg-field" / "run"


@pytest.fixture(scope="session")
def run2(case, tmp_path_factory) -> Path:
    """The same tiny configuration trained on the case's seq2."""
    return _tiny_run(case, "seq2", tmp_path_factory.mktemp("runs2"))
