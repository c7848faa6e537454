"""``medvae evaluate generative MODEL``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from medvae_cli._run import run_task

app = typer.Typer(help="Measure a model on held-out data.", no_args_is_help=True)


@app.command("generative")
def generative(
    model: Annotated[Path, typer.Argument(help="A model file from 'medvae train vae|vaegan'.")],
    data: Annotated[str, typer.Option(help="'mnist' (the embedded sample's test split) or a folder of held-out "
                                           "images.")] = "mnist",
    samples: Annotated[Optional[int], typer.Option(help="Prior samples (default: one per real image).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed for the samples.")] = 0,
    limit: Annotated[Optional[int], typer.Option(help="Use at most N held-out images.")] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:N, mps or auto.")] = "cpu",
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
) -> None:
    """Reconstruction PSNR/SSIM, -ELBO, sample sharpness and (MNIST) a Fréchet distance."""
    from medvae.tasks.evaluate_generative import evaluate_generative, format_report

    result = run_task(evaluate_generative, model, data, n_samples=samples, seed=seed, limit=limit, device=device)
    typer.echo(json.dumps(result, indent=2) if as_json else format_report(result))


@app.command("synthesis")
def synthesis(
    model: Annotated[Path, typer.Argument(help="A model file from 'medvae train synthesis'.")],
    data: Annotated[str, typer.Option(help="A folder of subject folders; those the model trained on are left "
                                           "out.")],
    baseline: Annotated[Optional[Path], typer.Option(help="The L1 U-Net baseline ('medvae train synthesis "
                                                          "--model unet'); default: trained once and kept "
                                                          "beside MODEL.")] = None,
    samples: Annotated[int, typer.Option(help="Latent draws per subject.")] = 16,
    seed: Annotated[int, typer.Option(help="Random seed for the draws.")] = 0,
    limit: Annotated[Optional[int], typer.Option(help="Use at most N held-out subjects.")] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:N, mps or auto.")] = "cpu",
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
) -> None:
    """PSNR/SSIM/MAE in the brain mask beside linear-regression and L1 U-Net baselines, and how the spread ranks
    the errors."""
    from medvae.tasks.evaluate_synthesis import evaluate_synthesis, format_report

    result = run_task(evaluate_synthesis, model, data, baseline=baseline, samples=samples, seed=seed, limit=limit,
                      device=device)
    typer.echo(json.dumps(result, indent=2) if as_json else format_report(result))
