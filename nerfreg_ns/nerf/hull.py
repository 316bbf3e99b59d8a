"""Visual hull from masks, and where each ray crosses it.

Empty space carved from the silhouettes is the cheapest prior a masked object capture offers:
samples go only where the object can be, so a ray that misses the hull costs nothing.
Coordinates here are nerfstudio's (after the dataparser transform); cameras are OpenGL.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import NamedTuple, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from nerfreg_ns.stages import StageClock


def outside_distance(mask: Tensor) -> Tensor:
    """Pixels (H, W) float from each pixel to the mask (0 inside), for tolerant carving."""
    import cv2

    m = mask.cpu().numpy().astype(np.uint8)
    return torch.from_numpy(cv2.distanceTransform(1 - m, cv2.DIST_L2, 5)).to(mask.device)


def _project(pts: Tensor, c2w: Tensor, K: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Points (M, 3) in one OpenGL camera (c2w (3, 4), K (3, 3) continuous): pixel u, v and depth z (M,)."""
    p = (pts - c2w[:3, 3]) @ c2w[:3, :3]  # world -> OpenGL camera
    z = -p[:, 2]
    return K[0, 0] * p[:, 0] / z + K[0, 2], -K[1, 1] * p[:, 1] / z + K[1, 2], z


def carve(c2w: Tensor, K: Tensor, masks: list[Tensor], aabb: Tensor, res: int, min_views: int = 3,
          tol_px: float = 0.0, votes: int = 1, min_seen_frac: float = 0.0, outside: Optional[list[Tensor]] = None,
          voting: Optional[Tensor] = None) -> Tensor:
    """Occupancy (res, res, res) bool: `carvers`' voxels that are kept."""
    return carvers(c2w, K, masks, aabb, res, min_views, tol_px, votes, min_seen_frac, outside, voting) >= KEPT


KEPT = -1
"""In `carvers`' grid: a voxel kept that no view sees outside its mask; values >= 0 name the one view that does."""
CARVED = -2


def carvers(c2w: Tensor, K: Tensor, masks: list[Tensor], aabb: Tensor, res: int, min_views: int = 3,
            tol_px: float = 0.0, votes: int = 1, min_seen_frac: float = 0.0, outside: Optional[list[Tensor]] = None,
            voting: Optional[Tensor] = None) -> Tensor:
    """The voxels of `aabb` (2, 3), (res, res, res) int32 indexed [x, y, z]: `CARVED`, or kept
    (fewer than `votes` views see them more than `tol_px` outside their mask (H, W) bool, and
    at least `min_views` cameras and a fraction `min_seen_frac` of them see them) with `KEPT`
    or, where one view alone saw them outside its mask, that view's index.

    Several views must agree before carving, so one frame whose mask misses a piece of the part
    does not cut it; space that few cameras see (cones towards each camera) is not the object's,
    whatever their masks say. c2w (N, 3, 4) OpenGL camera-to-world, K (N, 3, 3) continuous
    pixel coordinates. Carved voxels leave the candidate set, so the work shrinks as it proceeds.
    `outside`: the masks' `outside_distance` maps when already computed. `voting` (N,) bool: the
    views whose masks may carve (default all); the others still count as seeing.
    """
    if tol_px > 0 and outside is None:
        outside = [outside_distance(m) for m in masks]
    dev = aabb.device
    axes = [torch.linspace(0, 1, res + 1, device=dev)[:-1] + 0.5 / res for _ in range(3)]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    pts = aabb[0] + grid * (aabb[1] - aabb[0])
    alive = torch.arange(len(pts), device=dev)
    seen_count = torch.zeros(len(pts), dtype=torch.int32, device=dev)
    out_votes = torch.zeros(len(pts), dtype=torch.int32, device=dev)
    voter = torch.full((len(pts),), KEPT, dtype=torch.int32, device=dev)
    for i, mask in enumerate(masks):
        h, w = mask.shape
        u, v, z = _project(pts[alive], c2w[i], K[i])
        seen = (z > 0) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
        ui, vi = u.clamp(0, w - 1).long(), v.clamp(0, h - 1).long()
        far = outside[i].to(dev)[vi, ui] > tol_px if tol_px > 0 else ~mask.to(dev)[vi, ui]
        seen_count[alive] += seen.int()
        if voting is not None and not bool(voting[i]):
            continue
        out_votes[alive] += (seen & far).int()
        voter[alive[seen & far]] = i  # only the sole voter's mark matters: more votes carve
        alive = alive[out_votes[alive] < votes]
    occ = torch.zeros(len(pts), dtype=torch.bool, device=dev)
    occ[alive] = True
    need = max(min(min_views, len(masks)), int(np.ceil(min_seen_frac * len(masks))))
    occ &= seen_count >= need
    return torch.where(occ, voter, torch.full_like(voter, CARVED)).reshape(res, res, res)


RAY_CHUNK = 1 << 15
"""Rays marched at once when drawing silhouettes (each holds `steps` samples in memory)."""


def frame_agreement(c2w: Tensor, K: Tensor, masks: list[Tensor], aabb: Tensor, occ: Tensor, voters: Tensor,
                    tol_px: float = 1.0) -> Tensor:
    """Per view (N,): how much its mask disagrees with the others, as a fraction of its area:
    `blob_added` plus `piece_missing`."""
    return blob_added(c2w, K, masks, aabb, occ, tol_px) + piece_missing(c2w, K, masks, aabb, voters, tol_px)


def silhouettes(c2w: Tensor, K: Tensor, masks: list[Tensor], aabb: Tensor, occ: Tensor, tol_px: float = 1.0):
    """Per view, at most `CHECK_MAX_SIDE` pixels: the hull's silhouette (h, w) uint8, the mask
    (h, w) uint8, and the slack (px) within which the two may differ (the tolerance and 1.5
    voxels). Silhouettes: a ray through every pixel centre, marched through the occupancy."""
    steps = 2 * occ.shape[0]
    voxel = float((aabb[1, 0] - aabb[0, 0]) / occ.shape[0])
    centre = (aabb[0] + aabb[1]) / 2
    for i, mask in enumerate(masks):
        Ki, mask, tol = _reduced(K[i], mask, tol_px)
        h, w = mask.shape
        v, u = torch.meshgrid(torch.arange(h, device=c2w.device) + 0.5, torch.arange(w, device=c2w.device) + 0.5, indexing="ij")
        d_cam = torch.stack([(u - Ki[0, 2]) / Ki[0, 0], -(v - Ki[1, 2]) / Ki[1, 1], -torch.ones_like(u)], -1).reshape(-1, 3)
        d = F.normalize(d_cam @ c2w[i, :3, :3].T, dim=-1)
        o = c2w[i, :3, 3].expand_as(d)
        hit = torch.cat([ray_hull_interval(o[j : j + RAY_CHUNK], d[j : j + RAY_CHUNK], aabb, occ, steps)[2]
                         for j in range(0, len(d), RAY_CHUNK)])
        dist = float((c2w[i, :3, 3] - centre).norm())
        r = int(np.ceil(tol + 1.5 * float(Ki[0, 0]) * voxel / max(dist, 1e-6)))
        yield hit.view(h, w).cpu().numpy().astype(np.uint8), mask.cpu().numpy().astype(np.uint8), r


def blob_added(c2w: Tensor, K: Tensor, masks: list[Tensor], aabb: Tensor, occ: Tensor, tol_px: float = 1.0) -> Tensor:
    """Per view (N,): the area of its mask outside the hull's silhouette by more than the
    carving's slack (`silhouettes`), over the mask's area.

    Every part of the object lies inside the hull, so a clean frame's mask is covered by the
    hull's silhouette; a blob added to one mask lies outside it (the other views carve it).
    """
    import cv2

    out = []
    for sil, m, r in silhouettes(c2w, K, masks, aabb, occ, tol_px):
        ker = np.ones((2 * r + 1, 2 * r + 1), np.uint8)
        out.append(float((m > cv2.dilate(sil, ker)).sum()) / max(float(m.sum()), 1.0))
    return torch.tensor(out, dtype=torch.float32)


def sole_support(c2w: Tensor, K: Tensor, masks: list[Tensor], aabb: Tensor, voters: Tensor, tol_px: float = 1.0) -> Tensor:
    """(N, N): [i, j] the fraction of view j's mask (eroded by the slack) whose pixels see
    nothing of the hull but voxels that view i alone carves (`carvers`).

    A piece missing from view i's mask removes part of the object that the others see: where
    that part shows against the background in view j, j's mask needs it, and only i's lone
    vote stands against it. Space no other view needs costs nothing, so a clean view that is
    the only one to bound some empty space (the underside, seen edge-on from the lowest view)
    is not blamed for the looseness of the hull there. Voxel centres are splatted at a scale
    where a voxel spans at most a pixel, so the kept voxels' footprints leave no holes.
    """
    import cv2

    n = len(masks)
    res = voters.shape[0]
    idx = (voters >= KEPT).nonzero()
    owner = voters[idx[:, 0], idx[:, 1], idx[:, 2]].long()
    if not (owner >= 0).any():
        return torch.zeros(n, n)
    voxel = (aabb[1] - aabb[0]) / res
    pts = aabb[0] + (idx.to(aabb.dtype) + 0.5) * voxel
    centre = (aabb[0] + aabb[1]) / 2
    none = n  # a pixel no voxel reaches
    dev = voters.device
    out = torch.zeros(n, n)
    for j, mask in enumerate(masks):
        h, w = mask.shape
        dist = float((c2w[j, :3, 3] - centre).norm())
        footprint = float(K[j, 0, 0]) * float(voxel[0]) / max(dist, 1e-6)
        side = max(8, int(max(h, w) * min(1.0, 0.8 / max(footprint, 1e-6))))
        Kj, m, tol = _reduced(K[j].to(dev), mask, tol_px, side)
        h, w = m.shape
        u, v, z = _project(pts, c2w[j], Kj)
        u, v = u.floor().long(), v.floor().long()
        ok = (z > 0) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
        pix = v[ok] * w + u[ok]
        o = owner[ok]
        # a pixel rests on view i alone when every voxel it sees is i's: min == max == i
        lo = torch.full((h * w,), none, dtype=torch.long, device=dev).scatter_reduce(0, pix, o, "amin")
        hi = torch.full((h * w,), -1, dtype=torch.long, device=dev).scatter_reduce(0, pix, o, "amax")
        r = int(np.ceil(tol)) + 1
        inner = cv2.erode(m.cpu().numpy().astype(np.uint8), np.ones((2 * r + 1, 2 * r + 1), np.uint8))
        alone = ((lo == hi) & (lo >= 0)).view(h, w).cpu().numpy().astype(np.uint8) & inner
        alone = cv2.morphologyEx(alone, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))  # not single pixels of rag
        sel = torch.from_numpy(alone.reshape(-1) > 0).to(dev)
        counts = torch.bincount(lo[sel], minlength=n)[:n].float().cpu()
        counts[j] = 0
        out[:, j] = counts / max(float(inner.sum()), 1.0)
    return out


def piece_missing(c2w: Tensor, K: Tensor, masks: list[Tensor], aabb: Tensor, voters: Tensor, tol_px: float = 1.0) -> Tensor:
    """Per view (N,): the object its mask leaves out that other views need (`sole_support`),
    as the largest fraction of another view's mask it explains alone.

    The largest, not the mean: a piece cut from one mask shows against the background only in
    the views that look at it from a similar side."""
    return sole_support(c2w, K, masks, aabb, voters, tol_px).amax(1)


CHECK_MAX_SIDE = 320
"""Silhouettes for the frame check are drawn at most this many pixels on the longer side (the
hull's voxels span several pixels of a larger image anyway)."""


def _reduced(K: Tensor, mask: Tensor, tol_px: float, max_side: int = CHECK_MAX_SIDE) -> tuple[Tensor, Tensor, float]:
    """A view shrunk to `max_side`: continuous intrinsics (3, 3), mask (h, w) bool, tolerance (px)."""
    from nerfreg_ns.geometry.cameras import reduced_size, shrink_mask

    h, w = mask.shape
    nw, nh = reduced_size(w, h, min(max_side, CHECK_MAX_SIDE))
    if (nw, nh) == (w, h):
        return K, mask, tol_px
    sx, sy = nw / w, nh / h
    small = shrink_mask(mask.cpu().numpy(), (nw, nh))
    K = K.clone()
    K[0] *= sx  # continuous coordinates (pixel edges at integers) scale as they are
    K[1] *= sy
    return K, torch.from_numpy(small).to(mask.device), tol_px * max(sx, sy)


def disagreement_threshold(disagreement: Tensor, floor: float = 0.03) -> float:
    """The level (`frame_agreement`, fraction of a mask's area) above which a frame disagrees:
    `floor`, or three times the median frame's where the whole sequence is noisier."""
    return max(floor, 3 * float(disagreement.median()))


def disagreeing_frames(disagreement: Tensor, floor: float = 0.03) -> Tensor:
    """Frames (bool, N) whose mask disagrees with the others (`disagreement_threshold`)."""
    return disagreement > disagreement_threshold(disagreement, floor)


class CheckedHull(NamedTuple):
    aabb: Tensor
    """(2, 3) the hull's box."""
    occ: Tensor
    """(R, R, R) bool [x, y, z], with a safety margin."""
    disagreement: Tensor
    """(N,) each frame's `frame_agreement`, as finally judged."""
    flagged: Tensor
    """(N,) bool: the frames whose mask disagrees with the others."""


def checked_hull(c2w: Tensor, K: Tensor, masks: list[Tensor], res: int, tol_px: float = 0.0, votes: int = 1,
                 min_seen_frac: float = 0.0, clock: Optional[StageClock] = None) -> CheckedHull:
    """`visual_hull` and the frame check (`frame_agreement`, `disagreeing_frames`); when frames
    are flagged, a second round judges them again against the hull carved without their votes.

    Two frames with pieces missing in the same place cut the hull with their two votes, and the
    clean frames that see that place against the background then show a blob there; once the two
    are flagged (for the space each carves alone), the hull without their votes is whole again
    and the clean frames agree with it. The flagged frames still count as seeing (the seen
    fraction is unchanged), so the second hull holds the first and the second round can only
    clear frames; it keeps the first round's threshold, which a sequence-wide median would move.
    The second hull is the one kept. `clock`: times "visual hull" and "frame check" (both rounds).
    """
    stage = clock.stage if clock is not None else (lambda name: nullcontext())
    opts = dict(tol_px=tol_px, votes=votes, min_seen_frac=min_seen_frac)
    with stage("visual hull"):
        aabb, occ, voters = visual_hull(c2w, K, masks, res, **opts)
    with stage("frame check"):
        missing = piece_missing(c2w, K, masks, aabb, voters, tol_px)
        disagreement = blob_added(c2w, K, masks, aabb, occ, tol_px) + missing
        level = disagreement_threshold(disagreement)
        flagged = disagreement > level
        if flagged.any():
            aabb, occ, _ = visual_hull(c2w, K, masks, res, voting=~flagged, **opts)
            disagreement = blob_added(c2w, K, masks, aabb, occ, tol_px) + missing
            flagged &= disagreement > level
    return CheckedHull(aabb, occ, disagreement, flagged)


def dilate(occ: Tensor, voxels: int = 1) -> Tensor:
    """Grows an occupancy grid (R, R, R) bool by `voxels` in every direction."""
    k = 2 * voxels + 1
    return F.max_pool3d(occ[None, None].float(), k, stride=1, padding=voxels)[0, 0] > 0


def visual_hull(c2w: Tensor, K: Tensor, masks: list[Tensor], res: int, margin_voxels: int = 2, tol_px: float = 0.0,
                votes: int = 1, min_seen_frac: float = 0.0, voting: Optional[Tensor] = None) -> tuple[Tensor, Tensor, Tensor]:
    """Coarse-to-fine hull: carve [-1, 1]^3 at 64^3, shrink the box to what is left, carve again
    (`carve`'s tolerance, votes, seen fraction and voting views at both levels).

    Returns aabb (2, 3), the occupancy (res, res, res) bool [x, y, z] with a safety margin, and
    the fine level's `carvers` (res, res, res) int32, without it.
    """
    outside = [outside_distance(m) for m in masks] if tol_px > 0 else None  # once for both levels
    opts = dict(tol_px=tol_px, votes=votes, min_seen_frac=min_seen_frac, outside=outside, voting=voting)
    box = torch.tensor([[-1.0] * 3, [1.0] * 3], device=c2w.device)
    coarse = carve(c2w, K, masks, box, 64, **opts)
    if not coarse.any():
        raise ValueError("the masks carve away everything: poses and masks disagree")
    idx = coarse.nonzero()
    size = (box[1] - box[0]) / 64
    lo = box[0] + (idx.min(0).values - margin_voxels) * size
    hi = box[0] + (idx.max(0).values + 1 + margin_voxels) * size
    centre, half = (lo + hi) / 2, (hi - lo).max() / 2  # cubic, so voxels are isotropic
    aabb = torch.stack([centre - half, centre + half])
    voters = carvers(c2w, K, masks, aabb, res, **opts)
    return aabb, dilate(voters >= KEPT, 1), voters


def ray_box(origins: Tensor, dirs: Tensor, aabb: Tensor) -> tuple[Tensor, Tensor]:
    """Slab test: entry and exit distances (N,) of rays (N, 3) with a box; t_far < t_near on a miss."""
    inv = 1.0 / torch.where(dirs.abs() < 1e-9, torch.full_like(dirs, 1e-9), dirs)
    t0, t1 = (aabb[0] - origins) * inv, (aabb[1] - origins) * inv
    near = torch.minimum(t0, t1).amax(-1).clamp(min=0)
    far = torch.maximum(t0, t1).amin(-1)
    return near, far


@torch.no_grad()
def ray_hull_interval(origins: Tensor, dirs: Tensor, aabb: Tensor, occ: Tensor, steps: int) -> tuple[Tensor, Tensor, Tensor]:
    """First and last distance (N,) where rays (N, 3) are in the hull, and whether they hit it (N,).

    Marches `steps` points across the box and looks the occupancy up by index.
    """
    near, far = ray_box(origins, dirs, aabb)
    res = occ.shape[0]
    if res ** 3 >= 2**31:
        raise ValueError(f"occupancy grids above 1290^3 overflow the flat int32 index (got {res}^3)")
    span = (far - near).clamp(min=0)
    s = (torch.arange(steps, device=origins.device) + 0.5) / steps
    t = near[:, None] + span[:, None] * s  # (N, S)
    # voxel index per axis in int32, folded into one flat index: a third of the memory traffic of
    # (N, S, 3) points and int64 indices (truncation and floor agree after the clamp; rounding may
    # differ from an (N, S, 3) formulation exactly on a voxel boundary)
    scale = res / (aabb[1] - aabb[0])
    flat = None
    for a in range(3):
        o = (origins[:, a] - aabb[0, a]) * scale[a]
        ia = torch.addcmul(o[:, None], dirs[:, a, None] * scale[a], t).to(torch.int32).clamp_(0, res - 1)
        flat = ia if flat is None else flat.mul_(res).add_(ia)
    inside = occ.reshape(-1)[flat] & (far > near)[:, None]
    hit = inside.any(1)
    first = torch.where(inside, s, torch.full_like(s, 2.0)).amin(1)
    last = torch.where(inside, s, torch.full_like(s, -1.0)).amax(1)
    pad = 1.0 / steps
    t_in = near + (first - pad).clamp(0, 1) * span
    t_out = near + (last + pad).clamp(0, 1) * span
    return t_in, t_out, hit
