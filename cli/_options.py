"""The options many commands share, declared once (``Annotated`` aliases): one spelling, help and default each."""

from __future__ import annotations

from typing import Annotated

import typer

Device = Annotated[str, typer.Option(help="auto (CUDA, then MPS, then the CPU), cpu, cuda, cuda:N or mps.")]
Seed = Annotated[int, typer.Option(help="Random seed: the same seed gives the same result on the CPU.")]
Progress = Annotated[bool, typer.Option(help="Show a progress bar.")]
Amp = Annotated[bool, typer.Option(help="Mixed precision on CUDA.")]
Resume = Annotated[bool, typer.Option(help="Continue from the training state beside --out.")]
Overwrite = Annotated[bool, typer.Option(help="Redo outputs that exist (they are skipped otherwise).")]
