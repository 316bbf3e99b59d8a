"""`truth.json`: the known answer of a registration case, and its reader.

T_seq1_seq2 maps sequence-2 points into sequence 1 (in the sequences' units); T_seq1_obj and
T_seq2_obj place the object model in each sequence's frame; the model path is relative to the
truth file's folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nerfreg_ns.errors import NerfregError
from nerfreg_ns.geometry.transforms import check_rigid, invert
from nerfreg_ns.io_utils import read_json

TRUTH_FORMAT = "nerfreg-truth/1"


@dataclass
class Truth:
    path: Path
    case_id: str
    object_name: str
    diameter: float
    unit: str
    model_path: Path
    T_seq1_seq2: np.ndarray
    T_seq1_obj: np.ndarray

    @property
    def T_seq2_obj(self) -> np.ndarray:
        return invert(self.T_seq1_seq2) @ self.T_seq1_obj


def truth_dict(case_id: str, name: str, diameter: float, unit: str, model_rel: str,
               T_seq1_obj: np.ndarray, T_seq2_obj: np.ndarray, extra: dict | None = None) -> dict:
    return {
        "format": TRUTH_FORMAT,
        "case_id": case_id,
        "object": {"name": name, "diameter": float(diameter), "unit": unit, "model": model_rel},
        "T_seq1_seq2": (T_seq1_obj @ invert(T_seq2_obj)).tolist(),
        "T_seq1_obj": np.asarray(T_seq1_obj).tolist(),
        "T_seq2_obj": np.asarray(T_seq2_obj).tolist(),
        **(extra or {}),
    }


def read_truth(path: Path) -> Truth:
    path = Path(path)
    data = read_json(path, "truth file")
    if not isinstance(data, dict) or data.get("format") != TRUTH_FORMAT:
        raise NerfregError(f"{path}: not a nerfreg truth file (expected \"format\": \"{TRUTH_FORMAT}\")")
    try:
        obj = data["object"]
        truth = Truth(
            path=path,
            case_id=str(data["case_id"]),
            object_name=str(obj["name"]),
            diameter=float(obj["diameter"]),
            unit=str(obj["unit"]),
            model_path=path.parent / obj["model"],
            T_seq1_seq2=check_rigid(data["T_seq1_seq2"], f"{path} T_seq1_seq2"),
            T_seq1_obj=check_rigid(data["T_seq1_obj"], f"{path} T_seq1_obj"),
        )
    except KeyError as e:
        raise NerfregError(f"{path}: missing key {e}") from None
    if not truth.model_path.is_file():
        raise NerfregError(f"{path}: its model file is missing: {truth.model_path}")
    return truth
