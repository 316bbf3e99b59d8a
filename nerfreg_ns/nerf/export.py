"""Export a trained nerfreg-feature run in the input dataset's own frame and units.

The surface cloud comes from rendering every training view (expected depth where the object
mask and the accumulation agree), with normals from the density gradient and keys from the key
head; the mesh from marching cubes on the density grid. nerfstudio's dataparser centring and
scaling are undone: p_input = T^-1 (p_ns / scale).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from rich.progress import track

from nerfreg_ns.errors import NerfregError
from nerfreg_ns.geometry.points import voxel_unique
from nerfreg_ns.geometry.transforms import apply, invert, rotate
from nerfreg_ns.io_utils import write_bytes_atomic, write_json_atomic
from nerfreg_ns.nerf.saved_surface import keys_trained


FREE_SPACE_FRAC = 0.25
"""Exported points that more than this fraction of the views looking at them see through are
floaters, not surface (`seen_through`)."""


@dataclass
class SurfaceExport:
    """Points (N, 3), unit normals (N, 3), keys (N, E) (None: not trained), colours (N, 3) in [0, 1], input frame;
    spread (N,): depth between 25% and 75% of each point's ray opacity, input units (large where
    the field holds fog rather than a surface, e.g. a cavity no view resolved); boundary (N, 3):
    each point moved along its view ray to the object's edge (`boundary_points`; None in
    surfaces saved before it existed)."""

    points: np.ndarray
    normals: np.ndarray
    keys: Optional[np.ndarray]
    colors: np.ndarray
    meta: dict
    spread: np.ndarray
    boundary: Optional[np.ndarray] = None


METHODS = ("nerfreg-feature", "nerfreg-field")
"""The methods whose runs nerfreg reads (the same model; nerfreg-field stops before the keys)."""


def _method_name(config_path: Path) -> str:
    """The `method_name` line of a nerfstudio config.yml, read without instantiating anything."""
    for line in config_path.read_text(errors="replace").splitlines():
        if line.startswith("method_name:"):
            return line.split(":", 1)[1].strip().strip("'\"")
    raise NerfregError(f"{config_path} is not a nerfstudio run config (no method_name)")


def check_run(config_path: Path) -> Path:
    """A run config nerfreg can read, or a clear error for a missing or foreign one (read as text:
    other methods' configs may need downloads or a GPU to load)."""
    config_path = Path(config_path)
    if not config_path.is_file():
        raise NerfregError(f"run config not found: {config_path}")
    method = _method_name(config_path)
    if method not in METHODS:
        raise NerfregError(f"{config_path} is a '{method}' run, not nerfreg-feature or nerfreg-field: nerfreg cannot read it")
    return config_path


def load_run(config_path: Path, require_features: bool = False):
    """Loads a run's pipeline for inference; a clear error for a missing or foreign config, or
    (`require_features`) for a run whose keys were never trained."""
    from nerfstudio.utils.eval_utils import eval_setup

    import nerfreg_ns.nerf  # noqa: F401  (checkpoint allow-list)

    config_path = check_run(config_path)
    _, pipeline, _, step = eval_setup(config_path, test_mode="inference")
    model = pipeline.model
    if not hasattr(model, "key_head") or not hasattr(pipeline, "render_surface"):
        raise NerfregError(f"{config_path} is not a nerfreg-feature run (no key head)")
    if require_features and not keys_trained(pipeline, step):
        raise NerfregError(keys_missing(config_path, step, pipeline.config.nerf_steps))
    pipeline.eval()
    return pipeline, step


def keys_command(run_dir: str, nerf_steps) -> str:
    """The command that trains a run's keys and query encoder on top of its field."""
    from nerfreg_ns.nerf.config import EMBED_STEPS

    return (f"`ns-train nerfreg-feature --data DATASET --load-dir {run_dir}/nerfstudio_models --pipeline.nerf-steps "
            f"{nerf_steps} --max-num-iterations {EMBED_STEPS}`")


def keys_missing(config_path: Path, step: int, nerf_steps: int) -> str:
    """What to do about a run without trained keys (one message for every place that needs them)."""
    return (f"{config_path} stopped at step {step}, before its keys and query encoder were trained (steps {nerf_steps} on; "
            f"nerfreg-field runs stop before them): train them on top of its field with "
            f"{keys_command(str(Path(config_path).parent), nerf_steps)}")


def ns_to_input(pipeline) -> tuple[np.ndarray, float]:
    """nerfstudio's dataparser transform: (T (4, 4) rigid, scale) with p_ns = scale * T p_input."""
    out = pipeline.datamanager.train_dataparser_outputs
    T = np.eye(4)
    T[:3, :] = out.dataparser_transform.cpu().numpy()
    return T, float(out.dataparser_scale)


@torch.no_grad()
def export_surface(pipeline, step: int, voxel_frac: float = 0.004, free_space_frac: float = FREE_SPACE_FRAC) -> SurfaceExport:
    """The surface seen by the training views, merged on a voxel grid of `voxel_frac` x box size,
    without points that other views see through (`seen_through`); frames whose mask disagrees
    with the others (the dataparser's `frame_flagged`) contribute none. Keys only when the run at
    `step` has trained them (`keys_trained`): an untrained key head's output would only look like keys."""
    with_keys = keys_trained(pipeline, step)
    pts, nrm, keys, cols, spread, dirs, depth_maps, cams = [], [], [], [], [], [], [], []
    dataset = pipeline.datamanager.train_dataset
    n = len(dataset)
    flagged = pipeline.datamanager.train_dataparser_outputs.metadata.get("frame_flagged")
    for i in track(range(n), description="rendering surface points", transient=True):
        r = pipeline.render_surface(i)
        cams.append(r["camera"])
        origin = dataset.cameras.camera_to_worlds[i, :3, 3].to(r["points"].device)
        depth = torch.where(r["acc"] > 0.5, (r["points"] - origin).norm(dim=-1), torch.inf)
        depth_maps.append(depth.cpu())
        if flagged is not None and bool(flagged[i]):
            continue
        valid = r["fg"] & (r["acc"] > 0.5)
        pts.append(r["points"][valid].cpu())
        nrm.append(r["normals"][valid].cpu())
        if with_keys:
            keys.append(r["keys"][valid].cpu())
        cols.append(r["rgb"][valid].cpu())
        spread.append(r["spread"][valid].cpu())
        dirs.append(r["dirs"][valid].cpu())
    if not sum(len(p) for p in pts):
        raise NerfregError("the field renders no surface: was the run trained?")
    p_ns = torch.cat(pts).numpy().astype(np.float64)
    aabb = pipeline.model.hull_aabb.cpu().numpy()
    box = float(aabb[1, 0] - aabb[0, 0])
    keep = voxel_unique(p_ns, voxel_frac * box)
    if free_space_frac < 1:
        keep = keep[seen_through(p_ns[keep], cams, depth_maps, 0.02 * box) <= free_space_frac]
    T_ns_in, scale = ns_to_input(pipeline)
    T_in_ns = invert(T_ns_in)
    p_in = apply(T_in_ns, p_ns[keep] / scale)
    edge = boundary_points(pipeline.model, torch.from_numpy(p_ns[keep]).float(), torch.cat(dirs)[keep].float())
    edge_in = apply(T_in_ns, edge.numpy().astype(np.float64) / scale)
    n_in = rotate(T_in_ns, torch.cat(nrm).numpy().astype(np.float64)[keep])
    n_in /= np.linalg.norm(n_in, axis=1, keepdims=True).clip(1e-9)
    meta = dict(pipeline.datamanager.train_dataparser_outputs.metadata.get("nerfreg", {}) or {})
    spread_in = torch.cat(spread).numpy().astype(np.float64)[keep] / scale
    return SurfaceExport(p_in, n_in, torch.cat(keys).numpy()[keep] if with_keys else None, torch.cat(cols).numpy()[keep], meta,
                         spread_in, edge_in)


@torch.no_grad()
def boundary_points(model, points: torch.Tensor, dirs: torch.Tensor, behind_vox: float = 6.0, ahead_vox: float = 3.0,
                    step_vox: float = 0.25, chunk: int = 1 << 15) -> torch.Tensor:
    """Surface points (N, 3), nerfstudio coordinates, found where their view rays (unit
    directions dirs (N, 3)) reached half their opacity, moved along the ray to where the density
    reaches half the value it holds just inside (the highest within `ahead_vox` voxels past the
    point): the middle of the grid's blurred step. Points with no such rise within `behind_vox`
    voxels before them (or, where the density at the point is under half, `ahead_vox` after) stay
    where they are.

    Where the field holds a solid at a low density, as on faces the views never forced to be
    opaque, half the opacity is reached a voxel or more inside the part; the density's edge does
    not depend on how high the density is."""
    device = model.hull_aabb.device
    offs = torch.arange(-behind_vox, ahead_vox + 1e-6, step_vox, device=device)
    at = int(round(behind_vox / step_vox))  # the offset of the point itself
    k = torch.arange(len(offs), device=device)
    vox = model.voxel_size
    out = []
    for p, d in zip(points.to(device).split(chunk), dirs.to(device).split(chunk)):
        d = torch.nn.functional.normalize(d, dim=-1)
        x = p[:, None] + d[:, None] * (offs * vox)[None, :, None]
        sigma = model.field.density_at(model.to_unit(x.reshape(-1, 3)).clamp(-1, 1)).view(len(p), -1)
        half = sigma[:, at:].max(1).values / 2
        under = sigma < half[:, None]
        # the point above half: the edge lies after the last sample before it still under half;
        # under half (a crisp face reaches half the opacity early): before the first one past it that is not
        last_under = torch.where(under & (k < at), k, -1).max(1).values
        first_over = torch.where(~under & (k > at), k, len(offs)).min(1).values
        i = torch.where(under[:, at], first_over - 1, last_under)
        found = (i >= 0) & (i < len(offs) - 1)
        i = i.clamp(0, len(offs) - 2)
        s0, s1 = sigma.gather(1, i[:, None])[:, 0], sigma.gather(1, (i + 1)[:, None])[:, 0]
        frac = ((half - s0) / (s1 - s0).clamp(min=1e-12)).clamp(0, 1)
        shift = torch.where(found, (offs[i] + frac * step_vox) * vox, torch.zeros_like(half))
        out.append((p + d * shift[:, None]).cpu())
    return torch.cat(out) if out else points.new_zeros(0, 3)


def seen_through(points: np.ndarray, cameras: list, depth_maps: list[torch.Tensor], tol: float) -> np.ndarray:
    """For points (N, 3) in nerfstudio coordinates: the fraction (N,) of the views that look at
    them (in the frame, on the rendered object) whose rendered surface lies more than `tol`
    behind them, i.e. that see through them.

    A surface point is visible or hidden in every other view, never in front of what a view
    sees; a floater in front of one camera is seen through by the others. depth_maps (H, W)
    hold each view's distance to its surface along the ray (inf where nothing is rendered), as
    rendered by `cameras` (one nerfstudio Cameras of one per map).
    """
    through = np.zeros(len(points))
    looks = np.zeros(len(points))
    for cam, depth in zip(cameras, depth_maps):
        c2w = cam.camera_to_worlds[0].cpu().numpy().astype(np.float64)
        fx, fy, cx, cy = (float(getattr(cam, k)[0, 0]) for k in ("fx", "fy", "cx", "cy"))
        R, t = c2w[:3, :3], c2w[:3, 3]
        p = (points - t) @ R  # OpenGL camera: looking down -z
        z = -p[:, 2]
        h, w = depth.shape
        with np.errstate(divide="ignore", invalid="ignore"):
            u = np.floor(fx * p[:, 0] / z + cx)
            v = np.floor(-fy * p[:, 1] / z + cy)
        ok = (z > 0) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
        d = np.full(len(points), np.inf)
        d[ok] = depth.numpy()[v[ok].astype(int), u[ok].astype(int)]
        ok &= np.isfinite(d)
        dist = np.linalg.norm(points - t, axis=1)
        looks += ok
        through += ok & (d > dist + tol)
    return through / np.maximum(looks, 1)


@torch.no_grad()
def export_mesh(pipeline, level: float = 1.0):
    """Marching cubes on the density grid (density per voxel length `level`), input frame."""
    import trimesh
    from skimage.measure import marching_cubes

    model = pipeline.model
    sigma = torch.nn.functional.softplus(model.field.density[0, 0]).cpu().numpy()  # [z, y, x]
    if sigma.max() <= level:
        raise NerfregError("the density never reaches the surface level: was the run trained?")
    verts, faces, _, _ = marching_cubes(sigma, level=level)
    res = sigma.shape[0]
    aabb = model.hull_aabb.cpu().numpy()
    xyz = verts[:, ::-1] / (res - 1) * (aabb[1] - aabb[0]) + aabb[0]  # align_corners grid
    T_ns_in, scale = ns_to_input(pipeline)
    mesh = trimesh.Trimesh(apply(invert(T_ns_in), xyz / scale), faces[:, ::-1], process=True)
    return mesh


def write_point_ply(path: Path, points: np.ndarray, normals: np.ndarray, colors: np.ndarray) -> None:
    """Binary little-endian PLY with float xyz, float normals, uchar colours (readable by Open3D)."""
    n = len(points)
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        f"element vertex {n}\n"
        "property float x\nproperty float y\nproperty float z\n"
        "property float nx\nproperty float ny\nproperty float nz\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n"
    )
    rec = np.zeros(n, dtype=[("p", "<f4", 3), ("n", "<f4", 3), ("c", "u1", 3)])
    rec["p"], rec["n"] = points, normals
    rec["c"] = (np.clip(colors, 0, 1) * 255 + 0.5).astype(np.uint8)
    write_bytes_atomic(Path(path), header.encode() + rec.tobytes())


def write_export(out_dir: Path, surface: SurfaceExport, mesh, extra_meta: dict) -> None:
    """surface.ply, surface.npz (points, normals, keys when trained, colors, spread, boundary), mesh.ply, export.json."""
    write_point_ply(out_dir / "surface.ply", surface.points, surface.normals, surface.colors)
    arrays = dict(points=surface.points, normals=surface.normals, colors=surface.colors, spread=surface.spread)
    if surface.boundary is not None:
        arrays["boundary"] = surface.boundary
    if surface.keys is not None:
        arrays["keys"] = surface.keys
    np.savez_compressed(out_dir / "surface.npz", **arrays)
    write_bytes_atomic(out_dir / "mesh.ply", mesh.export(file_type="ply"))
    write_json_atomic(out_dir / "export.json", {**surface.meta, **extra_meta, "points": len(surface.points)})
