"""Shared fixtures: tiny synthetic cases made on the fly (small images, few views)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from dataclasses import dataclass

from nerfreg_ns.hookspecs import hookimpl
from nerfreg_ns.registry import Hypothesis

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


@dataclass(frozen=True)
class NoOptions:
    """No options."""


class Truth:
    """An inline generator plugin that proposes one given transform."""

    __name__ = "truth"

    def __init__(self, T):
        self.T = T

    @hookimpl
    def nerfreg_register_generators(self, register):
        register("truth", NoOptions, lambda cfg: type("Gen", (), {"propose": lambda _, a, b: [Hypothesis(self.T, "truth")]})())


def register_known(truth, seqs, out, *args) -> int:
    """nerfreg-register's run on already loaded sequences, with the true transform as the only
    hypothesis (outputs tested apart from the search)."""
    from nerfreg_ns.cli import register as reg_cli
    from nerfreg_ns.plugins import load_registry

    registry = load_registry([Truth(truth.T_seq1_seq2)], autoload=False)
    cmd = reg_cli.command(registry, ["--seq1", "a", "--seq2", "b", "--out", str(out), "--generator", "truth",
                                     "--verifier", "chamfer", "--refiner", "none", *args])
    return reg_cli.run(cmd, sequences=seqs)


@dataclass
class Labelled:
    """A registration's output folder (`out`) on a 128x128 case whose inputs were spoiled on
    purpose: `bad` lists (sequence, image) of the frames given a gross mask error or a camera
    pose turned by 3 degrees."""

    case: Path
    out: Path
    bad: dict
    printed: str


@pytest.fixture(scope="session")
def labelled(tmp_path_factory) -> Labelled:
    """The default part, 10 views per side at 128x128, registered by the true transform, with a
    blob added to one mask, a piece cut from another and one camera pose turned by 3 degrees."""
    import contextlib
    import dataclasses
    import io

    import cv2
    import numpy as np

    from nerfreg_ns.data.truth import read_truth
    from nerfreg_ns.geometry.transforms import axis_angle_to_R, make_T
    from nerfreg_ns.register.synthetic import sequence_from_truth

    root = tmp_path_factory.mktemp("labelled")
    make_case(make_default_part(), "nerfreg_part", "mm", SynthOptions(views=10, width=128, height=128, seed=4,
                                                                      capture=CaptureOptions(principal_jitter=2.0)), root / "case")
    truth = read_truth(root / "case" / "truth.json")
    s1, s2 = sequence_from_truth(root / "case", "seq1"), sequence_from_truth(root / "case", "seq2")
    masks1 = [m.copy() for m in s1.masks]
    ys, xs = np.nonzero(masks1[2])
    blob = np.zeros(masks1[2].shape, np.uint8)
    cv2.circle(blob, (int(xs.max()), int(ys.mean())), 14, 1, -1)  # a blob on the right edge
    masks1[2] |= blob.astype(bool)
    ys, xs = np.nonzero(masks1[5])
    cut = np.zeros(masks1[5].shape, np.uint8)
    cv2.circle(cut, (int(xs.min()), int(ys.mean())), 14, 1, -1)  # a piece off the left edge
    masks1[5] &= ~cut.astype(bool)
    poses2 = [T.copy() for T in s2.T_world_camcv]
    poses2[3] = poses2[3] @ make_T(axis_angle_to_R(np.array([1.0, 0.3, 0.0]), np.radians(3.0)), np.zeros(3))
    seqs = (dataclasses.replace(s1, masks=masks1), dataclasses.replace(s2, T_world_camcv=poses2))
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert register_known(truth, seqs, root / "out") == 0
    return Labelled(root / "case", root / "out", {("seq1", 2): "blob added", ("seq1", 5): "piece missing", ("seq2", 3): "pose turned 3 deg"},
                    buf.getvalue())


@pytest.fixture(scope="session")
def perfect_tiny(tiny_case):
    """The tiny case's truth and its two sequences with the true surfaces (no training)."""
    from nerfreg_ns.data.truth import read_truth
    from nerfreg_ns.register.synthetic import sequence_from_truth

    return read_truth(tiny_case / "truth.json"), sequence_from_truth(tiny_case, "seq1"), sequence_from_truth(tiny_case, "seq2")
