"""What a person reads after `nerfreg-register`: report.png (clouds before and after, hypotheses by
score, the model over a few masks) and report.html, a page with that picture, the label check
table (sortable), the worst labels and a contact sheet per sequence (the model's outline drawn
over every image)."""

from __future__ import annotations

import html
import io
from pathlib import Path

import cv2
import numpy as np

from nerfreg_ns.data.images import encode_png, read_image
from nerfreg_ns.geometry.cameras import in_image, project
from nerfreg_ns.geometry.points import evenly_spaced
from nerfreg_ns.geometry.transforms import apply, invert
from nerfreg_ns.io_utils import write_bytes_atomic
from nerfreg_ns.register.labels import DISAGREE_MAX, ImageLabel
from nerfreg_ns.register.run import Result
from nerfreg_ns.registry import SequenceData

TILE = 160
"""Side (px) of a contact sheet's tiles."""


def write_report(path: Path, seq1: SequenceData, seq2: SequenceData, result: Result, mesh) -> None:
    """report.png: clouds before and after, hypotheses by score, the model over a few masks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    T = result.best.T_seq1_seq2
    fig = plt.figure(figsize=(14, 9))
    rng = np.random.default_rng(0)
    a = seq1.points[rng.permutation(len(seq1.points))[:3000]]
    b = seq2.points[rng.permutation(len(seq2.points))[:3000]]
    for n, (title, bb) in enumerate((("before (seq2 in its own frame)", b), ("after: seq2 moved into seq1", apply(T, b))), start=1):
        ax = fig.add_subplot(3, 4, n)
        ax.scatter(a[:, 0], a[:, 2], s=1, c="tab:blue", label="seq1")
        ax.scatter(bb[:, 0], bb[:, 2], s=1, c="tab:orange", label="seq2")
        ax.set_title(title, fontsize=9)
        ax.set_aspect("equal")
        ax.legend(fontsize=7, markerscale=5)
    ax = fig.add_subplot(3, 2, 2)
    scores = [h.score.value for h in result.hypotheses]
    ax.barh(range(len(scores)), scores, color=["tab:green" if i == 0 else "tab:gray" for i in range(len(scores))])
    label = lambda h: f"{h.source} + {h.refiner}" if h.refiner else h.source  # noqa: E731
    ax.set_yticks(range(len(scores)), [label(h) for h in result.hypotheses], fontsize=6)
    ax.invert_yaxis()
    ax.set_title(f"hypotheses by verifier score (best: {label(result.best)}, confident: {result.best.score.confident})", fontsize=9)
    verts = np.asarray(mesh.vertices)
    for row, (seq, T_seq_seq1) in enumerate(((seq1, np.eye(4)), (seq2, invert(T))), start=1):
        for col, i in enumerate(evenly_spaced(len(seq.masks), 4)):
            ax = fig.add_subplot(3, 4, 4 * row + col + 1)
            uv, z = project(seq.Ks[i], invert(seq.T_world_camcv[i]) @ T_seq_seq1, verts)
            h, w = seq.masks[i].shape
            uv = uv[(z > 0) & in_image(uv, w, h)]  # imshow puts pixel (u, v)'s centre at (u, v), as the intrinsics do
            ax.imshow(seq.masks[i], cmap="gray")
            ax.scatter(uv[:, 0], uv[:, 1], s=0.2, c="tab:red", alpha=0.3)
            ax.set_xlim(-0.5, w - 0.5)
            ax.set_ylim(h - 0.5, -0.5)
            ax.set_title(f"{seq.name} image {i}: mask + merged model", fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    write_bytes_atomic(path, buf.getvalue())


def overlay(image: np.ndarray, rendered: np.ndarray, input_mask: np.ndarray, side: int = TILE) -> np.ndarray:
    """An image (H, W, 3) reduced to fit `side`, with the input mask's outline in blue and the
    model's (rendered at the label pose) in green; where they agree the green covers the blue."""
    h, w = rendered.shape
    s = side / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    tile = cv2.resize(image[:, :, :3], size, interpolation=cv2.INTER_AREA)
    for mask, colour in ((input_mask, (60, 140, 255)), (rendered, (40, 220, 60))):
        small = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
        contours, _ = cv2.findContours(small, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(tile, contours, -1, colour, 1)
    canvas = np.zeros((side, side, 3), np.uint8)
    canvas[: tile.shape[0], : tile.shape[1]] = tile
    return canvas


def picture(seq: SequenceData, i: int) -> np.ndarray:
    """Image i of a sequence (H, W, 3), or its mask in grey when the run knows no image files."""
    if seq.images:
        return read_image(seq.images[i])
    return np.repeat(seq.masks[i][:, :, None].astype(np.uint8) * 110, 3, axis=2)


def contact_sheet(seq: SequenceData, labels: list[ImageLabel], per_row: int = 10) -> np.ndarray:
    """Every image of a sequence as an `overlay` tile, its number written on it, flagged ones
    framed in red."""
    tiles = []
    for i, (lab, mask) in enumerate(zip(labels, seq.masks, strict=True)):
        tile = overlay(picture(seq, i), lab.rendered.mask, mask)
        if lab.check["flagged"]:
            cv2.rectangle(tile, (0, 0), (TILE - 1, TILE - 1), (255, 40, 40), 3)
        cv2.putText(tile, str(i), (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(tile)
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % per_row)
    return np.concatenate([np.concatenate(tiles[r:r + per_row], axis=1) for r in range(0, len(tiles), per_row)], axis=0)


_SORT_JS = """
function sortBy(col, numeric) {
  const body = document.querySelector('#labels tbody');
  const rows = Array.from(body.rows);
  const asc = body.dataset.col == col ? body.dataset.asc != 'true' : true;
  rows.sort((a, b) => {
    const x = a.cells[col].dataset.v, y = b.cells[col].dataset.v;
    const c = numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y);
    return asc ? c : -c;
  });
  rows.forEach(r => body.appendChild(r));
  body.dataset.col = col; body.dataset.asc = asc;
}
"""


def _cell(value, fmt: str = "{}") -> str:
    if value is None:
        return '<td data-v="1e9">-</td>'
    return f'<td data-v="{html.escape(str(value))}">{html.escape(fmt.format(value))}</td>'


def _precision_html(reg: dict) -> str:
    d = reg.get("score_details", {})
    if "precision" not in d:
        return ""
    return (f" The views allow a precision of {100 * d['precision']:.2f}% of d (one standard error; sequence 1's views "
            f"{100 * d['view_error_seq1']:.2f}%, sequence 2's {100 * d['view_error_seq2']:.2f}%).")


def write_report_html(out: Path, reg: dict, seqs: list[SequenceData], labels: dict[str, list[ImageLabel]],
                      qa: list[dict], worst: int = 8) -> None:
    """report.html beside report.png, with report_SEQ.png contact sheets and report_worst.png."""
    seqs = [seq for seq in seqs if labels[seq.name]]  # a sequence without cameras has no labels to show
    for seq in seqs:
        write_bytes_atomic(out / f"report_{seq.name}.png", encode_png(contact_sheet(seq, labels[seq.name])))
    by_name = {seq.name: seq for seq in seqs}
    worst_rows = qa[:worst]
    if worst_rows:
        tiles = [overlay(picture(by_name[r["sequence"]], r["im_id"]), labels[r["sequence"]][r["im_id"]].rendered.mask,
                         by_name[r["sequence"]].masks[r["im_id"]], side=2 * TILE) for r in worst_rows]
        write_bytes_atomic(out / "report_worst.png", encode_png(np.concatenate(tiles, axis=1)))
    flagged = sum(r["flagged"] for r in qa)
    head = [("sequence", False), ("image", True), ("IoU", True), ("outline distance (px)", True),
            ("disagreement (% of silhouette)", True), ("flagged", False)]
    rows = "\n".join(
        "<tr>" + _cell(r["sequence"]) + _cell(r["im_id"]) + _cell(r["iou"], "{:.3f}") + _cell(r["outline_px"], "{:.2f}")
        + _cell(100 * r["disagreement"], "{:.1f}") + _cell(r["why"] or "", "{}") + "</tr>"
        for r in qa)
    verdict = "confident" if reg["confident"] else "NOT confident"
    syms = reg.get("symmetries") or {}
    n_sym = f"{len(syms.get('discrete_seq1', []))} discrete, {len(syms.get('continuous_seq1', []))} continuous"
    T = np.asarray(reg["T_seq1_seq2"])
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>nerfreg report: {html.escape(str(reg['object']['name']))}</title>
<style>body{{font-family:sans-serif;margin:1.5em;max-width:1700px}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 8px;font-size:13px}} th{{cursor:pointer;background:#eee}}
img{{max-width:100%}} pre{{background:#f6f6f6;padding:6px}}</style>
<script>{_SORT_JS}</script></head><body>
<h1>{html.escape(str(reg['object']['name']))}: sequence 2 registered into sequence 1</h1>
<p>Best hypothesis <b>{html.escape(str(reg['source']))}</b>, refined by {html.escape(str(reg['refiner']))}, score
{reg['score']:.4f}: <b id="verdict">{verdict}</b>.{_precision_html(reg)} Unit: {html.escape(str(reg['unit']))}. Symmetries of the merged model: {n_sym}.</p>
<pre>T_seq1_seq2 =\n{html.escape(np.array2string(T, precision=5, suppress_small=True))}</pre>
<h2>Registration</h2><img id="summary" src="report.png" alt="registration summary">
<h2>Label check</h2>
<p id="qa-summary">{flagged} of {len(qa)} frames flagged: the model rendered at the label pose disagrees with the frame's
input mask over more than {100 * DISAGREE_MAX:.0f}% of its silhouette (deeper than a few pixels). A flagged frame has a bad input mask,
a bad camera pose, or the registration is wrong. Green: the model's outline; blue: the input mask's. Click a column to sort.</p>
{'<h3>Worst labels</h3><img id="worst" src="report_worst.png" alt="worst labels">' if worst_rows else '<p>No images to label.</p>'}
<table id="labels"><thead><tr>{''.join(f'<th onclick="sortBy({i}, {str(num).lower()})">{h}</th>' for i, (h, num) in enumerate(head))}
</tr></thead><tbody>
{rows}
</tbody></table>
{''.join(f'<h2>Contact sheet: {seq.name}</h2><img class="sheet" src="report_{seq.name}.png" alt="{seq.name} contact sheet">' for seq in seqs)}
</body></html>
"""
    write_bytes_atomic(out / "report.html", page.encode())

