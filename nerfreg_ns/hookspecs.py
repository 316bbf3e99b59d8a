"""The nerfreg_* hook specifications: how plugins add pose-hypothesis generators, verifiers
and refiners to `nerfreg-register`.

Each registration hook receives a `register(name, config_class, factory)` callback:
`config_class` is a frozen dataclass whose docstring is the plugin's help text and whose fields
are its options; `factory(config)` returns the runtime object (see `nerfreg_ns.registry` for
the protocols it must satisfy). Built-in plugins use these hooks exactly as third-party ones do.
"""

from __future__ import annotations

from typing import Any, Callable

import pluggy

hookspec = pluggy.HookspecMarker("nerfreg")

RegisterFn = Callable[[str, type, Callable[[Any], Any]], None]


@hookspec
def nerfreg_register_generators(register: RegisterFn) -> None:
    """Register pose-hypothesis generators: objects with
    `propose(seq1: SequenceData, seq2: SequenceData) -> list[Hypothesis]`."""


@hookspec
def nerfreg_register_verifiers(register: RegisterFn) -> None:
    """Register verifiers: objects with
    `score(seq1: SequenceData, seq2: SequenceData, T_seq1_seq2: ndarray) -> Score`
    (higher is better; comparable between hypotheses of one registration)."""


@hookspec
def nerfreg_register_refiners(register: RegisterFn) -> None:
    """Register refiners: objects with
    `refine(seq1: SequenceData, seq2: SequenceData, T_seq1_seq2: ndarray) -> ndarray` (4, 4)."""
