"""The ``medvae`` Typer app. Each command parses and checks its options, then calls one function in
:mod:`medvae.tasks`. Nothing here imports torch or MONAI at module level, so ``--help`` stays fast.

Commands live in modules named like the task groups they call (``generative``, ``synthesis``, ``cxr``, and the
small jobs ``demo``, ``convert``, ``info``, ``phantom``); this file puts them under their verbs.
"""

from __future__ import annotations

import sys

from typing import Annotated

import typer

from medvae import __version__
from medvae_cli import anomaly, convert, cxr, demo, generative, info, oversampling, phantom, synthesis
from medvae_cli._help import App
from medvae_cli._run import state

app = App(
    name="medvae",
    help="Variational autoencoders for medical imaging: train, generate, synthesise, enhance.",
    no_args_is_help=True,
    add_completion=False,
    # Tracebacks with locals would print patient data from DICOM headers.
    pretty_exceptions_show_locals=False,
)
train = App(help="Train a model.", no_args_is_help=True)
train.command("vae")(generative.train_command("vae"))
train.command("vaegan")(generative.train_command("vaegan"))
train.command("cvaegan")(oversampling.train_cvaegan)
train.command("synthesis")(synthesis.train_synthesis)
train.command("enhance")(cxr.train_enhance)
train.command("segment")(cxr.train_segment)
evaluate = App(help="Measure a model on held-out data.", no_args_is_help=True)
evaluate.command("generative")(generative.evaluate_generative)
evaluate.command("synthesis")(synthesis.evaluate_synthesis)
evaluate.command("enhance")(cxr.evaluate_enhance)
evaluate.command("segment")(cxr.evaluate_segment)
evaluate.command("chest-check")(cxr.evaluate_chest_check)
evaluate.command("anomaly")(anomaly.evaluate_anomaly)
evaluate.command("oversampling")(oversampling.evaluate_oversampling)

app.add_typer(demo.app, name="demo")
app.add_typer(train, name="train")
app.add_typer(evaluate, name="evaluate")
app.add_typer(phantom.app, name="phantom")
app.command("generate")(generative.generate)
app.command("synthesize")(synthesis.synthesize)
app.command("enhance")(cxr.enhance)
app.command("segment")(cxr.segment)
app.command("score")(anomaly.score)
app.command("oversample")(oversampling.oversample)
app.command("convert")(convert.convert)
app.command("info")(info.info)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"medvae {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """medvae: variational autoencoders for medical imaging."""
    state.debug = debug
    for stream in (sys.stdout, sys.stderr):  # file names that are not UTF-8 print as the bytes they are
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="surrogateescape")
    if not debug:  # pydicom's notes on malformed header values (e.g. a non-numeric UID) are not errors
        import warnings

        warnings.filterwarnings("ignore", category=UserWarning, module=r"pydicom(\.|$)")


if __name__ == "__main__":
    app()
