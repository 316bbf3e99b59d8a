"""Console scripts, one module each; `run_cli` turns a NerfregError into one line and an exit code."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, TypeVar

from nerfreg_ns.errors import NerfregError

C = TypeVar("C")


def quiet_library_warnings() -> None:
    """Hides torch/nerfstudio deprecation chatter, so that an error is the one line a user reads."""
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"(torch|nerfstudio|torchvision)(\.|$)")


def run_cli(prog: str, config_type: type[C], main: Callable[[C], int | None], args: list[str] | None = None) -> int:
    """Parses `config_type` with tyro, runs `main`, and maps a NerfregError to its exit code."""
    import tyro

    quiet_library_warnings()
    config = tyro.cli(config_type, prog=prog, args=args)
    try:
        return int(main(config) or 0)
    except NerfregError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; nothing partial was kept", file=sys.stderr)
        return 130


def existing_file(path: Path, what: str) -> Path:
    if not Path(path).is_file():
        raise NerfregError(f"{what} not found: {path}")
    return Path(path)
