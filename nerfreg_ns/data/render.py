"""A CPU renderer for texture-less objects: exact ray casting (Open3D/Embree), grey Lambertian.

Depth is the z of the hit in the OpenCV camera (rays with unit z), so a mask pixel and its depth
back-project exactly through K and the pose. K is OpenCV's: pixel (u, v)'s ray goes through the
coordinates (u, v) (`geometry.cameras`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh

from nerfreg_ns.geometry.cameras import pixel_grid

ALBEDO = np.array([0.74, 0.71, 0.66])  # a dull, slightly warm grey like T-LESS plastic


@dataclass(frozen=True)
class View:
    """One rendered view: rgb (H, W, 3) uint8 on black, mask (H, W) bool, depth (H, W) (0 = miss),
    normals (H, W, 3) in the object frame, facing the camera (0 = miss)."""

    rgb: np.ndarray
    mask: np.ndarray
    depth: np.ndarray
    normals: np.ndarray


class Renderer:
    """Renders one mesh, given in the object frame, from OpenCV cameras."""

    def __init__(self, mesh: trimesh.Trimesh) -> None:
        import open3d as o3d

        self._o3d = o3d
        self._scene = o3d.t.geometry.RaycastingScene()
        self._scene.add_triangles(
            o3d.core.Tensor(np.asarray(mesh.vertices, np.float32)),
            o3d.core.Tensor(np.asarray(mesh.faces, np.uint32)),
        )

    def first_hit(self, rays: np.ndarray) -> np.ndarray:
        """Distance (N,) along each ray (N, 6: origin, unit direction; object frame) to the first
        surface it meets, inf where it meets none."""
        return self._scene.cast_rays(self._o3d.core.Tensor(np.asarray(rays, np.float32)))["t_hit"].numpy()

    def render(self, K: np.ndarray, T_obj_camcv: np.ndarray, width: int, height: int,
               key_obj: np.ndarray | None = None, specular: float = 0.0, shininess: float = 40.0) -> View:
        """Renders the mesh through intrinsics K (3, 3) from camera-to-object T_obj_camcv (4, 4).

        The key light is fixed to the camera unless `key_obj` (3,) gives its direction in the
        object frame (a light fixed in the room); `specular` adds Blinn-Phong highlights."""
        u, v = pixel_grid(width, height)
        pix = np.stack([u, v, np.ones_like(u)], -1).reshape(-1, 3)
        dirs_cam = pix @ np.linalg.inv(K).T  # z == 1: the ray parameter is the depth
        R, t = T_obj_camcv[:3, :3], T_obj_camcv[:3, 3]
        dirs = dirs_cam @ R.T
        rays = np.concatenate([np.broadcast_to(t, dirs.shape), dirs], 1).astype(np.float32)
        hit = self._scene.cast_rays(self._o3d.core.Tensor(rays))
        depth = hit["t_hit"].numpy().astype(float)
        mask = np.isfinite(depth)
        normals = hit["primitive_normals"].numpy().astype(float)

        view_dir = -dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
        n = normals * np.sign((normals * view_dir).sum(1, keepdims=True) + 1e-12)  # face the camera
        # direction from the surface towards a light up and to the right of the camera
        key = R @ np.array([0.4, -0.7, -0.6]) if key_obj is None else np.asarray(key_obj, float)
        key = key / np.linalg.norm(key)
        if key_obj is None:
            shade = 0.12 + 0.58 * np.clip((n * view_dir).sum(1), 0, 1) + 0.30 * np.clip(n @ key, 0, 1)
        else:  # a room: ambient, a little camera fill, mostly the fixed key light
            shade = 0.15 + 0.20 * np.clip((n * view_dir).sum(1), 0, 1) + 0.65 * np.clip(n @ key, 0, 1)
        rgb = shade[:, None] * ALBEDO[None, :]
        if specular > 0:
            half = view_dir + key[None]
            half /= np.linalg.norm(half, axis=1, keepdims=True).clip(1e-9)
            rgb = rgb + specular * np.clip((n * half).sum(1), 0, 1)[:, None] ** shininess
        rgb = np.clip(rgb, 0, 1)
        rgb[~mask] = 0.0
        depth[~mask] = 0.0
        n[~mask] = 0.0
        return View(
            rgb=(rgb.reshape(height, width, 3) * 255 + 0.5).astype(np.uint8),
            mask=mask.reshape(height, width),
            depth=depth.reshape(height, width),
            normals=n.reshape(height, width, 3),
        )


def backproject(view: View, K: np.ndarray, T_frame_camcv: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rendered surface as points: pixel rows (N,), columns (N,) and 3D points (N, 3) in the
    frame `T_frame_camcv` (4, 4) maps the camera into."""
    v, u = np.nonzero(view.mask)
    rays = np.stack([u, v, np.ones(len(u))], 1) @ np.linalg.inv(K).T
    cam = rays * view.depth[v, u][:, None]
    return v, u, cam @ T_frame_camcv[:3, :3].T + T_frame_camcv[:3, 3]
