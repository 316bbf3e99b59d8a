"""Wall time and peak memory per stage of a long command, for its record and its user.

Peak memory is the process's resident high-water mark (Linux VmHWM), reset at the start of each
stage where the kernel allows it (`/proc/self/clear_refs`), so each row shows its own stage's
peak; elsewhere the rows show the peak so far (`getrusage`)."""

from __future__ import annotations

import resource
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

_STATUS = Path("/proc/self/status")
_CLEAR = Path("/proc/self/clear_refs")


def _reset_peak() -> bool:
    try:
        _CLEAR.write_text("5")  # 5: reset the peak resident set size
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """The process's peak resident memory (MiB) since the last reset (or its start)."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class StageClock:
    """Rows of (stage, seconds, peak MiB) in the order the stages ran."""

    rows: list[dict] = field(default_factory=list)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        _reset_peak()
        t = time.perf_counter()
        try:
            yield
        finally:
            self.rows.append({"stage": name, "time_s": round(time.perf_counter() - t, 3), "peak_rss_mb": round(peak_rss_mb(), 1)})

    def line(self) -> str:
        """One line for a terminal: each stage's time, then the highest peak."""
        parts = ", ".join(f"{r['stage']} {r['time_s']:.1f} s" for r in self.rows)
        peak = max((r["peak_rss_mb"] for r in self.rows), default=0.0)
        return f"{parts}; peak memory {peak / 1024:.2f} GiB"
