"""nerfreg-register: two trained runs (nerfreg-field or nerfreg-feature) -> T_seq1_seq2, merged model, BOP labels.

    nerfreg-register --seq1 RUN1/config.yml --seq2 RUN2/config.yml --generator silhouette-search \\
        --verifier combined --refiner silhouette-icp,icp,none --out DIR

Plugins are chosen by name; each plugin's options are a group named after it (`--icp.iterations
30`; `--KIND-NAME.OPTION` when two kinds share a name), and a YAML file (`--config FILE`) can
set the choices and the same groups under `options:`. `--refiner A,B` refines every hypothesis
with each of A and B and lets the verifier choose.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Optional, Sequence

from nerfreg_ns.errors import ExitCode, NerfregError
from nerfreg_ns.geometry.units import Unit
from nerfreg_ns.registry import KINDS, Kind, Registry

PROG = "nerfreg-register"
DEFAULTS = {"generator": "silhouette-search", "verifier": "combined", "refiner": "silhouette-icp,icp,none"}
FIXED: list[tuple[str, Any, Any, str]] = [
    ("seq1", Optional[Path], None, "config.yml of the nerfreg-field or nerfreg-feature run of sequence 1 (the reference frame)."),
    ("seq2", Optional[Path], None, "config.yml of the run of sequence 2 (the one moved into sequence 1)."),
    ("out", Optional[Path], None, "Output folder (must not exist unless --overwrite)."),
    ("generator", str, DEFAULTS["generator"], "Generator plugin (see --list-plugins)."),
    ("verifier", str, DEFAULTS["verifier"], "Verifier plugin."),
    ("refiner", str, DEFAULTS["refiner"], "Refiner plugin, or several A,B: each refines every hypothesis, the verifier picks."),
    ("config", Optional[Path], None, "YAML file of choices and plugin options (flags given as well win)."),
    ("unit", Optional[Unit], None, "Length unit of the datasets when they do not say it (needed for BOP labels, in mm)."),
    ("list_plugins", bool, False, "List the plugins and exit."),
    ("overwrite", bool, False, "Replace an existing output folder."),
    ("estimate_scale", bool, False, "Estimate a scale too (7 DoF), for sequences posed each in its own scale (SfM): sequence 2 is "
     "scaled into sequence 1's units; registration.json gives scale and T_seq1_seq2. Off: two sizes are refused."),
    ("min_overlap", float, 0.05, "Refuse when less of sequence 2's surface than this meets sequence 1's under the best pose."),
]


@dataclass
class Command:
    """A parsed nerfreg-register call: its options, the plugins it chose from, and the option
    group (attribute of `options`) of each plugin."""

    options: Any
    registry: Registry
    groups: dict[tuple[Kind, str], str]


def refiner_names(value: str) -> list[str]:
    """`--refiner A,B` -> [A, B]: several refiners, each applied to every hypothesis."""
    names = [n.strip() for n in value.split(",") if n.strip()]
    if not names:
        raise NerfregError("--refiner needs at least one name")
    if len(set(names)) != len(names):
        raise NerfregError(f"--refiner names a refiner twice: {value}")
    return names


def precision_line(details: dict) -> str | None:
    """What the views' agreement allows (silhouette verifiers), in words; None without it."""
    if "precision" not in details:
        return None
    return (f"precision: one standard error is {100 * details['precision']:.2f}% of d, from how well each sequence's views "
            f"agree with its own surface (sequence 1: {100 * details['view_error_seq1']:.2f}%, sequence 2: "
            f"{100 * details['view_error_seq2']:.2f}%); camera poses a degree or more off make it large")


def _describe(entry, options) -> dict[str, Any]:
    """A chosen plugin as registration.json records it: name, providing plugin, options."""
    return {"name": entry.name, "plugin": entry.plugin, "options": dataclasses.asdict(options)}


def plugin_groups(registry: Registry) -> dict[tuple[Kind, str], str]:
    """The option group of each plugin: its name as an identifier, or `KIND_NAME` for every
    plugin whose name another kind also has (or that a fixed option has)."""
    fixed = {f[0] for f in FIXED}
    kinds_of = Counter(name.replace("-", "_") for kind in KINDS for name in registry.entries[kind])
    groups: dict[tuple[Kind, str], str] = {}
    for kind in KINDS:
        for name in sorted(registry.entries[kind]):
            attr = name.replace("-", "_")
            groups[(kind, name)] = f"{kind}_{attr}" if kinds_of[attr] > 1 or attr in fixed else attr
    clash = [g for g, n in Counter(groups.values()).items() if n > 1 or g in fixed]
    if clash:
        raise NerfregError(f"plugin names give the same option group {clash[0]!r}: rename one of the plugins")
    return groups


def label(attr: str) -> str:
    """A group as the flags and the YAML file spell it (`silhouette_search` -> `silhouette-search`)."""
    return attr.replace("_", "-")


def build_config_class(registry: Registry) -> tuple[type, dict[tuple[Kind, str], str]]:
    """A dataclass for tyro: the fixed options plus one nested group per registered plugin."""
    groups = plugin_groups(registry)
    import tyro

    fields: list[tuple[str, Any, Any]] = [(name, Annotated[tp, tyro.conf.arg(help=doc)], dataclasses.field(default=value))
                                          for name, tp, value, doc in FIXED]
    for (kind, name), attr in groups.items():
        cls = registry.entries[kind][name].config_class
        fields.append((attr, cls, dataclasses.field(default_factory=cls)))
    cls = dataclasses.make_dataclass("RegisterConfig", fields)
    cls.__doc__ = ("Register two nerfreg-feature runs: pose hypotheses from a generator, refined by a refiner, "
                   "chosen by a verifier. Writes registration.json, merged.ply, merged_mesh.ply, BOP labels, labels_qa.json, report.html.")
    return cls, groups


def _apply_config_file(cls: type, groups: dict[tuple[Kind, str], str], path: Path) -> Any:
    """Defaults from a YAML file: top-level generator/verifier/refiner and `options: {GROUP: {...}}`."""
    import yaml

    if not path.is_file():
        raise NerfregError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise NerfregError(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise NerfregError(f"{path}: expected a mapping (generator, verifier, refiner, options)")
    base = cls()
    values = {k: data[k] for k in ("generator", "verifier", "refiner") if k in data}
    by_label = {label(attr): attr for attr in groups.values()}
    for name, opts in (data.get("options") or {}).items():
        key = label(str(name))  # `silhouette_search` and `silhouette-search` alike
        if key not in by_label:
            kinds = [label(a) for (kind, n), a in groups.items() if n == key]
            hint = f"'{name}' is a plugin of several kinds: write {' or '.join(kinds)}" if len(kinds) > 1 else \
                f"options for unknown plugin '{name}' (known: {', '.join(sorted(by_label))})"
            raise NerfregError(f"{path}: {hint}")
        attr = by_label[key]
        try:
            values[attr] = dataclasses.replace(getattr(base, attr), **{k: tuple(v) if isinstance(v, list) else v
                                                                       for k, v in (opts or {}).items()})
        except TypeError as e:
            raise NerfregError(f"{path}: bad options for '{name}': {e}") from None
    return dataclasses.replace(base, **values)


def command(registry: Registry, args: Sequence[str] = ()) -> Command:
    """What `nerfreg-register ARGS` would run with `registry`'s plugins: `--config FILE` (or
    `--config=FILE`) gives the defaults, the other flags override them."""
    import tyro

    cls, groups = build_config_class(registry)
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--config", type=Path)
    known, _ = pre.parse_known_args(list(args))
    default = _apply_config_file(cls, groups, known.config) if known.config else cls()
    return Command(tyro.cli(cls, prog=PROG, args=list(args), default=default), registry, groups)


def parse(argv: list[str]) -> Command:
    from nerfreg_ns.plugins import load_registry

    return command(load_registry(), argv)


def list_plugins(registry: Registry) -> str:
    lines = []
    for kind, entries in registry.entries.items():
        lines.append(f"{kind}s:")
        for name, e in sorted(entries.items()):
            doc = (e.config_class.__doc__ or "").strip().splitlines()[0]
            lines.append(f"  {name:<14} {doc}  [{e.plugin}]")
    for name, why in registry.broken.items():
        lines.append(f"broken plugin {name}: {why}")
    return "\n".join(lines)


def run(cmd: Command, sequences=None) -> int:
    """Registers, writes the output folder and returns the exit code; `sequences` (seq1, seq2)
    may be given already loaded (benchmarks compare several plugin sets on the same runs)."""
    import numpy as np

    from nerfreg_ns.io_utils import atomic_output_dir, write_json_atomic
    from nerfreg_ns.nerf.export import write_point_ply
    from nerfreg_ns.register import outputs, report
    from nerfreg_ns.register.labels import label_rule
    from nerfreg_ns.register.labels import qa_rows as label_qa_rows
    from nerfreg_ns.register.inputs import check_same_object, load_sequence
    from nerfreg_ns.register.run import overlap_fraction, register_sequences
    from nerfreg_ns.register.scale import register_with_scale
    from nerfreg_ns.stages import StageClock

    cfg, registry = cmd.options, cmd.registry
    if cfg.list_plugins:
        print(list_plugins(registry))
        return ExitCode.OK
    for name, why in registry.broken.items():
        print(f"{PROG}: warning: plugin '{name}' failed to load: {why}", file=sys.stderr)
    if cfg.seq1 is None or cfg.seq2 is None or cfg.out is None:
        raise NerfregError("--seq1, --seq2 and --out are required")
    chosen = {kind: (getattr(cfg, kind), getattr(cfg, cmd.groups[(kind, registry.get(kind, getattr(cfg, kind)).name)]))
              for kind in ("generator", "verifier")}
    refiners = {name: getattr(cfg, cmd.groups[("refiner", registry.get("refiner", name).name)]) for name in refiner_names(cfg.refiner)}
    if cfg.out.exists() and not cfg.overwrite:
        raise NerfregError(f"output folder already exists: {cfg.out} (pass --overwrite to replace it)")
    clock = StageClock()
    if sequences:
        seq1, seq2 = sequences
    else:
        with clock.stage("load seq1"):
            seq1 = load_sequence(cfg.seq1, "seq1")
        with clock.stage("load seq2"):
            seq2 = load_sequence(cfg.seq2, "seq2")
    check_same_object(seq1, seq2, same_scale=not cfg.estimate_scale)
    plugs = (registry.make("generator", *chosen["generator"]), registry.make("verifier", *chosen["verifier"]),
             {name: registry.make("refiner", name, opts) for name, opts in refiners.items()})
    scale_record = None
    with clock.stage("register (search, refine, verify)"):
        if cfg.estimate_scale:  # from here on sequence 2 is in sequence 1's units
            unit = outputs.resolve_unit(seq1, seq1, cfg.unit)
            result, _, seq2, scale_record = register_with_scale(seq1, seq2, *plugs)
        else:
            unit = outputs.resolve_unit(seq1, seq2, cfg.unit)
            result = register_sequences(seq1, seq2, *plugs)
    no_bop = outputs.why_no_bop(seq1, seq2, unit)
    overlap = overlap_fraction(seq1, seq2, result.best.T_seq1_seq2)
    if overlap < cfg.min_overlap:
        raise NerfregError(f"the two surfaces do not overlap: under the best hypothesis only {100 * overlap:.1f}% of sequence 2's "
                           f"surface meets sequence 1's (need {100 * cfg.min_overlap:.0f}%); the sequences must see a common band "
                           "of the object (e.g. elevations near the equator from both sides). Nothing written.")
    plugins: dict[str, Any] = {kind: _describe(registry.get(kind, name), opts) for kind, (name, opts) in chosen.items()}
    plugins["refiners"] = [_describe(registry.get("refiner", name), opts) for name, opts in refiners.items()]
    plugins["refiner"] = next(r for r in plugins["refiners"] if r["name"] == result.best.refiner)  # the one that won
    reg = outputs.registration_dict(result, seq1, seq2, plugins, unit, scale_record)
    with atomic_output_dir(cfg.out, overwrite=cfg.overwrite) as tmp:
        with clock.stage("merged model"):
            pts, nrm = outputs.merged_cloud(seq1, seq2, result.best.T_seq1_seq2)
            write_point_ply(tmp / "merged.ply", pts, nrm, np.full_like(pts, 0.7))
            mesh = outputs.poisson_mesh(pts, nrm, outputs.POISSON_VOXEL_FRAC * seq1.diameter)
            (tmp / "merged_mesh.ply").write_bytes(mesh.export(file_type="ply"))
        reg["T_seq1_obj"] = outputs.model_placement(mesh).tolist()
        with clock.stage("symmetries"):
            syms = outputs.model_symmetries(mesh, seq1.diameter)
            reg["symmetries"] = outputs.symmetry_record(syms, result.best.T_seq1_seq2)
        with clock.stage("labels (render, check)"):
            labels = outputs.object_labels(seq1, seq2, result.best.T_seq1_seq2, mesh)
            qa = label_qa_rows(labels)
            flagged = sum(r["flagged"] for r in qa)
            write_json_atomic(tmp / "labels_qa.json", {"rule": label_rule(), "frames": len(qa), "flagged": flagged, "images": qa})
            reg["labels_qa"] = {"file": "labels_qa.json", "frames": len(qa), "flagged": flagged}
        reg["bop"], reg["bop_not_written"] = ("bop", None) if no_bop is None else (None, no_bop)
        if no_bop is None:
            with clock.stage("BOP labels"):
                outputs.write_bop_labels(tmp, seq1, seq2, mesh, labels, syms, unit)
        with clock.stage("report"):
            report.write_report(tmp / "report.png", seq1, seq2, result, mesh)
            report.write_report_html(tmp, reg, [seq1, seq2], labels, qa)
        reg["stages"] = clock.rows
        write_json_atomic(tmp / "registration.json", reg)
    verdict = "confident" if reg["confident"] else "NOT confident"
    scaled = f", sequence 2 scaled by {reg['scale']:.5g}" if scale_record else ""
    print(f"wrote {cfg.out}: best hypothesis {reg['source']} (score {reg['score']:.4f}, {verdict}{scaled}); see {cfg.out / 'report.html'}")
    print(f"labels: {flagged} of {len(qa)} frames flagged (model and input mask disagree; see labels_qa.json)")
    print(f"stages: {clock.line()}")
    if no_bop is not None:
        print(f"{PROG}: warning: no BOP labels written: {no_bop}", file=sys.stderr)
    precision = precision_line(reg["score_details"])
    if precision:
        print(precision)
    if not reg["confident"]:
        print(f"{PROG}: the verifier does not trust this registration (registration.json says \"confident\": false)", file=sys.stderr)
        return ExitCode.NOT_CONFIDENT
    return ExitCode.OK


def main(argv: list[str] | None = None) -> int:
    from nerfreg_ns.cli import run_cli

    return run_cli(PROG, parse, run, argv)


def entrypoint() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entrypoint()
