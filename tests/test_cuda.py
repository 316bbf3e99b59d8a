"""The same code on a GPU: the device is chosen automatically (no flag). Skipped without CUDA (this
project's machines have none: these tests have not run yet)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@cuda
def test_hull_rays_give_the_same_intervals_on_cuda_as_on_the_cpu():
    from nerfreg_ns.nerf.hull import ray_hull_interval

    g = torch.Generator().manual_seed(0)
    occ = torch.rand(48, 48, 48, generator=g) > 0.7
    aabb = torch.tensor([[-1.0] * 3, [1.0] * 3])
    o = torch.nn.functional.normalize(torch.randn(2000, 3, generator=g), dim=-1) * 3
    d = torch.nn.functional.normalize(-o + 0.5 * torch.randn(2000, 3, generator=g), dim=-1)
    cpu = ray_hull_interval(o, d, aabb, occ, 96)
    gpu = ray_hull_interval(o.cuda(), d.cuda(), aabb.cuda(), occ.cuda(), 96)
    both = cpu[2] & gpu[2].cpu()
    assert (cpu[2] != gpu[2].cpu()).float().mean() < 0.005  # rounding exactly on a voxel boundary may differ
    for a, b in zip(cpu[:2], gpu[:2]):
        assert (a[both] - b.cpu()[both]).abs().le(1e-4).float().mean() > 0.99


@cuda
def test_tiny_training_on_cuda_saves_a_surface_registration_reads(case, tmp_path):
    from conftest import ns_train
    from nerfreg_ns.register.inputs import load_sequence

    proc = ns_train(case / "seq1", tmp_path, 350)  # field and keys, tiny configuration
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "seq1" / "nerfreg-feature" / "run"
    assert "device_type: cuda" in (run / "config.yml").read_text()
    seq = load_sequence(run / "config.yml", "seq1")
    assert len(seq.points) > 1000 and seq.keys is not None and np.isfinite(seq.points).all()
    turns = seq.features.queries(np.zeros((64, 64, 3), np.uint8) + 128, seq.masks[0], 2)
    assert len(turns) == 2
