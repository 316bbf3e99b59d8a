"""nerfreg-demo: the main job on the embedded default part, end to end as far as it exists."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from nerfreg_ns.cli import run_cli


@dataclass
class DemoConfig:
    """Run nerfreg on the embedded procedural part: render both sequences, then score the truth
    through nerfreg-eval (registration comes with nerfreg-register)."""

    out: Path = Path("demo_out")
    """Working folder; each stage writes a subfolder."""
    views: int = 60
    size: int = 128
    overwrite: bool = True


def main(cfg: DemoConfig) -> int:
    from nerfreg_ns.cli import eval as eval_cli
    from nerfreg_ns.cli import synth as synth_cli

    case = cfg.out / "case"
    print(f"[1/2] nerfreg-synth: the embedded part, {cfg.views} views per side at {cfg.size}x{cfg.size} -> {case}")
    synth_cli.main(synth_cli.SynthConfig(out=case, views=cfg.views, width=cfg.size, height=cfg.size, overwrite=cfg.overwrite))
    print("[2/2] nerfreg-eval: the truth scored against itself (a zero-error sanity check)")
    eval_cli.main(eval_cli.EvalConfig(truth=case / "truth.json", registration=case / "truth.json", out=cfg.out / "eval_truth.json"))
    print(f"done: look at {case / 'preview.png'}")
    return 0


def entrypoint() -> None:
    sys.exit(run_cli("nerfreg-demo", DemoConfig, main))


if __name__ == "__main__":
    entrypoint()
