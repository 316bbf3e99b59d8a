"""A training saves what registration reads; loading a run reads it instead of rendering, and
never reads it stale. A nerfreg-field run has no keys until nerfreg-feature trains them on top."""

from __future__ import annotations

import json
import shutil

import numpy as np



def test_training_saves_the_surface_that_loading_would_render(field_run, monkeypatch):
    import nerfreg_ns.nerf.saved_surface as saved_surface
    from nerfreg_ns.nerf.progress import read_progress
    from nerfreg_ns.register.inputs import load_sequence

    progress = read_progress(field_run)
    assert (progress["stage"], progress["done"], progress["total"]) == ("done", 150, 150)
    assert set(progress["times_s"]) == {"visual hull", "frame check", "field steps", "surface"}  # no key steps
    assert all(t > 0 for t in progress["times_s"].values())
    saved = saved_surface.read_saved_surface(field_run / "config.yml")
    assert saved is not None and saved.step == 149 and not saved.keys_trained and saved.surface.keys is None
    fast = load_sequence(field_run / "config.yml", "seq1")
    monkeypatch.setattr(saved_surface, "read_saved_surface", lambda path: None)  # as for a run trained before it existed
    rendered = load_sequence(field_run / "config.yml", "seq1")
    assert len(fast.points) > 1000
    np.testing.assert_allclose(fast.points, rendered.points, atol=1e-6)
    np.testing.assert_allclose(fast.normals, rendered.normals, atol=1e-6)
    np.testing.assert_allclose(fast.spread, rendered.spread, atol=1e-6)
    assert fast.boundary is not None and fast.boundary.shape == fast.points.shape
    np.testing.assert_allclose(fast.boundary, rendered.boundary, atol=1e-6)
    assert np.array_equal(fast.mask_trust, rendered.mask_trust) and fast.mask_trust.all()
    assert fast.diameter == rendered.diameter and len(fast.masks) == len(rendered.masks) == 16
    assert fast.keys is None and fast.features is None and rendered.keys is None and rendered.features is None


def test_a_saved_surface_of_another_step_or_unreadable_is_ignored(field_run, tmp_path):
    from nerfreg_ns.nerf.saved_surface import SURFACE_FILE, read_saved_surface

    copy = tmp_path / "run"
    shutil.copytree(field_run, copy)
    assert read_saved_surface(copy / "config.yml") is not None
    # resumed later: a newer checkpoint than the saved surface
    (copy / "nerfstudio_models" / "step-000000400.ckpt").write_bytes(b"")
    assert read_saved_surface(copy / "config.yml") is None
    (copy / "nerfstudio_models" / "step-000000400.ckpt").unlink()
    (copy / SURFACE_FILE).write_bytes(b"not a zip file")
    assert read_saved_surface(copy / "config.yml") is None


def test_keys_trained_on_top_of_a_field_run_reach_registration(field_run, case, tmp_path):
    from conftest import ns_train
    from nerfreg_ns.nerf.saved_surface import read_saved_surface
    from nerfreg_ns.register.inputs import RunFeatures, load_sequence

    proc = ns_train(case / "seq1", tmp_path, 60, "--load-dir", str(field_run / "nerfstudio_models"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "seq1" / "nerfreg-feature" / "run"
    progress = json.loads((run / "nerfreg_progress.json").read_text())
    assert progress["stage"] == "done" and progress["times_s"]["key steps"] > 0 and "field steps" not in progress["times_s"]
    saved = read_saved_surface(run / "config.yml")
    assert saved is not None and saved.step == 209 and saved.keys_trained
    seq = load_sequence(run / "config.yml", "seq1")
    assert isinstance(seq.features, RunFeatures) and seq.keys is not None and len(seq.keys) == len(seq.points)
    turns = seq.features.queries(np.zeros((64, 64, 3), np.uint8) + 128, seq.masks[0], 2)  # loads the encoder now
    assert len(turns) == 2 and all(len(t.uv) == len(t.queries) > 0 for t in turns)
