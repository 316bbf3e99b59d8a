"""Atomic outputs: every file and folder is written under a temporary name, then renamed.

A reader (or a crash) never sees a half-written output: either the old state or the new one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from nerfreg_ns.errors import NerfregError


def _to_jsonable(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def dumps_json(data: Any) -> str:
    return json.dumps(data, indent=2, default=_to_jsonable) + "\n"


def write_json_atomic(path: Path, data: Any) -> None:
    """Writes `data` as indented JSON to `path` through a temporary file in the same folder."""
    write_bytes_atomic(path, dumps_json(data).encode())


def write_bytes_atomic(path: Path, payload: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_json(path: Path, what: str = "JSON file") -> Any:
    """Reads a JSON file, turning a missing or malformed file into a one-line NerfregError."""
    path = Path(path)
    if not path.is_file():
        raise NerfregError(f"{what} not found: {path}")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise NerfregError(f"{what} is not valid JSON: {path} ({e})") from None


@contextlib.contextmanager
def atomic_output_dir(final: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yields a temporary folder beside `final`; renames it to `final` only if the block succeeds.

    On any exception the temporary folder is removed and `final` is left as it was.
    """
    final = Path(final)
    if final.exists() and not overwrite:
        raise NerfregError(f"output folder already exists: {final} (pass --overwrite to replace it)")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():
        trash = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, trash)
        os.replace(tmp, final)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, final)
