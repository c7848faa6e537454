"""``medvae evaluate generative|synthesis|enhance|segment MODEL``."""

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


def _kinds(text: Optional[str]) -> Optional[tuple[str, ...]]:
    return tuple(k.strip() for k in text.split(",") if k.strip()) if text else None


@app.command("enhance")
def enhance(
    model: Annotated[Path, typer.Argument(help="An enhancer model file ('medvae train enhance').")],
    data: Annotated[Optional[list[str]], typer.Option(help="Clean images (files or folders): those the model did "
                                                           "not train on are tested, and a few it trained on tune "
                                                           "the baselines; default: the images the model held "
                                                           "out.")] = None,
    kinds: Annotated[Optional[str], typer.Option(help="Degradations to test, e.g. noise,blur (default: all).")]
    = None,
    severities: Annotated[str, typer.Option(help="Severities to test.")] = "0.3,0.6,0.9",
    size: Annotated[int, typer.Option(help="Reduce films so their longer side is at most SIZE pixels (0: as "
                                           "they are).")] = 0,
    tune: Annotated[int, typer.Option(help="Training films that tune the baselines' parameters.")] = 4,
    limit: Annotated[Optional[int], typer.Option(help="Test at most N films.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the degradations.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """PSNR/SSIM of degraded and enhanced films beside tuned non-local means, TV, Gaussian, median and CLAHE."""
    from medvae_cli._run import parse_floats
    from medvae.tasks.evaluate_enhance import evaluate_enhance, format_enhance

    result = run_task(evaluate_enhance, model, data, kinds=_kinds(kinds),
                      severities=parse_floats("--severities", severities), seed=seed, size=size, tune=tune,
                      limit=limit, progress=progress)
    typer.echo(json.dumps(result.to_dict(), indent=2) if as_json else format_enhance(result))


@app.command("segment")
def segment(
    model: Annotated[list[Path], typer.Argument(help="Segmenter model files ('medvae train segment'): one, or one "
                                                     "per fold of a cross-validation (--folds K --fold I), each "
                                                     "scored on the films it held out.")],
    data: Annotated[str, typer.Option(help="Radiographs with lung masks: a folder holding images/ and masks/, "
                                           "or a public set's root; with --masks, a folder of images.")],
    masks: Annotated[Optional[str], typer.Option(help="The masks' folder, when --data holds only images.")] = None,
    enhancer: Annotated[Optional[Path], typer.Option(help="The enhancer (default: the shipped one).")] = None,
    kinds: Annotated[Optional[str], typer.Option(help="Degradations to test (default: all; 'none' for clean "
                                                      "films only).")] = None,
    severities: Annotated[str, typer.Option(help="Severities to test.")] = "0.3,0.6,0.9",
    size: Annotated[int, typer.Option(help="Degrade films reduced so their longer side is at most SIZE pixels "
                                           "(0: as they are).")] = 512,
    classical: Annotated[bool, typer.Option(help="Also segment after the best classical restoration.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the degradations.")] = 0,
    limit: Annotated[Optional[int], typer.Option(help="Use at most N images.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print every film's scores as JSON.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Dice and HD95 on clean, degraded and enhanced radiographs, per fold and overall."""
    from medvae_cli._run import parse_floats
    from medvae.tasks.evaluate_segment import evaluate_segment, format_segment

    chosen = () if kinds is not None and kinds.strip().lower() == "none" else _kinds(kinds)
    result = run_task(evaluate_segment, model, data, masks, enhancer=enhancer, kinds=chosen,
                      severities=parse_floats("--severities", severities), seed=seed, size=size,
                      classical=classical, limit=limit, progress=progress)
    typer.echo(json.dumps(result.to_dict(), indent=2) if as_json else format_segment(result))


@app.command("chest-check")
def chest_check(
    model: Annotated[Optional[Path], typer.Argument(help="A segmenter model file (default: the shipped one).")]
    = None,
    chest: Annotated[list[str], typer.Option(help="A folder of frontal chest films (repeatable); films of "
                                                  "patients the model saw are left out.")] = [],  # noqa: B006
    other: Annotated[list[str], typer.Option(help="Files or folders of images that are not frontal chest films "
                                                  "(repeatable).")] = [],  # noqa: B006
    limit: Annotated[Optional[int], typer.Option(help="At most N chest films per folder.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print every image's verdict as JSON.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """False alarms on unseen chest films and detections on other images of the 'not a chest film' check."""
    from medvae.tasks.evaluate_chest_check import evaluate_chest_check, format_check

    result = run_task(evaluate_chest_check, model, chest, other, limit=limit, progress=progress)
    typer.echo(json.dumps(result.to_dict(), indent=2) if as_json else format_check(result))
