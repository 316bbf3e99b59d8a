"""What registration needs from a run, saved in the run when its training ends.

Loading a run for registration used to set its dataset up again (visual hull, frame check) and
render every training view; the surface is the same every time, so the trainer writes it once
(`SURFACE_FILE` beside config.yml) and `nerfreg-register` reads it. A file written at another
step than the run's newest checkpoint, or by another version, is ignored (the run is then
loaded and rendered as before), so a resumed or older run is never read stale.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from nerfreg_ns.io_utils import write_bytes_atomic

SURFACE_FILE = "nerfreg_surface.npz"
VERSION = 1


def latest_step(run_dir: Path) -> Optional[int]:
    """The step of the run's newest checkpoint (nerfstudio's `step-NNNNNNNNN.ckpt`), None without one."""
    steps = [int(m.group(1)) for p in (Path(run_dir) / "nerfstudio_models").glob("step-*.ckpt")
             if (m := re.fullmatch(r"step-(\d+)\.ckpt", p.name))]
    return max(steps) if steps else None


def keys_trained(pipeline, step: int) -> bool:
    """Whether a run stopped at `step` trained its keys and query encoder (reached phase 2)."""
    return step > int(getattr(pipeline.config, "nerf_steps", 0))


@dataclass
class SavedSurface:
    """A run's exported surface (`export.SurfaceExport`, input frame and units) and what the
    registration inputs need besides: the dataset folder (absolute, as training resolved it), the
    frames training left out or flagged (by image path relative to the dataset), whether keys
    were trained, the query turns."""

    surface: "object"
    data: Path
    step: int
    keys_trained: bool
    query_turns: int
    frame_flagged: dict[str, bool]


def relative_name(path: Path, root: Path) -> str:
    """A frame's image path relative to its dataset folder (absolute when outside it)."""
    path, root = Path(path).resolve(), Path(root).resolve()
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def frame_flags(pipeline) -> dict[str, bool]:
    """The frames a loaded run trained on (image path relative to its dataset), each True where
    training found its mask at odds with the others (the dataparser's `frame_flagged`)."""
    outputs = pipeline.datamanager.train_dataparser_outputs
    data = Path(pipeline.datamanager.config.data)
    flagged = outputs.metadata.get("frame_flagged")
    return {relative_name(f, data): bool(flagged[i]) if flagged is not None else False
            for i, f in enumerate(outputs.image_filenames)}


def save_surface(pipeline, run_dir: Path, step: int) -> Path:
    """Exports the run's surface and writes it, with the registration inputs' other needs, to
    `run_dir/SURFACE_FILE` (atomically)."""
    from nerfreg_ns.nerf.export import export_surface
    from nerfreg_ns.nerf.probe import query_rotations

    surface = export_surface(pipeline, step)
    data = Path(pipeline.datamanager.config.data).resolve()
    frames = frame_flags(pipeline)
    trained = surface.keys is not None
    info = {"version": VERSION, "step": int(step), "data": str(data), "keys_trained": trained,
            "query_turns": query_rotations(pipeline),
            "meta": surface.meta, "frame_flagged": frames}
    arrays = {"points": surface.points, "normals": surface.normals, "colors": surface.colors.astype(np.float32),
              "spread": surface.spread}
    if surface.boundary is not None:
        arrays["boundary"] = surface.boundary
    if trained:
        arrays["keys"] = surface.keys
    buf = io.BytesIO()
    np.savez_compressed(buf, info=np.frombuffer(json.dumps(info).encode(), dtype=np.uint8), **arrays)
    path = Path(run_dir) / SURFACE_FILE
    write_bytes_atomic(path, buf.getvalue())
    return path


def read_saved_surface(config_path: Path) -> Optional[SavedSurface]:
    """The surface saved in the run of `config_path`, or None when there is none, or it was
    written at another step than the newest checkpoint's or by another version."""
    from nerfreg_ns.nerf.export import SurfaceExport

    run_dir = Path(config_path).parent
    path = run_dir / SURFACE_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path) as z:
            info = json.loads(bytes(z["info"]).decode())
            if info.get("version") != VERSION or info.get("step") != latest_step(run_dir):
                return None
            arrays = {k: z[k] for k in z.files if k != "info"}
        surface = SurfaceExport(points=arrays["points"], normals=arrays["normals"], keys=arrays.get("keys"),
                                colors=arrays["colors"], meta=info.get("meta", {}), spread=arrays["spread"],
                                boundary=arrays.get("boundary"))
        return SavedSurface(surface=surface, data=Path(info["data"]), step=int(info["step"]),
                            keys_trained=bool(info["keys_trained"]), query_turns=int(info["query_turns"]),
                            frame_flagged=dict(info["frame_flagged"]))
    except Exception:  # unreadable in any way (truncated, corrupt, another layout): it only saves time, render the run
        return None
