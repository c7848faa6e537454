"""``medvae train cvaegan``, ``medvae oversample`` and ``medvae evaluate oversampling``: rare classes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from medvae.errors import count
from medvae_cli._options import DEFAULT_DEVICE, Amp, Deidentify, Device, Json, Overwrite, Progress, Resume, Tensorboard, Threads
from medvae_cli._run import fail, parse_ints, run_task

Data = Annotated[str, typer.Option(help="A folder with one folder of images per class (DICOM/NIfTI/PNG, searched "
                                        "recursively), a CSV of file,label (paths relative to it), or 'mnist' "
                                        "(the embedded sample).")]
TrainData = Annotated[str, typer.Option(help="A folder with one folder of images per class (DICOM/NIfTI/PNG, "
                                             "searched recursively), a CSV of file,label (paths relative to it), "
                                             "'mnist' (the embedded sample), or with --label a table (CSV) of "
                                             "numeric features.")]
IMAGE_ONLY = ("size", "spatial_dims", "channels", "normalize")
TABLE_ONLY = ("features", "hidden")


def train_cvaegan(
    data: TrainData,
    label: Annotated[Optional[str], typer.Option(metavar="COLUMN", help="Train on a table: --data is a CSV of "
                                                 "numeric features and COLUMN holds each row's class.")] = None,
    features: Annotated[Optional[str], typer.Option(metavar="A,B,...", help="With --label: the feature columns "
                                                    "(default: every column but the label).")] = None,
    hidden: Annotated[Optional[str], typer.Option(help="With --label: MLP layer widths of encoder, decoder and "
                                                       "discriminator (default 64,64).")] = None,
    size: Annotated[int, typer.Option(help="Model input size per axis (a multiple of 2^levels).")] = 28,
    spatial_dims: Annotated[int, typer.Option(help="2 for images, 3 for volumes.")] = 2,
    latent_dim: Annotated[Optional[int], typer.Option(help="Latent size: the style the class does not fix "
                                                           "(default 16; 4 for a table).")] = None,
    channels: Annotated[Optional[str], typer.Option(help="Feature channels per level, e.g. 32,64 (default from "
                                                         "--size).")] = None,
    class_limit: Annotated[Optional[str], typer.Option(metavar="CLASS=N[,...]", help="Keep at most N training "
                                                       "images of CLASS (a seeded choice), e.g. 8=4 to make "
                                                       "MNIST's 8 rare.")] = None,
    balance_classes: Annotated[bool, typer.Option(help="Repeat rare classes' images in each epoch until each has "
                                                       "a quarter of the largest class's count.")] = True,
    beta: Annotated[float, typer.Option(help="KL weight (1 = the ELBO).")] = 1.0,
    adv_weight: Annotated[float, typer.Option(help="Adversarial weight per pixel.")] = 0.05,
    feature_weight: Annotated[float, typer.Option(help="Feature-matching weight per pixel.")] = 0.05,
    epochs: Annotated[Optional[int], typer.Option(help="Training epochs (default 10; 300 for a table).")] = None,
    batch_size: Annotated[int, typer.Option(help="Images per step.")] = 64,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    val_fraction: Annotated[float, typer.Option(help="Share of each class held out for validation (rounded "
                                                     "down: a class of a few images keeps them all).")] = 0.1,
    normalize: Annotated[str, typer.Option(help="Intensity window per image: percentile, window, minmax.")]
    = "percentile",
    out: Annotated[Path, typer.Option(help="Model file; previews and the training state go beside it.")]
    = Path("medvae-cvaegan.safetensors"),
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    device: Device = DEFAULT_DEVICE,
    threads: Threads = None,
    amp: Amp = True,
    resume: Resume = False,
    overwrite: Overwrite = False,
    tensorboard: Tensorboard = None,
    progress: Progress = True,
) -> None:
    """Train a class-conditional VAE-GAN (the class in encoder, decoder and discriminator) for oversampling:
    convolutional on images, fully connected on a table's rows (--label)."""
    from medvae.data.classes import parse_class_limits

    limits = run_task(parse_class_limits, class_limit)
    shared = dict(data=data, out=out, class_limit=limits, balance_classes=balance_classes, beta=beta,
                  adv_weight=adv_weight, feature_weight=feature_weight, batch_size=batch_size, lr=lr,
                  val_fraction=val_fraction, seed=seed, device=device, amp=amp, resume=resume, overwrite=overwrite,
                  tensorboard=tensorboard, progress=progress, threads=threads,
                  **{k: v for k, v in (("epochs", epochs), ("latent_dim", latent_dim)) if v is not None})
    if label is not None:
        _refuse_given(IMAGE_ONLY, "is for images; a table (--label) takes --hidden and --features")
        if not data.lower().endswith(".csv"):
            raise fail(f"--label {label}: --data must be a CSV table of numeric features, got {data!r}")
        from medvae.tasks.oversampling.tabular import train_tabular_cvaegan as run

        result = run_task(run, label=label, hidden=parse_ints("--hidden", hidden) if hidden else (64, 64),
                          features=tuple(c.strip() for c in features.split(",") if c.strip()) if features else None,
                          **shared)
    else:
        _refuse_given(TABLE_ONLY, "needs --label COLUMN (a table of numeric features)")
        from medvae.tasks.oversampling.train import train_cvaegan as run

        result = run_task(run, size=size, spatial_dims=spatial_dims, normalize=normalize,
                          channels=parse_ints("--channels", channels) if channels else None, **shared)
    if result is None:
        return
    for path, reason in result.skipped:
        typer.echo(f"note: skipped {path}: {reason}", err=True)
    r = result.record
    counts = ", ".join(f"{name} {n}" for name, n in result.counts.items())
    typer.echo(f"trained cvaegan on {count(sum(result.counts.values()), 'row' if label else 'image')} ({counts}; "
               f"{result.n_val} held out) for {count(r['epochs'], 'epoch')} in {r['train_seconds']:.1f} s")
    typer.echo(f"wrote {result.model_path}" if label else
               f"wrote {result.model_path}, {result.model_path.with_suffix('')}.samples.png (a row per class)")


def _refuse_given(params: tuple[str, ...], why: str) -> None:
    """Exit 2 naming the first of ``params`` given on the command line (they do not apply to this mode)."""
    from medvae_cli._run import _current_context

    context = _current_context()
    for param in params if context is not None else ():
        source = context.get_parameter_source(param)
        if source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT"):
            raise fail(f"--{param.replace('_', '-')} {why}")


def oversample(
    model: Annotated[Path, typer.Argument(help="A model file from 'medvae train cvaegan'.", metavar="MODEL")],
    out: Annotated[Path, typer.Option(help="Output folder: a folder per class and manifest.csv (a table's model: "
                                           "synthetic.csv, and manifest.csv with --data).")]
    = Path("medvae-oversampled"),
    class_name: Annotated[Optional[str], typer.Option("--class", help="The class to draw.")] = None,
    n: Annotated[Optional[int], typer.Option("--n", help="Images of --class to draw.")] = None,
    balance: Annotated[bool, typer.Option("--balance", help="Top every class up to the largest class's training "
                                                            "count.")] = False,
    format: Annotated[Optional[str], typer.Option("--format", "-f", help="png, nii or dcm (default: the training "
                                                                         "files' format).")] = None,
    data: Annotated[Optional[Path], typer.Option(help="The training folder or CSV: its files are listed in the "
                                                      "manifest too (synthetic 0); a table's rows likewise.")]
    = None,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same images.")] = 0,
    device: Device = DEFAULT_DEVICE,
    threads: Threads = None,
    deidentify: Deidentify = False,
    overwrite: Overwrite = False,
) -> None:
    """Draw new images of a class (or of every class short of the largest), marked synthetic, with a manifest
    CSV (file, class, synthetic); from a table's model, rows (features, label, synthetic)."""
    from medvae.tasks.oversampling.oversample import oversample as run

    result = run_task(run, model, out, class_name=class_name, n=n, balance=balance, fmt=format, seed=seed,
                      data=data, device=device, overwrite=overwrite, deidentify=deidentify, threads=threads)
    drawn = ", ".join(f"{name} {k}" for name, k in result.counts.items()) or "none (the classes are balanced)"
    if hasattr(result, "table"):  # a tabular model: rows in synthetic.csv (and manifest.csv with --data)
        also = f" and {result.manifest} (with the real rows)" if result.manifest else ""
        typer.echo(f"wrote {count(sum(result.counts.values()), 'synthetic row')} ({drawn}) to {result.table}{also}")
        return
    typer.echo(f"wrote {count(len(result.files), 'synthetic image')} ({drawn}) and {result.manifest}")


def evaluate_oversampling(
    data: Data = "mnist",
    minority: Annotated[str, typer.Option(help="The rare class.")] = "8",
    minority_count: Annotated[Optional[int], typer.Option(help="Keep this many training images of the minority "
                                                               "(default 4 on mnist, all on a folder).")] = None,
    seeds: Annotated[int, typer.Option(help="Seeds: splits, samplers and classifiers differ per seed; the "
                                            "paired test runs across them.")] = 3,
    ratios: Annotated[str, typer.Option(help="Synthetic minority images per row, as multiples of the minority "
                                             "count.")] = "0.25,1,4",
    balance: Annotated[bool, typer.Option(help="Also a row per sampler that tops the minority up to the largest "
                                               "class.")] = True,
    samplers: Annotated[str, typer.Option(help="The samplers to compare (comma-separated).")]
    = "random,smote-pixels,smote-latent,vae,cvaegan",
    size: Annotated[int, typer.Option(help="Images are resized to SIZE per axis.")] = 28,
    classifier_epochs: Annotated[int, typer.Option(help="Epochs of each classifier.")] = 6,
    generator_epochs: Annotated[int, typer.Option(help="Epochs of the VAE and the conditional VAE-GAN.")] = 12,
    patients: Annotated[Optional[Path], typer.Option(help="A CSV naming each image's patient (default: index.csv "
                                                          "beside the data).")] = None,
    limit: Annotated[Optional[int], typer.Option(help="At most N training images of each class (after "
                                                      "--minority-count), for a quick run.")] = None,
    as_json: Json = False,
    device: Device = DEFAULT_DEVICE,
    threads: Threads = None,
    progress: Progress = True,
) -> None:
    """Does oversampling the rare class help? A small CNN trained per method (imbalanced, class weights, tuned
    threshold, random oversampling, SMOTE on pixels and latents, VAE, conditional VAE-GAN); balanced accuracy,
    macro-F1, minority recall and AUPRC on a held-out split, and a paired test across seeds."""
    from medvae.tasks.oversampling.evaluate import evaluate_oversampling as run
    from medvae.tasks.oversampling.evaluate import format_report

    try:
        amounts = tuple(float(r) for r in ratios.split(",") if r.strip())
    except ValueError:
        raise fail(f"--ratios {ratios!r}: expected comma-separated numbers such as 0.25,1,4", 2) from None
    report = run_task(run, data=data, minority=minority,
                      minority_count=minority_count if minority_count is not None or data != "mnist" else 4,
                      seeds=seeds, ratios=amounts, balance=balance,
                      samplers=tuple(x.strip() for x in samplers.split(",") if x.strip()), size=size, classifier_epochs=classifier_epochs,
                      generator_epochs=generator_epochs, patients=str(patients) if patients else None, limit=limit,
                      device=device, progress=progress, threads=threads)
    if as_json:
        typer.echo(json.dumps({"classes": report.classes, "counts": report.counts, "results": report.results},
                              indent=2))
    else:
        typer.echo(format_report(report))
