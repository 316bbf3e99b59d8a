"""Camera conventions, converted in one place.

Axes: nerfstudio's `transforms.json` holds camera-to-world in the OpenGL convention (x right,
y up, z backward); BOP and OpenCV use x right, y down, z forward and world-to-camera
(`cam_R_w2c`). The two differ by flipping the camera's y and z axes.

Pixel centres: in memory nerfreg follows OpenCV and BOP: pixel (u, v) of an image array
(`mask[v, u]`) has its centre at the coordinates (u, v), so a point projecting to uv falls in
pixel `pixel_index(uv)`, and BOP's `cam_K` is used as it is. nerfstudio (like COLMAP) puts that
centre at (u + 0.5, v + 0.5): its rays go through `i + 0.5`, so the cx, cy of a transforms.json
are half a pixel larger than OpenCV's for the same camera. `K_from_nerfstudio` and
`nerfstudio_intrinsics` convert on reading and writing those files; "continuous" coordinates
(pixel j spans [j, j + 1), as `grid_sample` with align_corners=False and nerfstudio's rays use
them) convert with `opencv_from_continuous`.
"""

from __future__ import annotations

import numpy as np

from nerfreg_ns.geometry.transforms import invert, look_at_c2w_opencv, make_T

_FLIP_YZ = np.diag([1.0, -1.0, -1.0, 1.0])
NERFSTUDIO_PIXEL_OFFSET = 0.5
"""nerfstudio's coordinate of pixel 0's centre (OpenCV's is 0)."""
GOLDEN_ANGLE = np.pi * (3.0 - np.sqrt(5.0))


def c2w_opencv_to_opengl(T_world_camcv: np.ndarray) -> np.ndarray:
    """OpenCV camera-to-world (4, 4) -> OpenGL (nerfstudio) camera-to-world (4, 4)."""
    return T_world_camcv @ _FLIP_YZ


def c2w_opengl_to_opencv(T_world_camgl: np.ndarray) -> np.ndarray:
    """OpenGL (nerfstudio) camera-to-world (4, 4) -> OpenCV camera-to-world (4, 4)."""
    return T_world_camgl @ _FLIP_YZ


def K_matrix(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """Pinhole intrinsics (3, 3), OpenCV convention: pixel (u, v)'s centre at the coordinates (u, v)."""
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def centred_K(f: float, width: int, height: int, offset: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Intrinsics (3, 3) with focal length `f` (px) and the principal point at the image's centre
    ((width - 1) / 2, (height - 1) / 2 in OpenCV coordinates), moved by `offset` pixels."""
    return K_matrix(f, f, (width - 1) / 2 + offset[0], (height - 1) / 2 + offset[1])


def K_from_nerfstudio(fl_x: float, fl_y: float, cx: float, cy: float) -> np.ndarray:
    """OpenCV intrinsics (3, 3) of a camera that a transforms.json describes with these values."""
    return K_matrix(fl_x, fl_y, cx - NERFSTUDIO_PIXEL_OFFSET, cy - NERFSTUDIO_PIXEL_OFFSET)


def nerfstudio_intrinsics(K: np.ndarray) -> dict[str, float]:
    """`fl_x`, `fl_y`, `cx`, `cy` of a transforms.json frame for OpenCV intrinsics K (3, 3)."""
    return {"fl_x": float(K[0, 0]), "fl_y": float(K[1, 1]),
            "cx": float(K[0, 2]) + NERFSTUDIO_PIXEL_OFFSET, "cy": float(K[1, 2]) + NERFSTUDIO_PIXEL_OFFSET}


def opencv_from_continuous(uv: np.ndarray) -> np.ndarray:
    """Image coordinates (..., 2) where pixel j spans [j, j + 1) -> OpenCV's (pixel j's centre at j)."""
    return np.asarray(uv, dtype=float) - NERFSTUDIO_PIXEL_OFFSET


def reduced_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """The (width, height) of an image shrunk so that its longer side is at most `max_side`
    (unchanged when it already is, or when `max_side` is 0)."""
    side = max(width, height)
    if max_side <= 0 or side <= max_side:
        return width, height
    s = max_side / side
    return max(1, round(width * s)), max(1, round(height * s))


def resized_K(K: np.ndarray, size: tuple[int, int], new_size: tuple[int, int]) -> np.ndarray:
    """OpenCV intrinsics (3, 3) of the same camera after resizing its image from size (width,
    height) to new_size: a point at uv lands at s (uv + 0.5) - 0.5 (pixel edges, not centres, scale)."""
    sx, sy = new_size[0] / size[0], new_size[1] / size[1]
    out = np.array(K, dtype=float)
    out[0, 0], out[0, 1], out[0, 2] = K[0, 0] * sx, K[0, 1] * sx, sx * (K[0, 2] + 0.5) - 0.5
    out[1, 1], out[1, 2] = K[1, 1] * sy, sy * (K[1, 2] + 0.5) - 0.5
    return out


def shrink_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A mask (H, W) bool resized to size (width, height): area average, kept where at least half covered."""
    import cv2

    return cv2.resize(np.asarray(mask).astype(np.float32), size, interpolation=cv2.INTER_AREA) >= 0.5


def reduce_view(K: np.ndarray, mask: np.ndarray, max_side: int) -> tuple[np.ndarray, np.ndarray]:
    """A mask (H, W) bool shrunk to at most `max_side` pixels on its longer side (area average,
    kept where at least half covered) and its intrinsics (3, 3); both as given when small enough."""
    h, w = mask.shape
    nw, nh = reduced_size(w, h, max_side)
    if (nw, nh) == (w, h):
        return K, mask
    return resized_K(K, (w, h), (nw, nh)), shrink_mask(mask, (nw, nh))


def pixel_grid(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates (u, v), each (height, width), of every pixel's centre (OpenCV: integers)."""
    return np.meshgrid(np.arange(width, dtype=float), np.arange(height, dtype=float))


def pixel_index(uv: np.ndarray) -> np.ndarray:
    """The pixel (column, row) (N, 2) int that image coordinates uv (N, 2) fall in (OpenCV: nearest centre)."""
    return np.floor(np.asarray(uv, dtype=float) + 0.5).astype(np.int64)


def in_image(uv: np.ndarray, width: int, height: int) -> np.ndarray:
    """(N,) bool: uv (N, 2) falls in a pixel of a width x height image."""
    ij = pixel_index(uv)
    return (ij[:, 0] >= 0) & (ij[:, 0] < width) & (ij[:, 1] >= 0) & (ij[:, 1] < height)


def project(K: np.ndarray, T_camcv_world: np.ndarray, points_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Projects points (N, 3) through an OpenCV world-to-camera (4, 4) and K (3, 3).

    Returns pixel coordinates (N, 2) and depths (N,) along the optical axis.
    """
    p = points_world @ T_camcv_world[:3, :3].T + T_camcv_world[:3, 3]
    z = p[:, 2]
    uv = (p @ K.T)[:, :2] / z[:, None]
    return uv, z


def bop_w2c_from_c2w_opencv(T_world_camcv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cam_R_w2c (3, 3), cam_t_w2c (3,)) as BOP's scene_camera.json stores them."""
    T_cam_world = invert(T_world_camcv)
    return T_cam_world[:3, :3], T_cam_world[:3, 3]


def c2w_opencv_from_bop_w2c(R_w2c: np.ndarray, t_w2c: np.ndarray) -> np.ndarray:
    """OpenCV camera-to-world (4, 4) from BOP's cam_R_w2c (3, 3) and cam_t_w2c (3,)."""
    return invert(make_T(np.asarray(R_w2c, float).reshape(3, 3), np.asarray(t_w2c, float).reshape(3)))


def mean_view_direction(camera_centres: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Unit mean (3,) of the directions from `centre` (3,) to the camera centres (N, 3); zeros
    when they cancel out (cameras all around the object: no side is preferred)."""
    rel = np.asarray(camera_centres, dtype=float).reshape(-1, 3) - centre
    if len(rel) == 0:
        return np.zeros(3)
    mean = (rel / np.linalg.norm(rel, axis=1, keepdims=True).clip(1e-12)).mean(axis=0)
    norm = np.linalg.norm(mean)
    return mean / norm if norm >= 1e-6 else np.zeros(3)


def elevation_deg(camera_centre_obj: np.ndarray) -> float:
    """Elevation in degrees of a camera centre (3,) seen from the object origin (+z is up)."""
    x, y, z = camera_centre_obj
    return float(np.degrees(np.arctan2(z, np.hypot(x, y))))


def camera_poses(n: int, elevation_deg: tuple[float, float], distance: float | np.ndarray, rng: np.random.Generator,
                 roll_deg: float = 0.0, target_jitter: float = 0.0, uneven: float = 0.0) -> list[np.ndarray]:
    """n OpenCV camera-to-object poses (4, 4) looking at the origin from an elevation band.

    Elevations are stratified over the band, azimuths follow the golden angle from a random start.
    `distance` is one distance or one per view (n,); `roll_deg` rolls each camera about its axis
    by up to that much; cameras aim at a point up to `target_jitter` (object units) from the
    origin; a fraction `uneven` of the views is crowded into one 90-degree azimuth sector.
    Without these options the draws are those of the plain orbit (same seed, same poses).
    """
    lo, hi = np.radians(sorted(elevation_deg))
    az0 = rng.uniform(0, 2 * np.pi)
    dist = np.broadcast_to(np.asarray(distance, float), (n,))
    crowded = set(rng.choice(n, int(round(uneven * n)), replace=False).tolist()) if uneven > 0 else set()
    poses = []
    for i in range(n):
        el = lo + (hi - lo) * (i + rng.uniform(0.2, 0.8)) / n
        az = az0 + (rng.uniform(0, np.pi / 2) if i in crowded else i * GOLDEN_ANGLE)
        eye = dist[i] * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
        target = rng.uniform(-1, 1, 3) * target_jitter if target_jitter > 0 else np.zeros(3)
        T = look_at_c2w_opencv(eye, target, np.array([0.0, 0.0, 1.0]))
        if roll_deg > 0:
            a = np.radians(rng.uniform(-roll_deg, roll_deg))
            c, s = np.cos(a), np.sin(a)
            T[:3, :3] = T[:3, :3] @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])  # about the camera's z
        poses.append(T)
    return poses
