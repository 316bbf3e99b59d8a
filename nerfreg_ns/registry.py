"""What a plugin sees and what it registers: the sequence data, hypotheses, scores, the
protocols of generators, verifiers and refiners, and the registry that builds them by name.

The engine's guarantees to a plugin: everything is in the sequences' own frames and units (a
`Hypothesis` is a T_seq1_seq2 (4, 4) mapping sequence-2 points into sequence 1); cameras are
OpenCV (x right, y down, z forward) camera-to-world; intrinsics put pixel (u, v)'s centre at the
integer coordinates (u, v), so a point projecting to uv lies in pixel `pixel_index(uv)` (floor(uv + 0.5))
(`nerfreg_ns.geometry.cameras` converts nerfstudio's half-pixel convention on reading).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Optional, Protocol, TypeVar, Union

import numpy as np

from nerfreg_ns.errors import NerfregError
from nerfreg_ns.geometry.cameras import reduce_view
from nerfreg_ns.geometry.points import robust_extent

Kind = Literal["generator", "verifier", "refiner"]
KINDS: tuple[Kind, ...] = ("generator", "verifier", "refiner")


@dataclass
class TurnQueries:
    """Per-pixel queries of one image, its object crop turned by `angle` radians (x right, y down)."""

    uv: np.ndarray
    """(M, 2) image coordinates of the crop's foreground pixels (OpenCV: pixel centres at integers)."""
    queries: np.ndarray
    """(M, E) float32, one per pixel of `uv`; match them against `SequenceData.keys`."""
    angle: float


class Features(Protocol):
    """A sequence's learned embedding (nerfreg-feature's query encoder; its keys are
    `SequenceData.keys`)."""

    turns: int
    """Turns of a crop worth trying when an image's roll is unknown (the run's default)."""

    def queries(self, rgb: np.ndarray, mask: np.ndarray, turns: int) -> list[TurnQueries]:
        """Queries of the object in rgb (H, W, 3) uint8 with mask (H, W) bool, one entry per
        turn of the crop (`turns` even turns, the first upright)."""
        ...


@dataclass
class SequenceData:
    """One sequence as the plugins see it, in its own frame and units.

    Surface: points (N, 3), unit normals (N, 3), optional keys (N, E) and spread (N,) (the depth
    over which a point's ray opacity rose from 25% to 75%: long in fog no view resolved). Cameras:
    one mask (H, W) bool, intrinsics (3, 3) (OpenCV pixel centres) and OpenCV camera-to-world
    (4, 4) per image, with the image files when known. `features` is the sequence's query
    encoder, for plugins that match images against keys (None when the run has none).
    """

    name: str
    points: np.ndarray
    normals: np.ndarray
    diameter: float
    masks: list[np.ndarray] = field(default_factory=list)
    Ks: list[np.ndarray] = field(default_factory=list)
    T_world_camcv: list[np.ndarray] = field(default_factory=list)
    keys: Optional[np.ndarray] = None
    spread: Optional[np.ndarray] = None
    images: list[Path] = field(default_factory=list)
    unit: Optional[str] = None
    """Length unit of the frame ("mm", "m", ...); None when the dataset does not say."""
    object_name: Optional[str] = None
    case_id: Optional[str] = None
    """The synthetic or imported case both sequences come from, when known."""
    source: str = ""
    """Where the data came from (a run's config.yml), for the record."""
    features: Optional[Features] = None
    mask_trust: Optional[np.ndarray] = None
    """(M,) bool per image: False where the frame's mask disagrees with the other frames (a
    segmentation error the reconstruction left out); such masks should not judge a pose. None: all trusted."""
    boundary: Optional[np.ndarray] = None
    """(N, 3): each point moved along its view ray to the edge of the field's density, where a
    face the views never made opaque really is (the merged model is built from it); None: the
    run saved none (points are used)."""

    def __post_init__(self) -> None:
        self.points = np.asarray(self.points, dtype=np.float64).reshape(-1, 3)
        self.normals = np.asarray(self.normals, dtype=np.float64).reshape(-1, 3)
        n = len(self.points)
        if len(self.normals) != n:
            raise ValueError(f"{self.name}: {n} points but {len(self.normals)} normals")
        if self.boundary is not None:
            self.boundary = np.asarray(self.boundary, dtype=np.float64).reshape(-1, 3)
        for what, arr in (("keys", self.keys), ("spread", self.spread), ("boundary", self.boundary)):
            if arr is not None and len(arr) != n:
                raise ValueError(f"{self.name}: {n} points but {len(arr)} {what}")
        if not len(self.masks) == len(self.Ks) == len(self.T_world_camcv):
            raise ValueError(f"{self.name}: {len(self.masks)} masks, {len(self.Ks)} intrinsics and "
                             f"{len(self.T_world_camcv)} poses: one of each per image")
        if self.images and len(self.images) != len(self.masks):
            raise ValueError(f"{self.name}: {len(self.images)} image files for {len(self.masks)} masks")
        if not self.diameter > 0:
            raise ValueError(f"{self.name}: the diameter must be positive, got {self.diameter}")
        if self.mask_trust is not None:
            self.mask_trust = np.asarray(self.mask_trust, dtype=bool).reshape(-1)
            if len(self.mask_trust) != len(self.masks):
                raise ValueError(f"{self.name}: {len(self.mask_trust)} mask_trust flags for {len(self.masks)} masks")
        self._mask_distance: dict[int, np.ndarray] = {}

    def reduced(self, max_side: int) -> "SequenceData":
        """The sequence with every mask (and its intrinsics) shrunk to at most `max_side` pixels
        on its longer side (`geometry.cameras.reduce_view`); itself when no mask is larger."""
        if max_side <= 0 or all(max(m.shape) <= max_side for m in self.masks):
            return self
        Ks, masks = zip(*(reduce_view(K, m, max_side) for K, m in zip(self.Ks, self.masks)))
        return dataclasses.replace(self, Ks=list(Ks), masks=list(masks))

    def trusted_views(self) -> list[int]:
        """Indices of the images whose masks may judge a pose (all, unless `mask_trust` says otherwise)."""
        if self.mask_trust is None or not self.mask_trust.any():
            return list(range(len(self.masks)))
        return [int(i) for i in np.nonzero(self.mask_trust)[0]]

    def mask_distance(self, i: int) -> np.ndarray:
        """Pixels (H, W) float32 from each pixel to image i's mask (0 inside), computed once."""
        d = self._mask_distance.get(i)
        if d is None:
            import cv2

            d = cv2.distanceTransform((~self.masks[i]).astype(np.uint8), cv2.DIST_L2, 3)
            self._mask_distance[i] = d
        return d

    @property
    def extent(self) -> float:
        """The points' size that a few floaters do not move (`geometry.points.robust_extent`)."""
        return robust_extent(self.points)

    @property
    def core_extent(self) -> float:
        """The size of the points' 5th to 95th percentiles: what is left of floaters (up to 5% of
        the points, far off) does not move it; comparable between two sequences, not a diameter."""
        return robust_extent(self.points, 5.0)


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


C = TypeVar("C")
Plugin = Union[Generator, Verifier, Refiner]


class RegisterFn(Protocol):
    """The callback a registration hook receives."""

    def __call__(self, name: str, config_class: type[C], factory: Callable[[C], Plugin]) -> None: ...


@dataclass(frozen=True)
class Entry:
    """One registered plugin: its kind and name, its options' dataclass, how to build it, and
    the plugin (module or entry point) that registered it."""

    kind: Kind
    name: str
    config_class: type
    factory: Callable[[Any], Plugin]
    plugin: str


@dataclass
class Registry:
    """Name -> entry for each kind, plus the plugins that failed to load (name -> reason)."""

    entries: dict[Kind, dict[str, Entry]] = field(default_factory=lambda: {k: {} for k in KINDS})
    broken: dict[str, str] = field(default_factory=dict)

    def check(self, entry: Entry) -> None:
        """Raises a NerfregError if `entry` cannot join: its name is taken, its config is not a dataclass."""
        known = self.entries[entry.kind].get(entry.name)
        if known is not None:
            raise NerfregError(f"two plugins register the {entry.kind} '{entry.name}': '{known.plugin}' and '{entry.plugin}'")
        if not (isinstance(entry.config_class, type) and dataclasses.is_dataclass(entry.config_class)):
            raise NerfregError(f"plugin '{entry.plugin}': the config of {entry.kind} '{entry.name}' is not a dataclass")
        if not callable(entry.factory):
            raise NerfregError(f"plugin '{entry.plugin}': the factory of {entry.kind} '{entry.name}' is not callable")

    def add(self, entry: Entry) -> None:
        self.check(entry)
        self.entries[entry.kind][entry.name] = entry

    def get(self, kind: Kind, name: str) -> Entry:
        try:
            return self.entries[kind][name]
        except KeyError:
            known = ", ".join(sorted(self.entries[kind])) or "none"
            raise NerfregError(f"unknown {kind} '{name}' (known: {known})") from None

    def make(self, kind: Kind, name: str, options: Union[None, Mapping[str, Any], Any] = None) -> Plugin:
        """The runtime object of plugin `name`: options are None (the defaults), a mapping of
        option values, or an instance of the plugin's config class. Unknown options are a clear error."""
        entry = self.get(kind, name)
        if options is None or isinstance(options, Mapping):
            options = dict(options or {})
            names = {f.name for f in dataclasses.fields(entry.config_class)}
            unknown = set(options) - names
            if unknown:
                raise NerfregError(f"{kind} '{name}' has no option(s) {sorted(unknown)}; it has {sorted(names)}")
            options = entry.config_class(**options)
        elif not isinstance(options, entry.config_class):
            raise NerfregError(f"{kind} '{name}' takes a {entry.config_class.__name__}, not a {type(options).__name__}")
        return entry.factory(options)
