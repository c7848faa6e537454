"""``medvae score`` and ``medvae evaluate anomaly``: anomaly scores of a VAE trained on normal images."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from medvae_cli._options import DEFAULT_DEVICE, Deidentify, Device, Json, Overwrite, Progress, Shard, Threads
from medvae_cli._run import report_batch, run_task

Samples = Annotated[int, typer.Option(help="Latent samples per image, each decoded (An & Cho's L).")]


def score(
    model: Annotated[Path, typer.Argument(help="A VAE trained on normal images ('medvae train vae|vaegan').",
                                          metavar="MODEL")],
    input: Annotated[Path, typer.Argument(help="An image or a folder of them (DICOM, NIfTI, PNG, ...; searched "
                                               "recursively).", metavar="INPUT")],
    output: Annotated[Path, typer.Argument(help="Output folder: scores.csv, and the maps with --maps.",
                                           metavar="OUTPUT")],
    samples: Samples = 16,
    seed: Annotated[int, typer.Option(help="Seed of the latent samples.")] = 0,
    fpr: Annotated[float, typer.Option(help="False-alarm rate on normal images that sets the 'flagged' "
                                            "threshold.")] = 0.05,
    maps: Annotated[bool, typer.Option("--maps", help="Also write a per-pixel anomaly map per input, in its "
                                                      "format and geometry.")] = False,
    normal: Annotated[Optional[Path], typer.Option(help="Normal images to calibrate on (default: the held-out "
                                                        "normals stored in the model file).")] = None,
    device: Device = DEFAULT_DEVICE,
    threads: Threads = None,
    deidentify: Deidentify = False,
    shard: Shard = None,
    overwrite: Overwrite = False,
    progress: Progress = True,
) -> None:
    """Score images for anomaly: higher = more anomalous; percentiles among the model's held-out normal images.

    One row per input in OUTPUT/scores.csv: the reconstruction probability (recon_prob, as -log), -ELBO, the IWAE
    bound and the reconstruction error, each with its percentile among normals, and 'flagged' at --fpr."""
    from medvae.tasks.anomaly.score import score as run

    report, csv_path = run_task(run, model, input, output, samples=samples, seed=seed, fpr=fpr, maps=maps,
                                normal=normal, device=device, overwrite=overwrite, progress=progress,
                                deidentify=deidentify, threads=threads, shard=shard)
    if report.done:
        typer.echo(f"scores: {csv_path}")
    report_batch(report, "scored")


def evaluate_anomaly(
    model: Annotated[Path, typer.Argument(help="A VAE trained on normal images.", metavar="MODEL")],
    data: Annotated[Optional[str], typer.Option(help="'mnist': the embedded sample's test split, with "
                                                     "--anomaly-digit as the anomaly.")] = None,
    anomaly_digit: Annotated[Optional[int], typer.Option(help="With --data mnist: the digit the model never "
                                                              "saw.")] = None,
    normal: Annotated[Optional[Path], typer.Option(help="Held-out normal images.")] = None,
    anomalous: Annotated[Optional[Path], typer.Option(help="Held-out anomalous images.")] = None,
    fit: Annotated[Optional[Path], typer.Option(help="Normal training images for the baselines (default: the "
                                                     "folder the model was trained on, its held-out files "
                                                     "left out).")] = None,
    masks: Annotated[Optional[Path], typer.Option(help="Lesion masks mirroring --anomalous (same relative "
                                                       "names): pixel AUROC, AUPRC and best Dice of the maps.")]
    = None,
    samples: Samples = 16,
    seed: Annotated[int, typer.Option(help="Seed of the latent samples and the baselines.")] = 0,
    baseline_epochs: Annotated[Optional[int], typer.Option(help="Epochs of the autoencoder baseline (default: "
                                                                "the model's).")] = None,
    limit: Annotated[Optional[int], typer.Option(help="At most N images of each group.")] = None,
    as_json: Json = False,
    device: Device = DEFAULT_DEVICE,
    threads: Threads = None,
    progress: Progress = True,
) -> None:
    """AUROC, AUPRC and TPR at 5 % FPR of every score, beside PCA, k-NN, an autoencoder and a classical score."""
    from medvae.tasks.anomaly.evaluate import evaluate_anomaly as run
    from medvae.tasks.anomaly.evaluate import format_anomaly

    result = run_task(run, model, data=data, anomaly_digit=anomaly_digit, normal=normal, anomalous=anomalous,
                      fit=fit, masks=masks, samples=samples, seed=seed, baseline_epochs=baseline_epochs, limit=limit,
                      device=device, threads=threads, progress=progress)
    typer.echo(json.dumps(result, indent=2) if as_json else format_anomaly(result))
