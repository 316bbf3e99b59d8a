"""The package declares what it imports: a fresh install must not depend on luck."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


BATCH_ONLY = ("nerfreg_ns/batch/", "nerfreg_ns/cli/batch.py")
"""Modules that may import the `batch` extra's packages (ray): nerfreg-batch's own."""


def test_every_third_party_import_is_a_declared_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = lambda deps: {_canonical(re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0]) for d in deps}  # noqa: E731
    core, batch = names(project["dependencies"]), names(project["optional-dependencies"]["batch"])
    imported: dict[str, set[str]] = {}
    for path in (ROOT / "nerfreg_ns").rglob("*.py"):
        rel = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text())):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
            for name in mods:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "nerfreg_ns":
                    imported.setdefault(top, set()).add(rel)
    dists = packages_distributions()
    missing = {}
    for top, where in imported.items():
        dist = {_canonical(d) for d in dists.get(top, [top])}
        if dist & core:
            continue
        outside = sorted(w for w in where if not w.startswith(BATCH_ONLY))
        if not (dist & batch) or outside:
            missing[top] = outside or sorted(where)
    assert not missing, f"imported but not declared in pyproject.toml (ray only in nerfreg-batch's modules): {missing}"
