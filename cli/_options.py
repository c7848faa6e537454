"""The options many commands share, declared once (``Annotated`` aliases): one spelling, help and default each.

The command-line grammar (README, "Command-line grammar"): commands that transform files take positional
``INPUT OUTPUT`` (after ``MODEL`` where a model is required); commands that make things from nothing write to
``--out``; counts are ``--n``; training data is ``--data``; every command that writes outputs skips those that
exist, with a note, unless ``--overwrite``. Old spellings live on as hidden aliases for one release
(:func:`medvae_cli._run.one_of`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

DEFAULT_DEVICE = "auto"
"""The one default of ``--device`` on every command that runs a model."""

Device = Annotated[str, typer.Option(help="auto (CUDA, then MPS, then the CPU), cpu, cuda, cuda:N or mps.")]
Seed = Annotated[int, typer.Option(help="Random seed: the same seed gives the same result on the CPU.")]
Threads = Annotated[Optional[int], typer.Option(min=1, show_default=False, metavar="N",
                                                help="CPU threads for torch (default: the physical cores; 1 per "
                                                     "process under torchrun).")]
Progress = Annotated[bool, typer.Option(help="Show a progress bar.")]
Amp = Annotated[bool, typer.Option(help="Mixed precision on CUDA.")]
Resume = Annotated[bool, typer.Option(help="Continue from the training state beside --out.")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Redo outputs that exist (otherwise they are skipped, "
                                                             "with a note).")]
Deidentify = Annotated[bool, typer.Option("--deidentify", help="DICOM outputs without the patient's identity: "
                                                               "DICOM PS3.15 Annex E's Basic Profile (names, IDs, "
                                                               "UIDs, dates replaced; age, sex, size, weight removed)."
                                                               )]
Shard = Annotated[Optional[str], typer.Option(metavar="I/N", show_default=False,
                                              help="Process only share I of N of the inputs, so N runs (on one or "
                                                   "several machines) split a folder; automatic under torchrun.")]
Tensorboard = Annotated[Optional[Path], typer.Option(metavar="DIR", help="Also log the losses and preview images "
                                                                         "to TensorBoard in DIR.")]
Json = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]


def hidden(*names: str, metavar: str | None = None):
    """A hidden option under old ``names`` (kept for one release): pair it with the new spelling through
    :func:`medvae_cli._run.one_of`."""
    return typer.Option(*names, hidden=True, metavar=metavar)
