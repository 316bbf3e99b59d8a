"""A third-party plugin written from the README's guide alone: the guide's own code blocks are
run as a plugin module, on sequences built by hand (no nerfstudio), and must recover a known
transform, through the registry and through the command."""

from __future__ import annotations

import json
import re
import sys
import types
from pathlib import Path

import numpy as np

from nerfreg_ns.geometry.transforms import apply, axis_angle_to_R, invert, make_T
from nerfreg_ns.registry import SequenceData

README = Path(__file__).resolve().parents[1] / "README.md"


def _guide_blocks() -> list[str]:
    text = README.read_text()
    guide = text[text.index("## Writing a plugin"):]
    guide = guide[: guide.index("\n## ", 3)]
    return re.findall(r"```python\n(.*?)```", guide, flags=re.S)


def _plugin_module() -> types.ModuleType:
    blocks = _guide_blocks()
    module = types.ModuleType("guide_plugin")
    sys.modules[module.__name__] = module  # as an import would: dataclasses look their module up
    exec(compile("\n".join(b for b in blocks if "@hookimpl" in b), "README.md (guide)", "exec"), module.__dict__)
    return module


def _sequences():
    """An asymmetric blob seen as sequence 1, and the same blob in sequence 2's own frame, which a
    half turn about z and a shift take into sequence 1's."""
    rng = np.random.default_rng(0)
    blob = np.concatenate([rng.normal(c, s, (n, 3)) for c, s, n in
                           (([0, 0, 0], [3.0, 1.5, 1.0], 3000), ([4, 1, 0.5], [0.8, 0.8, 0.8], 800), ([-1, -2, 1], 0.5, 400))])
    T_seq1_seq2 = make_T(axis_angle_to_R([0, 0, 1], np.pi), [5.0, -2.0, 1.0])
    normals = (blob - blob.mean(0)) / np.linalg.norm(blob - blob.mean(0), axis=1, keepdims=True)
    seq1 = SequenceData("seq1", blob, normals, diameter=12.0, unit="mm")
    T_seq2_seq1 = invert(T_seq1_seq2)
    seq2 = SequenceData("seq2", apply(T_seq2_seq1, blob), normals @ T_seq2_seq1[:3, :3].T, diameter=12.0, unit="mm")
    return seq1, seq2, T_seq1_seq2


def test_the_guide_has_one_example_per_hook():
    module = _plugin_module()
    for hook in ("nerfreg_register_generators", "nerfreg_register_verifiers", "nerfreg_register_refiners"):
        assert callable(getattr(module, hook, None)), hook


def test_a_plugin_from_the_guide_recovers_a_known_transform():
    from nerfreg_ns.plugins import load_registry

    module = _plugin_module()
    seq1, seq2, T_true = _sequences()
    usage = next(b for b in _guide_blocks() if "load_registry" in b and "@hookimpl" not in b)
    scope = {"my_plugin": module, "seq1": seq1, "seq2": seq2, "print": lambda *a: None}
    exec(compile(usage, "README.md (usage)", "exec"), scope)
    best = scope["result"].best
    assert best.source == "centroid-turn-3" and best.score.confident  # the half turn about z
    np.testing.assert_allclose(best.T_seq1_seq2, T_true, atol=1e-6)
    registry = load_registry([module], autoload=False)
    assert not registry.broken and registry.get("verifier", "near-fraction").plugin == "guide_plugin"


def test_a_plugin_from_the_guide_runs_through_the_command(tmp_path, capsys):
    from nerfreg_ns.cli import register as reg_cli
    from nerfreg_ns.plugins import load_registry

    seq1, seq2, T_true = _sequences()
    registry = load_registry([_plugin_module()], autoload=False)
    cmd = reg_cli.command(registry, ["--seq1", "a", "--seq2", "b", "--out", str(tmp_path / "o"), "--generator", "centroid-turns",
                                     "--verifier", "near-fraction", "--refiner", "point-steps,none", "--point-steps.steps", "3"])
    assert reg_cli.run(cmd, sequences=(seq1, seq2)) == 0
    reg = json.loads((tmp_path / "o" / "registration.json").read_text())
    np.testing.assert_allclose(np.array(reg["T_seq1_seq2"]), T_true, atol=1e-6)
    assert reg["plugins"]["refiners"][0]["options"] == {"steps": 3}
    assert reg["bop"] is None and "no image files" in capsys.readouterr().err  # point clouds alone: no BOP labels
