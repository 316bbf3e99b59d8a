"""Console scripts, one module each; `run_cli` parses, runs, and turns a NerfregError into one
line and its exit code."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, TypeVar, Union

from nerfreg_ns.errors import ExitCode, NerfregError

C = TypeVar("C")


def quiet_library_warnings() -> None:
    """Hides torch/nerfstudio deprecation chatter, so that an error is the one line a user reads."""
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"(torch|nerfstudio|torchvision)(\.|$)")


def run_cli(prog: str, config: Union[type[C], Callable[[list[str]], C]], main: Callable[[C], int | None],
            args: list[str] | None = None) -> int:
    """Parses the command line (with tyro for a config class, or with `config(args)` for a
    command that builds its own parser), runs `main`, and maps a NerfregError to its exit code."""
    import tyro

    quiet_library_warnings()
    argv = list(sys.argv[1:] if args is None else args)
    try:
        parsed = tyro.cli(config, prog=prog, args=argv) if isinstance(config, type) else config(argv)
        return int(main(parsed) or ExitCode.OK)
    except NerfregError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return int(e.exit_code)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; nothing partial was kept", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)


def console_script(name: str) -> str:
    """The path of a console script (`ns-train`, `nerfreg-register`, ...) of this environment."""
    return str(Path(sys.executable).parent / name)


def existing_file(path: Path, what: str) -> Path:
    if not Path(path).is_file():
        raise NerfregError(f"{what} not found: {path}")
    return Path(path)
