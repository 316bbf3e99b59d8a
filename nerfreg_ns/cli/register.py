"""nerfreg-register: two trained nerfreg-feature runs -> T_seq1_seq2, merged model, BOP labels.

    nerfreg-register --seq1 RUN1/config.yml --seq2 RUN2/config.yml --generator silhouette-search \\
        --verifier combined --refiner silhouette-icp,icp,none --out DIR

Plugins are chosen by name; each plugin's options appear as `--NAME.OPTION` (e.g.
`--icp.iterations 30`), and a YAML file (`--config configs/default.yaml`) can set both.
`--refiner A,B` refines every hypothesis with each of A and B and lets the verifier choose.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any, Optional

from nerfreg_ns.errors import EXIT_NOT_CONFIDENT, NerfregError

DEFAULTS = {"generator": "silhouette-search", "verifier": "combined", "refiner": "silhouette-icp,icp,none"}


def refiner_names(value: str) -> list[str]:
    """`--refiner A,B` -> [A, B]: several refiners, each applied to every hypothesis."""
    names = [n.strip() for n in value.split(",") if n.strip()]
    if not names:
        raise NerfregError("--refiner needs at least one name")
    if len(set(names)) != len(names):
        raise NerfregError(f"--refiner names a refiner twice: {value}")
    return names


def _describe(entry, options) -> dict[str, Any]:
    """A chosen plugin as registration.json records it: name, providing plugin, options."""
    return {"name": entry.name, "plugin": entry.plugin, "options": dataclasses.asdict(options)}


def _option_field(kind: str, name: str, taken: set[str]) -> str:
    key = name.replace("-", "_")
    return f"{kind}_{key}" if key in taken else key


def build_config_class(registry) -> tuple[type, dict[tuple[str, str], str]]:
    """A dataclass for tyro: the fixed options plus one nested group per registered plugin."""
    fields: list[tuple[str, Any, Any]] = [
        ("seq1", Optional[Path], dataclasses.field(default=None)),
        ("seq2", Optional[Path], dataclasses.field(default=None)),
        ("out", Optional[Path], dataclasses.field(default=None)),
        ("generator", str, dataclasses.field(default=DEFAULTS["generator"])),
        ("verifier", str, dataclasses.field(default=DEFAULTS["verifier"])),
        ("refiner", str, dataclasses.field(default=DEFAULTS["refiner"])),
        ("config", Optional[Path], dataclasses.field(default=None)),
        ("list_plugins", bool, dataclasses.field(default=False)),
        ("overwrite", bool, dataclasses.field(default=False)),
        ("min_overlap", float, dataclasses.field(default=0.05)),
    ]
    taken = {f[0] for f in fields}
    where: dict[tuple[str, str], str] = {}
    for kind, entries in registry.entries.items():
        for name, entry in sorted(entries.items()):
            attr = _option_field(kind, name, taken)
            taken.add(attr)
            where[(kind, name)] = attr
            fields.append((attr, entry.config_class, dataclasses.field(default_factory=entry.config_class)))
    cls = dataclasses.make_dataclass("RegisterConfig", fields)
    cls.__doc__ = ("Register two nerfreg-feature runs: pose hypotheses from a generator, refined by a refiner, "
                   "chosen by a verifier. Writes registration.json, merged.ply, merged_mesh.ply, BOP labels, report.png.")
    return cls, where


def _apply_config_file(cls: type, where: dict, path: Path) -> Any:
    """Defaults from a YAML file: top-level generator/verifier/refiner and `options: {NAME: {...}}`."""
    import yaml

    if not path.is_file():
        raise NerfregError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise NerfregError(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from None
    base = cls()
    values = {k: data[k] for k in ("generator", "verifier", "refiner") if k in data}
    by_name = {name: attr for (kind, name), attr in where.items()}
    for name, opts in (data.get("options") or {}).items():
        if name not in by_name:
            raise NerfregError(f"{path}: options for unknown plugin '{name}' (known: {', '.join(sorted(by_name))})")
        group = getattr(base, by_name[name])
        try:
            values[by_name[name]] = dataclasses.replace(group, **{k: tuple(v) if isinstance(v, list) else v for k, v in opts.items()})
        except TypeError as e:
            raise NerfregError(f"{path}: bad options for '{name}': {e}") from None
    return dataclasses.replace(base, **values)


def list_plugins(registry) -> str:
    lines = []
    for kind, entries in registry.entries.items():
        lines.append(f"{kind}s:")
        for name, e in sorted(entries.items()):
            doc = (e.config_class.__doc__ or "").strip().splitlines()[0]
            lines.append(f"  {name:<14} {doc}  [{e.plugin}]")
    for name, why in registry.broken.items():
        lines.append(f"broken plugin {name}: {why}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import tyro

    from nerfreg_ns.cli import quiet_library_warnings
    from nerfreg_ns.plugins import load_registry

    quiet_library_warnings()
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = "nerfreg-register"
    try:
        registry = load_registry()
        cls, where = build_config_class(registry)
        default = cls()
        if "--config" in argv and argv.index("--config") + 1 < len(argv):
            default = _apply_config_file(cls, where, Path(argv[argv.index("--config") + 1]))
        cfg = tyro.cli(cls, prog=prog, args=argv, default=default)
        if cfg.list_plugins:
            print(list_plugins(registry))
            return 0
        for name, why in registry.broken.items():
            print(f"{prog}: warning: plugin '{name}' failed to load: {why}", file=sys.stderr)
        return run(cfg, registry, where)
    except NerfregError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return e.exit_code


def run(cfg, registry, where, sequences=None) -> int:
    """Registers, writes `cfg.out` and returns the exit code; `sequences` (seq1, seq2) may be
    given already loaded (benchmarks compare several plugin sets on the same runs)."""
    import numpy as np

    from nerfreg_ns.io_utils import atomic_output_dir, write_json_atomic
    from nerfreg_ns.register import outputs
    from nerfreg_ns.register.inputs import check_same_object, load_sequence
    from nerfreg_ns.register.run import overlap_fraction, register_sequences

    if cfg.seq1 is None or cfg.seq2 is None or cfg.out is None:
        raise NerfregError("--seq1, --seq2 and --out are required")
    chosen = {kind: registry.get(kind, getattr(cfg, kind)) for kind in ("generator", "verifier")}
    options = {kind: getattr(cfg, where[(kind, e.name)]) for kind, e in chosen.items()}
    refiners = [registry.get("refiner", name) for name in refiner_names(cfg.refiner)]
    refiner_options = {e.name: getattr(cfg, where[("refiner", e.name)]) for e in refiners}
    if cfg.out.exists() and not cfg.overwrite:
        raise NerfregError(f"output folder already exists: {cfg.out} (pass --overwrite to replace it)")
    seq1, seq2 = sequences or (load_sequence(cfg.seq1, "seq1"), load_sequence(cfg.seq2, "seq2"))
    check_same_object(seq1, seq2)
    objs = {kind: e.factory(options[kind]) for kind, e in chosen.items()}
    result = register_sequences(seq1, seq2, objs["generator"], objs["verifier"],
                                {e.name: e.factory(refiner_options[e.name]) for e in refiners})
    overlap = overlap_fraction(seq1, seq2, result.best.T_seq1_seq2)
    if overlap < cfg.min_overlap:
        raise NerfregError(f"the two surfaces do not overlap: under the best hypothesis only {100 * overlap:.1f}% of sequence 2's "
                           f"surface meets sequence 1's (need {100 * cfg.min_overlap:.0f}%); the sequences must see a common band "
                           "of the object (e.g. elevations near the equator from both sides). Nothing written.")
    plugins = {kind: _describe(e, options[kind]) for kind, e in chosen.items()}
    plugins["refiners"] = [_describe(e, refiner_options[e.name]) for e in refiners]
    plugins["refiner"] = next(r for r in plugins["refiners"] if r["name"] == result.best.refiner)  # the one that won
    reg = outputs.registration_dict(result, seq1, seq2, plugins)
    with atomic_output_dir(cfg.out, overwrite=cfg.overwrite) as tmp:
        pts, nrm = outputs.merged_cloud(seq1, seq2, result.best.T_seq1_seq2)
        from nerfreg_ns.nerf.export import write_point_ply

        write_point_ply(tmp / "merged.ply", pts, nrm, np.full_like(pts, 0.7))
        mesh = outputs.poisson_mesh(pts, nrm)
        (tmp / "merged_mesh.ply").write_bytes(mesh.export(file_type="ply"))
        reg["T_seq1_obj"] = outputs.write_bop_labels(tmp, seq1, seq2, result.best.T_seq1_seq2, mesh).tolist()
        write_json_atomic(tmp / "registration.json", reg)
        outputs.write_report(tmp / "report.png", seq1, seq2, result, mesh)
    verdict = "confident" if reg["confident"] else "NOT confident"
    print(f"wrote {cfg.out}: best hypothesis {reg['source']} (score {reg['score']:.4f}, {verdict}); see {cfg.out / 'report.png'}")
    if not reg["confident"]:
        print("nerfreg-register: the verifier does not trust this registration (registration.json says \"confident\": false)", file=sys.stderr)
        return EXIT_NOT_CONFIDENT
    return 0


def entrypoint() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entrypoint()
