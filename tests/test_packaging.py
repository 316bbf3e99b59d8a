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


def test_every_third_party_import_is_a_declared_dependency():
    declared = {_canonical(re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0])
                for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    imported: dict[str, str] = {}
    for path in (ROOT / "nerfreg_ns").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "nerfreg_ns":
                    imported.setdefault(top, str(path.relative_to(ROOT)))
    dists = packages_distributions()
    missing = {top: where for top, where in imported.items()
               if not any(_canonical(d) in declared for d in dists.get(top, [top]))}
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"
