"""Benchmark of `nerfreg-feature` (issue: CPU-practical object NeRF with a feature field).

    .venv/bin/python benchmarks/bench_feature.py [--mesh ../shared/data/tless_scaled/obj_05.stl] [--work /tmp/bench_feature]

1. renders the case (60 views per side, 128x128) with nerfreg-synth;
2. trains seq1 with the default `ns-train nerfreg-feature` (wall time);
3. exports it and scores the surface against the visible true surface (nerfreg-eval);
4. measures rays/s of nerfreg-feature and of nerfacto (LPIPS switched off here only) in one run;
5. scores queries and keys on held-out upper views and on lower views by elevation, twice: views
   upright as in training with the crop upright ("upright"), and views at a random roll with the
   crop's turn chosen by PnP as `embedding-pnp` does ("any roll").
Run it alone on the machine: another busy core slows training several times.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "tests"))


def sh(*cmd: str) -> float:
    t = time.time()
    subprocess.run([str(c) for c in cmd], check=True, stdout=subprocess.DEVNULL)
    return time.time() - t


def rays_per_second(method: str, data: Path, steps: int = 12) -> float:
    """Train rays/s of a method's default config (data manager made serial, CPU) on `data`."""
    import torch
    from nerfstudio.configs.method_configs import method_configs
    from nerfstudio.data.datamanagers.base_datamanager import VanillaDataManagerConfig

    if method == "nerfacto":
        import torchmetrics.image.lpip as lpip

        class NoLPIPS(torch.nn.Module):  # LPIPS downloads AlexNet weights: off, for this benchmark only
            def __init__(self, *a, **k):
                super().__init__()

            def forward(self, a, b):
                return torch.zeros(())

        lpip.LearnedPerceptualImagePatchSimilarity = NoLPIPS  # nerfacto imports it inside populate_modules
        cfg = method_configs["nerfacto"]
        dm = cfg.pipeline.datamanager
        cfg.pipeline.datamanager = VanillaDataManagerConfig(
            dataparser=dm.dataparser, train_num_rays_per_batch=dm.train_num_rays_per_batch, eval_num_rays_per_batch=dm.eval_num_rays_per_batch
        )
    else:
        from nerfreg_ns.nerf.config import make_trainer_config

        cfg = make_trainer_config()
    cfg.machine.device_type = "cpu"
    cfg.vis = "tensorboard"
    cfg.data = data
    cfg.pipeline.datamanager.data = data
    cfg.output_dir = Path("/tmp/nerfreg_bench_rays")
    cfg.set_timestamp()
    trainer = cfg.setup(local_rank=0, world_size=1)
    trainer.setup()
    for s in range(3):
        trainer.train_iteration(s)
    t = time.time()
    for s in range(3, 3 + steps):
        trainer.train_iteration(s)
    return steps * cfg.pipeline.datamanager.train_num_rays_per_batch / (time.time() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mesh", default=str(ROOT.parent / "shared/data/tless_scaled/obj_05.stl"))
    ap.add_argument("--work", default="/tmp/bench_feature")
    ap.add_argument("--skip-train", action="store_true", help="reuse the run in --work")
    ap.add_argument("--no-rays", action="store_true", help="leave out the rays/s comparison with nerfacto")
    ap.add_argument("--train-args", nargs=argparse.REMAINDER, default=[],
                    help="more ns-train options for the timed training (last on the line), e.g. --pipeline.embed-negatives 500")
    args = ap.parse_args()
    work = Path(args.work)
    case, runs, export = work / "case", work / "runs", work / "export"
    results: dict = {"mesh": args.mesh}

    def save() -> None:  # after every stage: a late failure keeps what was measured
        (work / "results.json").write_text(json.dumps(results, indent=2))

    work.mkdir(parents=True, exist_ok=True)
    if not case.exists():
        sh(BIN / "nerfreg-synth", "--mesh", args.mesh, "--out", case, "--views", "60")
    run = runs / "seq1" / "nerfreg-feature" / "bench"
    if not args.skip_train:
        results["train_wall_s"] = sh(BIN / "ns-train", "nerfreg-feature", "--data", case / "seq1", "--output-dir", runs, "--timestamp", "bench",
                                     *args.train_args)
        results["train_args"] = args.train_args
        save()
    t = time.time()
    sh(BIN / "nerfreg-export", "--load-config", run / "config.yml", "--out", export, "--overwrite")
    results["export_wall_s"] = time.time() - t
    sh(BIN / "nerfreg-eval", "--truth", case / "truth.json", "--recon", export / "surface.ply", "--recon-frame", "seq1",
       "--visible-from", "seq1", "--out", work / "eval_surface.json")
    results["surface"] = json.loads((work / "eval_surface.json").read_text())["reconstruction"]
    save()

    # queries and keys
    from probe_views import probe_views

    from nerfreg_ns.data.mesh import SurfaceDistance, load_mesh, sample_surface
    from nerfreg_ns.data.truth import read_truth
    from nerfreg_ns.geometry.symmetry import find_symmetries
    from nerfreg_ns.nerf.export import load_run
    from nerfreg_ns.nerf.probe import correspondence_accuracy, query_rotations

    truth = read_truth(case / "truth.json")
    mesh = load_mesh(truth.model_path)
    pts, _ = sample_surface(mesh, 5000, 0)
    sym_obj = find_symmetries(pts, SurfaceDistance(mesh), truth.diameter)
    sym_seq1 = [truth.T_seq1_obj @ S @ np.linalg.inv(truth.T_seq1_obj) for S in sym_obj]
    results["symmetries_found"] = len(sym_obj) - 1
    pipeline, _ = load_run(run / "config.yml")
    groups = {"upper held-out 10..80": (10.0, 80.0), "lower -10..-30": (-30.0, -10.0),
              "lower -30..-50": (-50.0, -30.0), "lower -50..-80": (-80.0, -50.0)}
    results["keys"], results["keys any roll"] = {}, {}
    for name, el in groups.items():
        views = probe_views(truth, el, 20, 128, seed=123)
        results["keys"][name] = correspondence_accuracy(pipeline, views, 0.05 * truth.diameter, sym_seq1)
        rolled = probe_views(truth, el, 20, 128, seed=123, roll_deg=180.0)
        results["keys any roll"][name] = correspondence_accuracy(pipeline, rolled, 0.05 * truth.diameter, sym_seq1,
                                                                 rotations=query_rotations(pipeline))
        save()
    del pipeline

    if not args.no_rays:
        results["rays_per_s"] = {m: rays_per_second(m, case / "seq1") for m in ("nerfreg-feature", "nerfacto")}
        results["rays_ratio"] = results["rays_per_s"]["nerfreg-feature"] / results["rays_per_s"]["nerfacto"]
        save()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
