"""nerfreg-synth: render a registration case (two sequences, both formats, truth) from a mesh."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

from nerfreg_ns.cli import run_cli
from nerfreg_ns.geometry.units import Unit


@dataclass
class SynthConfig:
    """Render a registration case: seq1 from the upper hemisphere, seq2 from the lower one, each
    in its own frame, written as nerfstudio datasets and a BOP dataset, with truth.json."""

    out: Path
    """Output folder (must not exist unless --overwrite)."""
    mesh: Optional[Path] = None
    """Mesh file (STL/PLY/OBJ/OFF/GLB). Default: the part that --part names."""
    part: Literal["default", "random"] = "default"
    """Without --mesh: `default` is the embedded part; `random` is procedural part number --seed
    (arms, brackets, plates, stands, flanges, blocks; 20 mm to 0.5 m)."""
    family: Optional[Literal["arm", "bracket", "plate", "stand", "flange", "block"]] = None
    """With --part random: this family instead of the one the seed picks."""
    size_mm: Optional[float] = None
    """With --part random: the part's largest side in mm instead of a random one."""
    unit: Unit = "mm"
    """Unit of the mesh file, or of the generated part (built in mm, converted); sequences keep
    it, the BOP copy is converted to mm."""
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
    capture: Literal["clean", "realistic"] = "clean"
    """Preset of the capture options below (each one given overrides it). `realistic`: object
    filling 45-75% of the frame, roll up to 10 deg, aim off by up to 5% of d, masks off by up to
    1 px with ragged edges, 5% of frames with a gross mask error, poses off by up to 0.5 deg and
    0.5% of d (RMS), principal points jittered by 2 px, a room light with highlights, a dark noisy
    background."""
    fill: Optional[tuple[float, float]] = None
    """Range of the object's size over the image's shorter side, per view (clean: 0.76)."""
    roll_deg: Optional[float] = None
    """Random camera roll, up to this many degrees."""
    lookat_jitter: Optional[float] = None
    """Cameras aim up to this fraction of the diameter off the object centre."""
    uneven: Optional[float] = None
    """Fraction of the views crowded into one 90-degree azimuth sector."""
    mask_error_px: Optional[float] = None
    """Masks grown or shrunk by up to this many pixels, with ragged edges."""
    bad_frames: Optional[float] = None
    """Fraction of frames given a gross mask error (a blob added or a piece missing)."""
    rot_noise_deg: Optional[float] = None
    """Noise on the recorded camera rotations (max degrees, random axis)."""
    trans_noise: Optional[float] = None
    """Noise on the recorded camera positions (RMS, fraction of the diameter)."""
    principal_jitter: Optional[float] = None
    """Per-image random shift of the principal point (pixels), as in T-LESS."""
    lighting: Optional[Literal["camera", "room"]] = None
    """Key light fixed to the camera, or fixed in the room (the flipped capture lit differently)."""
    specular: Optional[float] = None
    """Strength of specular highlights (0: matte)."""
    background: Optional[Literal["black", "noisy"]] = None
    """Black, or a dark noisy room around the object (masks still given)."""
    obj_id: int = 1
    """BOP object id."""
    overwrite: bool = False


def main(cfg: SynthConfig) -> int:
    from nerfreg_ns.data.capture import capture_options
    from nerfreg_ns.data.mesh import load_mesh
    from nerfreg_ns.data.parts import make_random_part
    from nerfreg_ns.data.procedural import DEFAULT_OBJECT_NAME, make_default_part
    from nerfreg_ns.errors import NerfregError
    from nerfreg_ns.geometry.units import mm_per_unit
    from nerfreg_ns.data.synth import SynthOptions, make_case
    from nerfreg_ns.io_utils import atomic_output_dir

    if cfg.mesh is not None:
        mesh, name = load_mesh(cfg.mesh), cfg.name or cfg.mesh.stem
    else:  # a generated part: built in mm
        if cfg.part == "random":
            mesh, info = make_random_part(cfg.seed, cfg.family, cfg.size_mm)
            name = cfg.name or info.name
        else:
            mesh, name = make_default_part(), cfg.name or DEFAULT_OBJECT_NAME
        mesh.apply_scale(1.0 / mm_per_unit(cfg.unit))
    capture = capture_options(
        cfg.capture, fill=cfg.fill, roll_deg=cfg.roll_deg, lookat_jitter=cfg.lookat_jitter, uneven=cfg.uneven,
        mask_error_px=cfg.mask_error_px, bad_frames=cfg.bad_frames, rot_noise_deg=cfg.rot_noise_deg,
        trans_noise=cfg.trans_noise, principal_jitter=cfg.principal_jitter, lighting=cfg.lighting,
        specular=cfg.specular, background=cfg.background,
    )
    if not 0 <= capture.bad_frames <= 1 or not 0 <= capture.uneven <= 1:
        raise NerfregError("--bad-frames and --uneven are fractions between 0 and 1")
    opts = SynthOptions(views=cfg.views, width=cfg.width, height=cfg.height, elevation1=cfg.elevation1,
                        elevation2=cfg.elevation2, seed=cfg.seed, obj_id=cfg.obj_id, capture=capture)
    with atomic_output_dir(cfg.out, overwrite=cfg.overwrite) as tmp:
        truth = make_case(mesh, name, cfg.unit, opts, tmp)
    print(f"wrote {cfg.out}: {name}, diameter {truth['object']['diameter']:.2f} {cfg.unit}, "
          f"{cfg.views} views per sequence; look at {cfg.out / 'preview.png'}")
    return 0


def entrypoint() -> None:
    sys.exit(run_cli("nerfreg-synth", SynthConfig, main))


if __name__ == "__main__":
    entrypoint()
