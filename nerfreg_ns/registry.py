"""What plugins register, and the small protocols their runtime objects satisfy.

Everything a plugin sees is in the sequences' own frames and units: `SequenceData` holds one
sequence's reconstructed surface and its posed masks; a `Hypothesis` is a T_seq1_seq2.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Optional, Protocol

import numpy as np

from nerfreg_ns.errors import NerfregError

Kind = Literal["generator", "verifier", "refiner"]
KINDS: tuple[Kind, ...] = ("generator", "verifier", "refiner")


def random_subset(points: np.ndarray, n: int) -> np.ndarray:
    """At most `n` of `points` (N, ...), drawn without replacement with a fixed seed (repeatable scores)."""
    if len(points) <= n:
        return points
    return points[np.random.default_rng(0).choice(len(points), n, replace=False)]


@dataclass
class SequenceData:
    """One sequence: surface points (N, 3), unit normals (N, 3), optional keys (N, E); posed
    masks (H, W) bool with intrinsics (3, 3) and OpenCV camera-to-world (4, 4); the diameter."""

    name: str
    points: np.ndarray
    normals: np.ndarray
    diameter: float
    masks: list[np.ndarray] = field(default_factory=list)
    Ks: list[np.ndarray] = field(default_factory=list)
    T_world_camcv: list[np.ndarray] = field(default_factory=list)
    keys: Optional[np.ndarray] = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Hypothesis:
    """A candidate T_seq1_seq2 (4, 4) and where it came from."""

    T_seq1_seq2: np.ndarray
    source: str
    prior: float = 0.0
    """The generator's own confidence (e.g. inlier fraction); verifiers decide."""


@dataclass
class Score:
    """A verifier's verdict: `value` (higher is better), whether the verifier trusts a pose with
    this score, and numbers worth reporting."""

    value: float
    details: dict[str, float] = field(default_factory=dict)
    confident: bool = True


class Generator(Protocol):
    def propose(self, seq1: SequenceData, seq2: SequenceData) -> list[Hypothesis]: ...


class Verifier(Protocol):
    def score(self, seq1: SequenceData, seq2: SequenceData, T_seq1_seq2: np.ndarray) -> Score: ...


class Refiner(Protocol):
    def refine(self, seq1: SequenceData, seq2: SequenceData, T_seq1_seq2: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Entry:
    kind: Kind
    name: str
    config_class: type
    factory: Callable[[Any], Any]
    plugin: str
    """The plugin (module or entry point) that registered it."""

    def build(self, **options: Any) -> Any:
        """Makes the runtime object from options (unknown options are a clear error)."""
        names = {f.name for f in dataclasses.fields(self.config_class)}
        unknown = set(options) - names
        if unknown:
            raise NerfregError(f"{self.kind} '{self.name}' has no option(s) {sorted(unknown)}; it has {sorted(names)}")
        return self.factory(self.config_class(**options))


@dataclass
class Registry:
    """Name -> entry for each kind, plus the plugins that failed to load (name -> reason)."""

    entries: dict[Kind, dict[str, Entry]] = field(default_factory=lambda: {k: {} for k in KINDS})
    broken: dict[str, str] = field(default_factory=dict)

    def add(self, entry: Entry) -> None:
        known = self.entries[entry.kind]
        if entry.name in known:
            raise NerfregError(
                f"two plugins register the {entry.kind} '{entry.name}': '{known[entry.name].plugin}' and '{entry.plugin}'"
            )
        if not dataclasses.is_dataclass(entry.config_class):
            raise NerfregError(f"plugin '{entry.plugin}': the config of {entry.kind} '{entry.name}' is not a dataclass")
        known[entry.name] = entry

    def get(self, kind: Kind, name: str) -> Entry:
        try:
            return self.entries[kind][name]
        except KeyError:
            known = ", ".join(sorted(self.entries[kind])) or "none"
            raise NerfregError(f"unknown {kind} '{name}' (known: {known})") from None
