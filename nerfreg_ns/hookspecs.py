"""The nerfreg_* hooks: how plugins add pose-hypothesis generators, verifiers and refiners to
`nerfreg-register`, and the `hookimpl` marker that implements them.

Each hook receives a `register(name, config_class, factory)` callback: `config_class` is a
dataclass whose docstring is the plugin's help text and whose fields (with docstrings) are its
options; `factory(config)` returns the runtime object, which satisfies the matching protocol of
`nerfreg_ns.registry` (`Generator`, `Verifier`, `Refiner`). Built-in plugins use these hooks
exactly as third-party ones do. A plugin whose hook raises, or registers a name another plugin
has, is reported by name and registers nothing; the others keep working.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from nerfreg_ns.registry import RegisterFn

PROJECT = "nerfreg"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def nerfreg_register_generators(register: RegisterFn) -> None:
    """Register pose-hypothesis generators: objects with
    `propose(seq1: SequenceData, seq2: SequenceData) -> list[Hypothesis]`."""


@hookspec
def nerfreg_register_verifiers(register: RegisterFn) -> None:
    """Register verifiers: objects with
    `score(seq1: SequenceData, seq2: SequenceData, T_seq1_seq2: ndarray (4, 4)) -> Score`
    (higher is better; comparable between the hypotheses of one registration)."""


@hookspec
def nerfreg_register_refiners(register: RegisterFn) -> None:
    """Register refiners: objects with
    `refine(seq1: SequenceData, seq2: SequenceData, T_seq1_seq2: ndarray (4, 4)) -> ndarray (4, 4)`."""
