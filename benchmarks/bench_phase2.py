"""Phase-2 variants (keys and queries) on one trained field: accuracy against training time.

Loads a finished `nerfreg-feature` run of a `nerfreg-synth` case (e.g. the one
`bench_feature.py` leaves in WORK/runs), replaces its key head and query encoder by fresh ones,
trains them with the given settings (the field stays fixed) and prints, every `--every` steps,
the held-out key accuracy on upper and lower views (fraction of foreground pixels whose best
key is within 5% of d of the true point). One JSON line per probe.

    .venv/bin/python benchmarks/bench_phase2.py --run /tmp/bench_feature/runs/seq1/nerfreg-feature/bench/config.yml \
        --case /tmp/bench_feature/case --size 48 --steps 3200 --schedule cosine

Run it alone on the machine: the timings are wall time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def truth_source(pipe, truth, n_views: int, size: int, pool: str, elevation: tuple[float, float]):
    """An EmbeddingBatchSource from CAD renders of upper views: exact point maps in the run's unit box."""
    import numpy as np
    import torch
    from probe_views import probe_views

    from nerfreg_ns.data.mesh import load_mesh, sample_surface
    from nerfreg_ns.embedding.crops import crop, square_box
    from nerfreg_ns.embedding.train import EmbeddingBatchSource
    from nerfreg_ns.geometry.transforms import apply
    from nerfreg_ns.nerf.export import ns_to_input

    T_ns_in, scale = ns_to_input(pipe)
    dev = pipe.model.device

    def to_unit(p_in: np.ndarray) -> torch.Tensor:
        return pipe.model.to_unit(torch.from_numpy(scale * apply(T_ns_in, p_in)).float().to(dev))

    images, point_maps, masks, seen = [], [], [], []
    for v in probe_views(truth, elevation, n_views, 128, seed=7):
        m = torch.from_numpy(v.mask).to(dev)
        unit = torch.zeros(128, 128, 3, device=dev)
        unit[m] = to_unit(v.points_input[v.mask])
        box = square_box(m)
        images.append(crop(torch.from_numpy(v.rgb).float().permute(2, 0, 1).to(dev) / 255, box, size))
        point_maps.append(crop(unit.permute(2, 0, 1), box, size, mode="nearest"))
        masks.append(crop(m[None].float(), box, size, mode="nearest"))
        seen.append(unit[m])
    if pool == "mesh":
        mesh = load_mesh(truth.model_path)
        mesh.apply_translation(-mesh.bounds.mean(axis=0))
        pts, _ = sample_surface(mesh, 50000, 0)
        surface = to_unit(apply(truth.T_seq1_obj, pts))
    else:
        surface = torch.cat(seen)
        surface = surface[torch.randperm(len(surface), device=dev)[:50000]]
    return EmbeddingBatchSource(images=torch.stack(images), point_maps=torch.stack(point_maps),
                                masks=torch.stack(masks), surface_points=surface)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, required=True, help="config.yml of a trained nerfreg-feature run")
    ap.add_argument("--case", type=Path, required=True, help="the nerfreg-synth case folder (truth.json)")
    ap.add_argument("--steps", type=int, default=3200)
    ap.add_argument("--size", type=int, default=48, help="query crop side (px)")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--schedule", choices=("constant", "cosine"), default="cosine")
    ap.add_argument("--channels", type=int, nargs="+", default=[16, 32, 64], help="U-Net channels per level")
    ap.add_argument("--extra-views", type=int, default=0)
    ap.add_argument("--extra-elevation", type=float, nargs=2, default=(-35.0, 5.0))
    ap.add_argument("--relight-copies", type=int, default=0, help="relit copies per training view (see embedding.relight)")
    ap.add_argument("--source", choices=("field", "truth"), default="field",
                    help="truth: train on CAD renders of upper views with their exact points instead of the field's "
                         "(a diagnostic: what the encoder can learn when the geometry is perfect)")
    ap.add_argument("--truth-views", type=int, default=60, help="--source truth: upper views (10..80 deg) rendered")
    ap.add_argument("--truth-elevation", type=float, nargs=2, default=(10.0, 80.0), help="--source truth: elevation band (deg)")
    ap.add_argument("--rotation", type=float, default=None, help="in-plane rotation augmentation range (deg); default: the run's")
    ap.add_argument("--pool", choices=("seen", "mesh"), default="seen",
                    help="--source truth: negatives and candidates from the seen pixels' points, or from the whole CAD surface")
    ap.add_argument("--save", type=Path, default=None, help="save the trained key head and query encoder here (torch)")
    ap.add_argument("--probe-views", type=int, default=12, help="held-out views per group")
    ap.add_argument("--every", type=int, default=800)
    ap.add_argument("--pixels-per-image", type=int, default=None, help="InfoNCE queries per crop; default: the run's")
    ap.add_argument("--negatives", type=int, default=None, help="negative keys per step; default: the run's")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import numpy as np
    import torch
    from probe_views import probe_views

    from nerfreg_ns.data.truth import read_truth
    from nerfreg_ns.embedding.keys import KeyHead
    from nerfreg_ns.embedding.query import QueryEncoder
    from nerfreg_ns.embedding.train import embedding_step
    from nerfreg_ns.nerf.export import load_run
    from nerfreg_ns.nerf.pipeline import phase_cosine
    from nerfreg_ns.nerf.probe import correspondence_accuracy

    torch.manual_seed(args.seed)
    pipe, _ = load_run(args.run)
    cfg, model = pipe.config, pipe.model
    cfg.query_size, cfg.extra_views, cfg.extra_elevation = args.size, args.extra_views, tuple(args.extra_elevation)
    cfg.relight_copies = args.relight_copies
    if args.pixels_per_image is not None:
        cfg.embed_pixels_per_image = args.pixels_per_image
    if args.negatives is not None:
        cfg.embed_negatives = args.negatives
    if args.rotation is not None:
        import dataclasses

        cfg.augment = dataclasses.replace(cfg.augment, rotation_deg=args.rotation)
    truth = read_truth(args.case / "truth.json")
    t = time.time()
    if args.source == "truth":
        pipe._embed_source = truth_source(pipe, truth, args.truth_views, args.size, args.pool, tuple(args.truth_elevation))
    src = pipe.embedding_source()
    print(json.dumps({"source_s": round(time.time() - t, 1), "views": len(src.images)}), flush=True)
    model.query_encoder = QueryEncoder(model.config.emb_dim, tuple(args.channels)).to(model.device)
    model.key_head = KeyHead(model.config.emb_dim, model.config.key_freqs, model.config.key_hidden).to(model.device)
    opt = torch.optim.Adam([*model.query_encoder.parameters(), *model.key_head.parameters()], lr=args.lr)

    groups = {"upper 10..80": (10.0, 80.0), "lower -10..-30": (-30.0, -10.0)}
    probes = {k: probe_views(truth, el, args.probe_views, 128, seed=123 + i) for i, (k, el) in enumerate(groups.items())}

    def probe() -> dict:
        model.eval()
        out = {}
        for k, v in probes.items():
            acc = correspondence_accuracy(pipe, v, 0.05 * truth.diameter)
            out[k] = round(acc["raw"], 4)
            out[k + " reachable"] = round(acc["reachable"], 3)
        model.train()
        return out

    model.train()
    train_s, top1 = 0.0, []
    for step in range(args.steps):
        t = time.time()
        if args.schedule == "cosine":
            for g in opt.param_groups:
                g["lr"] = args.lr * phase_cosine(step, 0, args.steps, cfg.embed_lr_final)
        out = embedding_step(model.query_encoder, model.key_head, src, cfg.augment, batch_images=cfg.embed_batch_images,
                             pixels_per_image=cfg.embed_pixels_per_image, negatives=cfg.embed_negatives)
        (out["infonce"] + out["mask_bce"]).backward()
        opt.step()
        opt.zero_grad()
        train_s += time.time() - t
        top1.append(out["acc_top1"].item())
        if (step + 1) % args.every == 0 or step + 1 == args.steps:
            print(json.dumps({"step": step + 1, "train_s": round(train_s), "train_top1": round(float(np.mean(top1[-100:])), 3),
                              **probe()}), flush=True)
    if args.save:
        torch.save({"query_encoder": model.query_encoder.state_dict(), "key_head": model.key_head.state_dict(),
                    "channels": tuple(args.channels), "size": args.size, "source": args.source}, args.save)
    print(json.dumps({"settings": {k: v if not isinstance(v, Path) else str(v) for k, v in vars(args).items()}}))


if __name__ == "__main__":
    main()
