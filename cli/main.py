"""The ``medvae`` Typer app. Each command parses and checks its options, then calls one function in
:mod:`medvae.tasks`. Nothing here imports torch or MONAI at module level, so ``--help`` stays fast.
"""

from __future__ import annotations

from typing import Annotated

import typer

from medvae import __version__
from medvae_cli import convert, demo, enhance, evaluate, generate, info, phantom, synthesize, train
from medvae_cli._run import state

app = typer.Typer(
    name="medvae",
    help="Variational autoencoders for medical imaging: train, generate, synthesise, enhance.",
    no_args_is_help=True,
    add_completion=False,
    # Tracebacks with locals would print patient data from DICOM headers.
    pretty_exceptions_show_locals=False,
)
app.add_typer(demo.app, name="demo")
app.add_typer(train.app, name="train")
app.add_typer(evaluate.app, name="evaluate")
app.add_typer(phantom.app, name="phantom")
app.command("generate")(generate.generate)
app.command("synthesize")(synthesize.synthesize)
app.command("enhance")(enhance.enhance)
app.command("segment")(enhance.segment)
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
    if not debug:  # pydicom's notes on malformed header values (e.g. a non-numeric UID) are not errors
        import warnings

        warnings.filterwarnings("ignore", category=UserWarning, module=r"pydicom(\.|$)")


if __name__ == "__main__":
    app()
