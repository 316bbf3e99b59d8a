"""The nerfreg-feature trainer: nerfstudio's, except that a bad dataset leaves nothing behind.

`ns-train` writes the run folder and its config.yml before the dataparser reads the data, so a
dataset that fails there would leave a run folder that looks like a run. The config checks the
dataset before anything is written, and the trainer removes a folder this run created if its
set-up fails (e.g. masks that carve the visual hull away).
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Type

from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackLocation
from nerfstudio.engine.trainer import Trainer, TrainerConfig

from nerfreg_ns.data.nerfstudio_io import read_nerfstudio_dataset
from nerfreg_ns.errors import NerfregError
from nerfreg_ns.nerf.dataparser import fail

_CREATED_ATTR = "_nerfreg_created_dir"  # set after config.yml is written, so it is not saved in it


class NerfregTrainer(Trainer):
    config: "NerfregTrainerConfig"

    def setup(self, test_mode: Literal["test", "val", "inference"] = "val") -> None:
        try:
            super().setup(test_mode)
        except BaseException:
            created = getattr(self.config, _CREATED_ATTR, None)
            if created is not None:
                shutil.rmtree(created, ignore_errors=True)
            raise
        clock = getattr(self.pipeline.datamanager.dataparser, "setup_stages", None)
        if clock is not None:
            print(f"{self.config.method_name}: set-up: {clock.line()}", file=sys.stderr)
        outputs = self.pipeline.datamanager.train_dataparser_outputs
        flagged = outputs.metadata.get("frame_flagged")
        if flagged is not None and bool(flagged.any()):  # said once, when training; loading a run stays quiet
            names = ", ".join(Path(outputs.image_filenames[i]).name for i in flagged.nonzero()[:, 0].tolist())
            print(f"{self.config.method_name}: warning: {int(flagged.sum())} frame(s) whose mask disagrees with the other views "
                  f"(a blob added or a piece missing) left out of training: {names}", file=sys.stderr)
        from nerfreg_ns.nerf.saved_surface import SURFACE_FILE

        (self.base_dir / SURFACE_FILE).unlink(missing_ok=True)  # a run retrained into the same folder must not keep it
        self._end_step = self._start_step + self.config.max_num_iterations
        self._times = {r["stage"]: r["time_s"] for r in clock.rows} if clock is not None else {}
        self._report(self._start_step)
        self.callbacks.append(TrainingCallback([TrainingCallbackLocation.BEFORE_TRAIN_ITERATION], self._phase_clock))
        self.callbacks.append(TrainingCallback([TrainingCallbackLocation.AFTER_TRAIN_ITERATION],
                                               lambda step: self._report(step + 1), update_every_num_iters=10))
        # after the final checkpoint, before a viewer kept open would block
        self.callbacks.append(TrainingCallback([TrainingCallbackLocation.AFTER_TRAIN], self._save_surface))

    def _phase_clock(self, step: int) -> None:
        """Times the field steps and the key steps (the progress file's `times_s`)."""
        import time

        if step == self._start_step:
            self._phase = ("field steps" if step < self.pipeline.config.nerf_steps else "key steps", time.perf_counter())
        elif step == self.pipeline.config.nerf_steps:  # phase 2 begins
            self._close_phase()
            self._phase = ("key steps", time.perf_counter())

    def _close_phase(self) -> None:
        import time

        phase = getattr(self, "_phase", None)
        if phase is not None:
            self._times[phase[0]] = time.perf_counter() - phase[1]
            self._phase = None

    def _report(self, done: int, stage: str | None = None) -> None:
        """Writes the run's progress file (`progress`): steps done of the run's last step."""
        from nerfreg_ns.nerf.progress import write_progress

        if stage is None:
            stage = "field" if done < self.pipeline.config.nerf_steps else "keys"
        write_progress(self.base_dir, stage, done, self._end_step, self._times)

    def _save_surface(self, step: int) -> None:
        """Saves what registration reads (`saved_surface`); without it the run is rendered at load time."""
        import time

        from nerfreg_ns.nerf.saved_surface import save_surface

        self._close_phase()
        t = time.perf_counter()
        self._report(step + 1, "surface")
        try:
            path = save_surface(self.pipeline, self.base_dir, step)
            print(f"{self.config.method_name}: surface for registration saved in {path} ({time.perf_counter() - t:.1f} s)", file=sys.stderr)
        except Exception as e:  # it only saves time; a finished training must not fail over it (e.g. out of memory)
            print(f"{self.config.method_name}: warning: no surface saved for registration ({e}); "
                  "nerfreg-register will render the run instead", file=sys.stderr)
        self._times["surface"] = time.perf_counter() - t
        self._report(step + 1, "done")


@dataclass
class NerfregTrainerConfig(TrainerConfig):
    """nerfstudio's trainer configuration, with the dataset checked before the run folder is made."""

    _target: Type = field(default_factory=lambda: NerfregTrainer)

    def save_config(self) -> None:
        data = self.pipeline.datamanager.data or self.data or getattr(self.pipeline.datamanager.dataparser, "data", None)
        if data is None:
            fail("no dataset: give --data DATASET_FOLDER")
        try:
            read_nerfstudio_dataset(data, check_masks=True, min_frames=2, empty_masks="skip")
        except NerfregError as e:
            fail(str(e), e.exit_code)
        base = Path(self.get_base_dir()).absolute()
        missing = [p for p in (base, *base.parents) if not p.exists()]
        super().save_config()
        object.__setattr__(self, _CREATED_ATTR, missing[-1] if missing else None)  # the top folder this run made
