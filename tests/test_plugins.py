"""The plugin system: registration hooks, duplicates, broken plugins, and every registered
plugin run on a small synthetic case (conformance)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from nerfreg_ns.errors import NerfregError
from nerfreg_ns.geometry.transforms import axis_angle_to_R, check_rigid, make_T
from nerfreg_ns.hookspecs import hookimpl
from nerfreg_ns.plugins import load_registry
from nerfreg_ns.registry import Hypothesis


@dataclass(frozen=True)
class _NoOptions:
    """A throwaway plugin's config."""


class DuplicateIcp:
    """Registers a verifier of its own, then a refiner whose name a built-in has."""

    __name__ = "duplicate-icp"

    @hookimpl
    def nerfreg_register_verifiers(self, register):
        register("own-verifier", _NoOptions, lambda cfg: None)

    @hookimpl
    def nerfreg_register_refiners(self, register):
        register("icp", _NoOptions, lambda cfg: None)


class HalfWay:
    """Registers one generator, then fails."""

    __name__ = "half-way"

    @hookimpl
    def nerfreg_register_generators(self, register):
        register("half-way-generator", _NoOptions, lambda cfg: None)
        raise RuntimeError("its second generator needs a missing dependency")


class ReKind:
    """Tries to register a verifier through the generator hook's callback."""

    __name__ = "re-kind"

    @hookimpl
    def nerfreg_register_generators(self, register):
        register("sneaky", _NoOptions, lambda cfg: None, _kind="verifier")


class Broken:
    __name__ = "broken-plugin"

    @hookimpl
    def nerfreg_register_generators(self, register):
        raise RuntimeError("cannot import its dependency")


class Identity:
    __name__ = "identity-plugin"

    @hookimpl
    def nerfreg_register_generators(self, register):
        class Gen:
            def __init__(self, cfg):
                self.cfg = cfg

            def propose(self, seq1, seq2):
                return [Hypothesis(np.eye(4), "identity")]

        register("identity", _NoOptions, Gen)


def test_builtins_are_registered_like_any_plugin():
    reg = load_registry(autoload=False)
    assert {"fpfh", "fpfh-flips"} <= set(reg.entries["generator"])
    assert {"chamfer", "silhouette", "combined"} <= set(reg.entries["verifier"])
    assert {"icp", "none"} <= set(reg.entries["refiner"])
    assert reg.get("refiner", "icp").plugin == "nerfreg_ns.default_plugins.refiners"


def test_a_duplicate_name_rejects_that_plugin_naming_both_and_keeps_the_first():
    reg = load_registry([DuplicateIcp()], autoload=False)
    why = reg.broken["duplicate-icp"]
    assert "two plugins register the refiner 'icp'" in why and "default_plugins.refiners" in why, why
    assert reg.get("refiner", "icp").plugin == "nerfreg_ns.default_plugins.refiners"
    assert "own-verifier" not in reg.entries["verifier"]  # all or nothing: none of the rejected plugin's entries


def test_a_plugin_failing_half_way_registers_nothing():
    reg = load_registry([HalfWay()], autoload=False)
    assert "missing dependency" in reg.broken["half-way"]
    assert "half-way-generator" not in reg.entries["generator"]


class BadName:
    """Registers a name that cannot be a command-line flag group."""

    __name__ = "bad-name"

    @hookimpl
    def nerfreg_register_refiners(self, register):
        register("point.icp", _NoOptions, lambda cfg: None)


def test_a_name_that_cannot_be_a_flag_marks_only_that_plugin_broken():
    from nerfreg_ns.cli.register import command

    reg = load_registry([BadName()], autoload=False)
    assert "lower-case words joined by hyphens" in reg.broken["bad-name"]
    assert command(reg, ["--icp.iterations", "3"]).options.icp.iterations == 3  # the command still works


def test_the_register_callback_cannot_change_the_kind():
    reg = load_registry([ReKind()], autoload=False)
    assert "_kind" in reg.broken["re-kind"]
    assert "sneaky" not in reg.entries["verifier"] and "sneaky" not in reg.entries["generator"]


def test_a_broken_plugin_is_reported_and_the_rest_work():
    reg = load_registry([Broken(), Identity()], autoload=False)
    assert "broken-plugin" in reg.broken and "cannot import" in reg.broken["broken-plugin"]
    assert reg.make("generator", "identity").propose(None, None)[0].source == "identity"


def test_unknown_names_and_options_list_what_exists():
    reg = load_registry(autoload=False)
    with pytest.raises(NerfregError, match=r"unknown verifier 'nope' \(known: chamfer, combined, silhouette"):
        reg.get("verifier", "nope")
    with pytest.raises(NerfregError, match="has no option"):
        reg.make("refiner", "icp", {"bogus": 1})
    with pytest.raises(NerfregError, match="takes a IcpConfig"):
        reg.make("refiner", "icp", _NoOptions())
    assert reg.make("refiner", "icp", {"iterations": 7}).config.iterations == 7


def test_broken_entry_point_is_reported_by_name(monkeypatch):
    import nerfreg_ns.plugins as plugins

    class EP:
        name = "third-party-broken"

        def load(self):
            raise ImportError("No module named 'missing_dep'")

    monkeypatch.setattr(plugins, "entry_points", lambda group: [EP()])
    reg = load_registry(autoload=True)
    assert "missing_dep" in reg.broken["third-party-broken"]
    monkeypatch.setenv(plugins.NO_AUTOLOAD_ENV, "1")
    assert "third-party-broken" not in load_registry().broken


@pytest.fixture(scope="module")
def perfect(tmp_path_factory):
    from nerfreg_ns.data.procedural import make_default_part
    from nerfreg_ns.data.synth import SynthOptions, make_case
    from nerfreg_ns.data.truth import read_truth
    from nerfreg_ns.register.synthetic import sequence_from_truth

    out = tmp_path_factory.mktemp("reg") / "case"
    out.mkdir()
    make_case(make_default_part(), "nerfreg_part", "mm", SynthOptions(views=12, width=96, height=96, seed=9), out)
    return read_truth(out / "truth.json"), sequence_from_truth(out, "seq1"), sequence_from_truth(out, "seq2")


def _surface_error(truth, T):
    from nerfreg_ns.evaluate import TruthModel, evaluate_registration

    return evaluate_registration(T, TruthModel(truth, samples=4000))["surface_error_frac"]


def test_the_example_package_is_loaded_from_its_entry_point():
    reg = load_registry()
    assert reg.get("refiner", "point-icp").plugin == "example" and reg.get("verifier", "normals").plugin == "example"
    assert not reg.broken, reg.broken


def test_every_registered_plugin_runs_on_a_small_case(perfect):
    truth, s1, s2 = perfect
    reg = load_registry()  # built-ins and the installed third-party plugins alike
    T_gt = truth.T_seq1_seq2
    wrong = T_gt @ make_T(axis_angle_to_R([1.0, 0, 0], np.pi / 2), [0, 0, 0])
    for name, entry in reg.entries["generator"].items():
        try:
            hyps = reg.make("generator", name).propose(s1, s2)
        except NerfregError as e:  # generators of learned embeddings need real runs: test_register
            assert "needs nerfreg-feature runs" in str(e), name
            continue
        assert hyps, name
        for h in hyps:
            check_rigid(h.T_seq1_seq2, f"{name} hypothesis")
    for name, entry in reg.entries["verifier"].items():
        v = reg.make("verifier", name)
        good, bad = v.score(s1, s2, T_gt), v.score(s1, s2, wrong)
        assert np.isfinite(good.value) and good.value > bad.value, (name, good, bad)
    nudge = make_T(axis_angle_to_R([0.2, 1.0, 0.3], np.radians(3)), [1.0, -1.0, 0.5])
    for name, entry in reg.entries["refiner"].items():
        T = check_rigid(reg.make("refiner", name).refine(s1, s2, nudge @ T_gt), f"{name} result")
        if name != "none":
            assert _surface_error(truth, T) < _surface_error(truth, nudge @ T_gt) / 3, name


def test_fpfh_flips_with_silhouettes_recovers_the_truth(perfect):
    truth, s1, s2 = perfect
    reg = load_registry(autoload=False)
    verifier, icp = reg.make("verifier", "combined"), reg.make("refiner", "icp")
    hyps = reg.make("generator", "fpfh-flips").propose(s1, s2)
    refined = [icp.refine(s1, s2, h.T_seq1_seq2) for h in hyps]
    best = max(refined, key=lambda T: verifier.score(s1, s2, T).value)
    assert _surface_error(truth, best) < 0.01


def test_plugin_options_from_the_config_file_and_the_command_line(tmp_path):
    import yaml

    from nerfreg_ns.cli.register import DEFAULTS, command

    reg = load_registry(autoload=False)
    root = Path(__file__).resolve().parents[1]
    shipped = root / "configs" / "default.yaml"
    base = command(reg, ["--config", str(shipped)]).options
    in_file = yaml.safe_load(shipped.read_text())["options"]["icp"]["voxel_fracs"]
    assert base.verifier == "combined" and base.icp.voxel_fracs == tuple(in_file)
    assert {k: getattr(base, k) for k in DEFAULTS} == DEFAULTS  # the shipped file says what the command does
    cfg = command(reg, ["--config", str(shipped), "--verifier", "chamfer", "--icp.iterations", "7",
                        "--chamfer.truncate-frac", "0.05"]).options
    assert (cfg.verifier, cfg.icp.iterations, cfg.chamfer.truncate_frac) == ("chamfer", 7, 0.05)
    own = tmp_path / "own.yaml"
    own.write_text("verifier: silhouette\noptions:\n  icp: {iterations: 9, voxel_fracs: [0.03]}\n  silhouette_search: {keep: 3}\n")
    for args in (["--config", str(own)], [f"--config={own}"]):  # both spellings a shell user types
        mine = command(reg, args).options
        assert (mine.verifier, mine.icp.iterations, mine.icp.voxel_fracs) == ("silhouette", 9, (0.03,)), args
        assert mine.silhouette_search.keep == 3  # a name spelt with underscores, as the field is
    assert command(reg, [f"--config={own}", "--icp.iterations", "4"]).options.icp.iterations == 4  # the flag wins
    bad = tmp_path / "bad.yaml"
    bad.write_text("options:\n  no-such-plugin: {a: 1}\n")
    with pytest.raises(NerfregError, match="unknown plugin 'no-such-plugin'"):
        command(reg, [f"--config={bad}"])


@dataclass(frozen=True)
class _Steps:
    """A throwaway plugin's config with one option."""

    iterations: int = 1


class IcpGenerator:
    """A generator whose name a built-in refiner has too."""

    __name__ = "icp-generator"

    @hookimpl
    def nerfreg_register_generators(self, register):
        register("icp", _Steps, lambda cfg: cfg)


def test_one_name_in_two_kinds_gets_a_group_per_kind_in_flags_and_yaml(tmp_path):
    from nerfreg_ns.cli.register import command

    reg = load_registry([IcpGenerator()], autoload=False)
    assert not reg.broken and reg.get("generator", "icp").plugin == "icp-generator"
    cfg = command(reg, ["--generator-icp.iterations", "5", "--refiner-icp.iterations", "6"]).options
    assert (cfg.generator_icp.iterations, cfg.refiner_icp.iterations) == (5, 6)
    assert cfg.silhouette_search.rotations > 0  # names in one kind keep their plain group
    own = tmp_path / "own.yaml"
    own.write_text("options:\n  generator-icp: {iterations: 8}\n  refiner-icp: {iterations: 9}\n")
    cfg = command(reg, ["--config", str(own)]).options
    assert (cfg.generator_icp.iterations, cfg.refiner_icp.iterations) == (8, 9)
    own.write_text("options:\n  icp: {iterations: 8}\n")
    with pytest.raises(NerfregError, match="'icp' is a plugin of several kinds: write generator-icp or refiner-icp"):
        command(reg, ["--config", str(own)])


def test_the_default_plugins_recover_the_true_transform(perfect):
    """The command's own default set (generator, verifier, every refiner) on the true surfaces."""
    from nerfreg_ns.cli.register import DEFAULTS, refiner_names
    from nerfreg_ns.geometry.metrics import rotation_error_deg
    from nerfreg_ns.register.run import register_sequences

    truth, s1, s2 = perfect
    reg = load_registry(autoload=False)
    res = register_sequences(s1, s2, reg.make("generator", DEFAULTS["generator"]), reg.make("verifier", DEFAULTS["verifier"]),
                             {n: reg.make("refiner", n) for n in refiner_names(DEFAULTS["refiner"])})
    assert res.best.score.confident
    assert _surface_error(truth, res.best.T_seq1_seq2) < 0.01
    assert rotation_error_deg(res.best.T_seq1_seq2, truth.T_seq1_seq2) < 1.0  # the default part has no symmetry


def test_silhouette_search_finds_the_pose_without_features(perfect):
    truth, s1, s2 = perfect
    reg = load_registry(autoload=False)
    verifier, refiner = reg.make("verifier", "combined"), reg.make("refiner", "silhouette-icp")
    hyps = reg.make("generator", "silhouette-search").propose(s1, s2)
    assert len(hyps) > 1 and all(h.source.startswith("silhouette-search") for h in hyps)
    refined = [refiner.refine(s1, s2, h.T_seq1_seq2) for h in hyps]
    best = max(refined, key=lambda T: verifier.score(s1, s2, T).value)
    assert _surface_error(truth, best) < 0.01
