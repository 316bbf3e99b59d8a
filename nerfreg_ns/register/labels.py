"""The labels of every image, rendered and checked: the model drawn at its label pose gives BOP's
`mask/`, `mask_visib/` and `scene_gt_info.json`, and its agreement with the image's input mask
says which labels to trust (`labels_qa.json`).

Both the visibility and the check look at where silhouette and input mask disagree more than
`deep_px` deep (3% of the silhouette's size, at least 2 px): a ragged mask, a pose a little off
or a slightly rough model disagree only in slivers along the outline, which do not count. A single
object is captured alone, so all of its silhouette is visible unless the input mask leaves a deep
part of it out (an occluder, or a bad mask, which the check then flags).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from nerfreg_ns.geometry.cameras import project

DISAGREE_MAX = 0.03
"""A frame is flagged when silhouette and input mask disagree deeply over more than this fraction
of the silhouette's area (chosen on the realistic T-LESS runs: benchmarks/README.md)."""


@dataclass
class RenderedLabel:
    """The model at one image's label pose: `mask` (H, W) bool, the silhouette inside the image;
    `px_count_all` and `bbox_obj` (x, y, w, h as the BOP toolkit writes it: w = max - min) over
    the whole silhouette, also where it leaves the image."""

    mask: np.ndarray
    px_count_all: int
    bbox_obj: list[int]


def bbox_xywh(mask: np.ndarray, dx: int = 0, dy: int = 0) -> list[int]:
    """BOP's 2D box of a mask's pixels (x, y, w, h), shifted by (dx, dy); [-1, -1, -1, -1] if empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return [-1, -1, -1, -1]
    return [int(xs.min() + dx), int(ys.min() + dy), int(xs.max() - xs.min()), int(ys.max() - ys.min())]


def render_label(renderer, vertices: np.ndarray, K: np.ndarray, T_camcv_obj: np.ndarray, width: int, height: int) -> RenderedLabel:
    """Renders the model (`renderer` of the mesh whose `vertices` (N, 3) are in the object frame)
    seen through K (3, 3) at T_camcv_obj (4, 4). Only the projected box of the model is ray cast
    (all of it, also outside the image), so large images cost what the object covers."""
    uv, z = project(K, T_camcv_obj, vertices)
    front = z > 0
    empty = RenderedLabel(np.zeros((height, width), bool), 0, [-1, -1, -1, -1])
    if not front.any():
        return empty
    x0, y0 = np.floor(uv[front].min(0)).astype(int) - 1
    x1, y1 = np.ceil(uv[front].max(0)).astype(int) + 2
    # the whole silhouette, but never a canvas larger than three times the image either way
    x0, y0 = max(x0, -width), max(y0, -height)
    x1, y1 = min(x1, 2 * width), min(y1, 2 * height)
    if x1 <= x0 or y1 <= y0:
        return empty
    K_box = K.copy()
    K_box[0, 2] -= x0
    K_box[1, 2] -= y0
    box = renderer.render(K_box, np.linalg.inv(T_camcv_obj), x1 - x0, y1 - y0).mask
    mask = np.zeros((height, width), bool)
    ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if ix1 > ix0 and iy1 > iy0:
        mask[iy0:iy1, ix0:ix1] = box[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0]
    return RenderedLabel(mask, int(box.sum()), bbox_xywh(box, x0, y0))


def deep_px(px_count_all: int) -> int:
    """How deep (px) a disagreement must be to count, for a silhouette of `px_count_all` pixels."""
    return max(2, int(round(0.03 * np.sqrt(max(px_count_all, 1)))))


def deep_part(mask: np.ndarray, depth_px: int) -> np.ndarray:
    """The parts of `mask` (H, W) more than `depth_px` thick (a morphological opening): thin
    slivers along an outline drop out."""
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * depth_px + 1, 2 * depth_px + 1))
    return cv2.dilate(cv2.erode(mask.astype(np.uint8), k), k).astype(bool)


def visible_mask(rendered: np.ndarray, input_mask: np.ndarray, depth_px: int) -> np.ndarray:
    """The rendered silhouette (H, W) minus what the input mask leaves out more than `depth_px` deep."""
    return rendered & ~deep_part(rendered & ~input_mask, depth_px)


def gt_info(label: RenderedLabel, visib: np.ndarray) -> dict:
    """One instance's scene_gt_info.json entry. Without depth images every pixel of the silhouette
    counts as having a valid depth (`px_count_valid` = the silhouette's pixels inside the image)."""
    visib_count = int(visib.sum())
    return {
        "bbox_obj": label.bbox_obj if visib_count else [-1, -1, -1, -1],
        "bbox_visib": bbox_xywh(visib),
        "px_count_all": label.px_count_all,
        "px_count_valid": int(label.mask.sum()),
        "px_count_visib": visib_count,
        "visib_fract": float(visib_count / label.px_count_all) if label.px_count_all else 0.0,
    }


def _outline(mask: np.ndarray) -> np.ndarray:
    m = mask.astype(np.uint8)
    return (m - cv2.erode(m, np.ones((3, 3), np.uint8))).astype(bool)


def outline_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean distance (px) between the outlines of masks a and b (H, W), both ways; inf if either is empty."""
    oa, ob = _outline(a), _outline(b)
    if not oa.any() or not ob.any():
        return float("inf")
    to_b = cv2.distanceTransform((~ob).astype(np.uint8), cv2.DIST_L2, 5)
    to_a = cv2.distanceTransform((~oa).astype(np.uint8), cv2.DIST_L2, 5)
    return float(0.5 * (to_b[oa].mean() + to_a[ob].mean()))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = int((a | b).sum())
    return float((a & b).sum() / union) if union else 0.0


def check_label(rendered: RenderedLabel, input_mask: np.ndarray) -> dict:
    """How well the model at its label pose fits the input mask (H, W): IoU, mean outline
    distance (px), the fraction of the silhouette where they disagree deeply, and whether the
    frame is flagged (and why)."""
    depth = deep_px(rendered.px_count_all)
    deep = float(deep_part(rendered.mask ^ input_mask, depth).sum() / max(rendered.px_count_all, 1))
    why = ""
    if not input_mask.any() or not rendered.mask.any():
        why = "the input mask is empty" if not input_mask.any() else "the model is not in the image at its label pose"
    elif deep > DISAGREE_MAX:
        why = f"model and mask disagree over {100 * deep:.0f}% of the silhouette, more than {depth} px deep"
    return {"iou": iou(rendered.mask, input_mask), "outline_px": outline_distance(rendered.mask, input_mask),
            "disagreement": deep, "deep_px": depth, "flagged": bool(why), "why": why}


@dataclass
class ImageLabel:
    """One image's label: the object's pose T_camcv_obj (4, 4, the run's unit), the rendered
    silhouette, its visible part (H, W), the scene_gt_info entry and the check (`check_label`)."""

    T_camcv_obj: np.ndarray
    rendered: RenderedLabel
    visible: np.ndarray
    info: dict
    check: dict


def label_sequence(mesh_obj, T_world_obj: np.ndarray, T_world_camcv: list[np.ndarray], Ks: list[np.ndarray],
                   masks: list[np.ndarray], title: str = "labels") -> list[ImageLabel]:
    """Renders and checks the label of every image of a sequence: the model `mesh_obj` (object
    frame) placed in the sequence's world at T_world_obj (4, 4), seen by each camera."""
    from rich.progress import Progress

    from nerfreg_ns.data.render import Renderer
    from nerfreg_ns.geometry.transforms import invert

    renderer, verts = Renderer(mesh_obj), np.asarray(mesh_obj.vertices)
    out = []
    with Progress(transient=True) as progress:
        task = progress.add_task(f"rendering {title}", total=len(masks))
        for T_wc, K, mask in zip(T_world_camcv, Ks, masks, strict=True):
            T_co = invert(T_wc) @ T_world_obj
            h, w = mask.shape
            rendered = render_label(renderer, verts, K, T_co, w, h)
            visible = visible_mask(rendered.mask, mask, deep_px(rendered.px_count_all))
            out.append(ImageLabel(T_co, rendered, visible, gt_info(rendered, visible), check_label(rendered, mask)))
            progress.advance(task)
    return out


def qa_rows(labels: dict[str, list[ImageLabel]]) -> list[dict]:
    """labels_qa.json's rows: per sequence and image, the check's figures, worst first."""
    rows = [{"sequence": seq, "im_id": i, **{k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                                              for k, v in lab.check.items()}}
            for seq, labs in labels.items() for i, lab in enumerate(labs)]
    return sorted(rows, key=lambda r: -r["disagreement"])


def label_rule() -> str:
    """The flagging rule in words, for labels_qa.json."""
    return (f"flagged when the model rendered at the label pose and the input mask disagree over more than {100 * DISAGREE_MAX:g}% "
            "of the silhouette's area, counting only disagreement more than deep_px deep (3% of the silhouette's size, at least 2 px)")
