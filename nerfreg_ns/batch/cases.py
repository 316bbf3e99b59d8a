"""The objects of a batch: case folders (`seq1/`, `seq2/` as nerfreg-synth writes them) or a BOP
dataset's onboarding pairs (`obj_X_up`, `obj_X_down`, imported as nerfreg-import-bop does).
Everything is checked before anything is written."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from nerfreg_ns.errors import NerfregError


@dataclass(frozen=True)
class Case:
    """One object of the batch: its name, BOP object id, and its two sequences' folders (which
    an onboarding case only has once imported); `truth` when the case knows its answer."""

    name: str
    obj_id: int
    seq1: Path
    seq2: Path
    truth: Path | None = None
    onboarding: Path | None = None
    """The BOP dataset root an onboarding case is imported from."""


def _check_sequence(folder: Path, case: Path, seq: str) -> None:
    if not (folder / seq).is_dir():
        raise NerfregError(f"{case}: no {seq}/ (a case folder holds seq1/ and seq2/, as nerfreg-synth writes them)")
    if not (folder / seq / "transforms.json").is_file():
        raise NerfregError(f"{case / seq}: no transforms.json (not a nerfstudio dataset)")


def find_cases(cases_dir: Path) -> list[Case]:
    """Every subfolder of `cases_dir` is an object; ids 1, 2, ... in name order."""
    cases_dir = Path(cases_dir)
    if not cases_dir.is_dir():
        raise NerfregError(f"--cases folder not found: {cases_dir}")
    folders = sorted(p for p in cases_dir.iterdir() if p.is_dir())
    if not folders:
        raise NerfregError(f"{cases_dir}: no case folders (one per object, each with seq1/ and seq2/)")
    out = []
    for obj_id, folder in enumerate(folders, start=1):
        for seq in ("seq1", "seq2"):
            _check_sequence(folder, folder, seq)
        truth = folder / "truth.json"
        out.append(Case(folder.name, obj_id, folder / "seq1", folder / "seq2", truth if truth.is_file() else None))
    return out


def onboarding_cases(bop_root: Path, split: str, work: Path) -> list[Case]:
    """Every `obj_X_up` with its `obj_X_down` in `bop_root/split`; each is imported into
    `work/NAME` when the batch runs (`import_case`)."""
    split_dir = Path(bop_root) / split
    if not split_dir.is_dir():
        raise NerfregError(f"BOP split folder not found: {split_dir}")
    ups = sorted(p for p in split_dir.iterdir() if p.is_dir() and re.fullmatch(r"obj_\d{6}_up", p.name))
    if not ups:
        raise NerfregError(f"{split_dir}: no obj_XXXXXX_up folders (the onboarding layout)")
    out = []
    for up in ups:
        obj_id = int(up.name[4:10])
        if not (split_dir / f"obj_{obj_id:06d}_down").is_dir():
            raise NerfregError(f"{split_dir}: obj_{obj_id:06d}_up has no obj_{obj_id:06d}_down")
        folder = work / f"obj_{obj_id:06d}"
        out.append(Case(folder.name, obj_id, folder / "seq1", folder / "seq2", folder / "truth.json", Path(bop_root)))
    return out


def import_case(case: Case, split: str) -> Case:
    """An onboarding case imported into its folder (once: a complete import is kept)."""
    if case.onboarding is None or (case.seq1.parent / "import_done").is_file():
        return case
    from nerfreg_ns.data.import_bop import import_onboarding
    from nerfreg_ns.io_utils import atomic_output_dir

    with atomic_output_dir(case.seq1.parent, overwrite=True) as tmp:
        import_onboarding(case.onboarding, case.obj_id, tmp, split)
        (tmp / "import_done").write_text("")
    return case


def has_truth(case: Case) -> bool:
    return case.truth is not None and case.truth.is_file()
