"""nerfreg-export: a trained nerfreg-feature run -> surface cloud (PLY + keys .npz) and mesh,
in the input dataset's own frame and units."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from nerfreg_ns.cli import run_cli


@dataclass
class ExportConfig:
    """Export the surface (points, normals, keys) and a mesh of a nerfreg-field or nerfreg-feature run (keys only from the latter)."""

    load_config: Path
    """The run's config.yml."""
    out: Path
    """Output folder: surface.ply, surface.npz, mesh.ply, export.json."""
    voxel_frac: float = 0.004
    """Merge points closer than this fraction of the object box."""
    overwrite: bool = False


def main(cfg: ExportConfig) -> int:
    from nerfreg_ns.io_utils import atomic_output_dir
    from nerfreg_ns.nerf.export import export_mesh, export_surface, load_run, write_export

    pipeline, step = load_run(cfg.load_config)
    surface = export_surface(pipeline, step, cfg.voxel_frac)
    mesh = export_mesh(pipeline)
    with atomic_output_dir(cfg.out, overwrite=cfg.overwrite) as tmp:
        write_export(tmp, surface, mesh, {"run": str(cfg.load_config), "step": step,
                                          "dataset": str(pipeline.datamanager.config.data)})
    keys = f"{surface.keys.shape[1]}-d keys" if surface.keys is not None else "no keys (not trained)"
    print(f"wrote {cfg.out}: {len(surface.points)} surface points with {keys}, "
          f"mesh of {len(mesh.faces)} faces (input frame and units)")
    return 0


def entrypoint() -> None:
    sys.exit(run_cli("nerfreg-export", ExportConfig, main))


if __name__ == "__main__":
    entrypoint()
