"""The `nerfreg-feature` method specification (entry point `nerfstudio.method_configs`).

Defaults are chosen for a 2-core CPU: a plain data manager (no worker processes), no periodic
evaluation, tensorboard logging, and the viewer quits when training ends.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nerfstudio.configs.base_config import MachineConfig, ViewerConfig
from nerfstudio.data.datamanagers.base_datamanager import VanillaDataManager, VanillaDataManagerConfig
from nerfstudio.engine.optimizers import AdamOptimizerConfig
from nerfstudio.engine.schedulers import ExponentialDecaySchedulerConfig
from nerfstudio.plugins.types import MethodSpecification

from nerfreg_ns.nerf.dataparser import NerfregDataParserConfig
from nerfreg_ns.nerf.dataset import NerfregDataset
from nerfreg_ns.nerf.model import NerfregModelConfig
from nerfreg_ns.nerf.pipeline import NerfregPipelineConfig
from nerfreg_ns.nerf.trainer import NerfregTrainerConfig

@dataclass
class FusedAdamOptimizerConfig(AdamOptimizerConfig):
    """Adam with torch's fused update (one kernel for all of a group's tensors, on CPU as on
    CUDA): the same update as the per-tensor loop nerfstudio's Adam runs, several times faster
    on the dense grids (benchmarks/README.md)."""

    fused: bool = True
    """Use the fused implementation."""


NERF_STEPS = 1200
EMBED_STEPS = 5000
# Phase 2 learns on well past 3200 steps, but 6400 steps overran the 10-minute budget on a slow
# day: 5000 keeps a margin (benchmarks/README.md).


def make_trainer_config(nerf_steps: int = NERF_STEPS, embed_steps: int = EMBED_STEPS,
                        method_name: str = "nerfreg-feature") -> NerfregTrainerConfig:
    """The full default configuration; tests build smaller ones through the same function."""
    return NerfregTrainerConfig(
        method_name=method_name,
        steps_per_eval_batch=0,
        steps_per_eval_image=0,
        steps_per_eval_all_images=0,
        steps_per_save=500,
        max_num_iterations=nerf_steps + embed_steps,
        mixed_precision=False,
        machine=MachineConfig(device_type="cuda" if torch.cuda.is_available() else "cpu"),
        pipeline=NerfregPipelineConfig(
            nerf_steps=nerf_steps,
            datamanager=VanillaDataManagerConfig(
                _target=VanillaDataManager[NerfregDataset],
                dataparser=NerfregDataParserConfig(),
                train_num_rays_per_batch=4096,
                eval_num_rays_per_batch=4096,
            ),
            model=NerfregModelConfig(),
        ),
        optimizers={
            "grids": {
                "optimizer": FusedAdamOptimizerConfig(lr=0.1, eps=1e-15),
                "scheduler": ExponentialDecaySchedulerConfig(lr_final=0.005, max_steps=nerf_steps),
            },
            "mlp": {
                "optimizer": FusedAdamOptimizerConfig(lr=5e-3, eps=1e-15),
                "scheduler": ExponentialDecaySchedulerConfig(lr_final=5e-4, max_steps=nerf_steps),
            },
            "keys": {"optimizer": FusedAdamOptimizerConfig(lr=3e-3, eps=1e-15), "scheduler": None},
            "query": {"optimizer": FusedAdamOptimizerConfig(lr=3e-3, eps=1e-15), "scheduler": None},
        },
        viewer=ViewerConfig(num_rays_per_chunk=1 << 14, quit_on_train_completion=True),
        vis="tensorboard",
    )


nerfreg_feature = MethodSpecification(
    config=make_trainer_config(),
    description="Object NeRF on a carved dense grid with a SurfEmb-style key field and query encoder (CPU-practical)",
)

# The same model stopped after its field: what the default registration reads (it uses no keys).
# `ns-train nerfreg-feature --load-dir FIELD_RUN/nerfstudio_models` trains the keys on top later.
nerfreg_field = MethodSpecification(
    config=make_trainer_config(embed_steps=0, method_name="nerfreg-field"),
    description="nerfreg-feature's object field alone, without keys and query encoder (what the default registration needs)",
)
