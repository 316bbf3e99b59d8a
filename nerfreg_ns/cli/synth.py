"""nerfreg-synth: render a registration case (two sequences, both formats, truth) from a mesh."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from nerfreg_ns.cli import run_cli
from nerfreg_ns.geometry.units import Unit


@dataclass
class SynthConfig:
    """Render a registration case: seq1 from the upper hemisphere, seq2 from the lower one, each
    in its own frame, written as nerfstudio datasets and a BOP dataset, with truth.json."""

    out: Path
    """Output folder (must not exist unless --overwrite)."""
    mesh: Optional[Path] = None
    """Mesh file (STL/PLY/OBJ/OFF/GLB). Default: the embedded procedural part."""
    unit: Unit = "mm"
    """Unit of the mesh file; sequences keep it, the BOP copy is converted to mm."""
    name: Optional[str] = None
    """Object name recorded in truth.json (default: the mesh file's stem)."""
    views: int = 60
    """Views per sequence."""
    width: int = 128
    height: int = 128
    elevation1: tuple[float, float] = (10.0, 80.0)
    """Elevation band of seq1 (degrees, object frame)."""
    elevation2: tuple[float, float] = (-80.0, -10.0)
    """Elevation band of seq2 (degrees, object frame)."""
    seed: int = 0
    rot_noise_deg: float = 0.0
    """Noise on the recorded camera rotations (max degrees, random axis)."""
    trans_noise: float = 0.0
    """Noise on the recorded camera positions (RMS, fraction of the diameter)."""
    principal_jitter: float = 0.0
    """Per-image random shift of the principal point (pixels), as in T-LESS."""
    obj_id: int = 1
    """BOP object id."""
    overwrite: bool = False


def main(cfg: SynthConfig) -> int:
    from nerfreg_ns.data.mesh import load_mesh
    from nerfreg_ns.data.procedural import DEFAULT_OBJECT_NAME, make_default_part
    from nerfreg_ns.data.synth import SynthOptions, make_case
    from nerfreg_ns.io_utils import atomic_output_dir

    if cfg.mesh is None:
        mesh, name = make_default_part(), cfg.name or DEFAULT_OBJECT_NAME
    else:
        mesh, name = load_mesh(cfg.mesh), cfg.name or cfg.mesh.stem
    opts = SynthOptions(
        views=cfg.views, width=cfg.width, height=cfg.height, elevation1=cfg.elevation1,
        elevation2=cfg.elevation2, seed=cfg.seed, rot_noise_deg=cfg.rot_noise_deg,
        trans_noise=cfg.trans_noise, principal_jitter=cfg.principal_jitter, obj_id=cfg.obj_id,
    )
    with atomic_output_dir(cfg.out, overwrite=cfg.overwrite) as tmp:
        truth = make_case(mesh, name, cfg.unit, opts, tmp)
    print(f"wrote {cfg.out}: {name}, diameter {truth['object']['diameter']:.2f} {cfg.unit}, "
          f"{cfg.views} views per sequence; look at {cfg.out / 'preview.png'}")
    return 0


def entrypoint() -> None:
    sys.exit(run_cli("nerfreg-synth", SynthConfig, main))


if __name__ == "__main__":
    entrypoint()
