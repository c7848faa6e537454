"""Chest X-rays: ``medvae enhance``, ``medvae segment``, ``medvae train enhance|segment`` and ``medvae evaluate
enhance|segment|chest-check``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from medvae.errors import count
from medvae_cli._options import (DEFAULT_DEVICE, Amp, Deidentify, Device, Json, Overwrite, Progress, Resume, Shard,
                                 Tensorboard, Threads, hidden)
from medvae_cli._run import fail, parse_floats, parse_ints, parse_kinds, report_batch, run_task


def enhance(
    input: Annotated[Path, typer.Argument(help="A radiograph (DICOM, PNG, TIFF, NIfTI, ...) or a folder of them "
                                               "(searched recursively).", metavar="INPUT")],
    output: Annotated[Path, typer.Argument(help="Output file for one input, or a folder mirroring the input's.",
                                           metavar="OUTPUT")],
    model: Annotated[Optional[Path], typer.Option(help="An enhancer from 'medvae train enhance' (default: the "
                                                       "one shipped with medvae).")] = None,
    compare: Annotated[Optional[Path], typer.Option(help="Also write <name>.before.png / .after.png pairs here, "
                                                         "through the same display window.")] = None,
    tile: Annotated[int, typer.Option(help="Largest tile side (pixels); larger images are split into tiles.")]
    = 1024,
    overlap: Annotated[int, typer.Option(help="Pixels shared by neighbouring tiles.")] = 64,
    device: Device = DEFAULT_DEVICE,
    threads: Threads = None,
    check: Annotated[bool, typer.Option(help="Say which inputs do not look like frontal chest films (a note per "
                                             "file, and chest_check.csv for a folder).")] = True,
    checker: Annotated[Optional[Path], typer.Option(help="The lung segmenter whose output makes that check "
                                                         "(default: the one shipped with medvae).")] = None,
    compile: Annotated[bool, typer.Option("--compile", help="Compile the enhancer with torch.compile: faster per "
                                          "film after a compile on the first (tens of seconds the first time on a "
                                          "machine, a few once cached); runs as usual where it cannot compile.")]
    = False,
    deidentify: Deidentify = False,
    shard: Shard = None,
    overwrite: Overwrite = False,
    progress: Progress = True,
) -> None:
    """Enhance chest radiographs: each output in its input's format, size, dtype, geometry and value range.

    Outputs that exist are skipped (each named in a note) unless --overwrite."""
    from medvae.tasks.cxr.enhance import EnhanceOptions
    from medvae.tasks.cxr.enhance import enhance as run

    options = EnhanceOptions(tile=tile, overlap=overlap, compare=compare, device=device, check=check,
                             checker=checker, deidentify=deidentify, compile=compile)
    report_batch(run_task(run, input, output, model=model, options=options, overwrite=overwrite, progress=progress,
                 threads=threads, shard=shard), "enhanced")


def segment(
    input: Annotated[Path, typer.Argument(help="A chest radiograph or a folder of them (searched recursively).",
                                          metavar="INPUT")],
    output: Annotated[Path, typer.Argument(help="Output folder: masks, <name>.overlay.png and lung_areas.csv.",
                                           metavar="OUTPUT")],
    model: Annotated[Optional[Path], typer.Option(help="A segmenter from 'medvae train segment' (default: the "
                                                       "one shipped with medvae).")] = None,
    enhance: Annotated[bool, typer.Option("--enhance", help="Enhance each radiograph first.")] = False,
    enhancer: Annotated[Optional[Path], typer.Option(help="The enhancer for --enhance (default: the shipped "
                                                          "one); implies --enhance.")] = None,
    format: Annotated[str, typer.Option("--format", help="Mask format: png (0/255), nii (1 right, 2 left lung) "
                                                         "or dcm (DICOM SEG; DICOM inputs).")] = "png",
    device: Device = DEFAULT_DEVICE,
    threads: Threads = None,
    deidentify: Deidentify = False,
    shard: Shard = None,
    overwrite: Overwrite = False,
    progress: Progress = True,
) -> None:
    """Segment the lungs with a ResUNet++: masks in each input's geometry, overlays and a CSV of lung areas.

    Masks that exist are skipped (each named in a note; their areas stay in the CSV) unless --overwrite."""
    from medvae.tasks.cxr.segment import segment as run

    report, csv_path = run_task(run, input, output, model=model, enhance=enhance, enhancer=enhancer, fmt=format,
                                overwrite=overwrite, progress=progress, device=device, threads=threads,
                                deidentify=deidentify, shard=shard)
    typer.echo(f"lung areas: {csv_path}")
    report_batch(report, "segmented")


def train_enhance(
    data: Annotated[list[str], typer.Option(help="Clean radiographs: a file (always trained on) or a folder "
                                                 "(split by patient); repeat for several.")],
    init: Annotated[Optional[Path], typer.Option(help="Fine-tune this enhancer (its architecture options win).")]
    = None,
    patch: Annotated[int, typer.Option(help="Training patch size (pixels).")] = 128,
    patches_per_epoch: Annotated[int, typer.Option(help="Random degraded patches per epoch.")] = 1024,
    kinds: Annotated[str, typer.Option(help="Degradations to train on.")] = "noise,blur,contrast,grid,exposure",
    severity: Annotated[str, typer.Option(help="Severity range low,high within 0..1.")] = "0.1,1.0",
    clean_fraction: Annotated[float, typer.Option(help="Share of patches left undegraded (the model learns to "
                                                       "leave a good film alone).")] = 0.1,
    annotations: Annotated[float, typer.Option(help="Share of patches given burnt-in text, arrows and side "
                                                    "markers (drawn before degrading, kept in the target), so "
                                                    "the model learns to leave them alone.")] = 0.0,
    borders: Annotated[float, typer.Option(help="Share of patches cut at the film's own edge, so the model "
                                                "learns to leave a film's border rows as they are.")] = 0.0,
    collimation: Annotated[float, typer.Option(help="Share of patches given a flat margin beyond a sharp edge "
                                                    "(a collimator's shadow, a blank border), so the model "
                                                    "learns to keep that edge sharp.")] = 0.0,
    appearance: Annotated[float, typer.Option(help="Share of patches whose exposure or contrast is changed in "
                                                   "both input and target, so the model learns to leave "
                                                   "exposure and contrast as they are.")] = 0.0,
    patients: Annotated[Optional[str], typer.Option(help="A CSV naming each image's patient; default: index.csv "
                                                         "beside each folder, else each image is its own "
                                                         "patient.")] = None,
    lr_schedule: Annotated[str, typer.Option(help="constant, or cosine (falls to 0 over the epochs).")]
    = "constant",
    attribution: Annotated[str, typer.Option(help="Where the training films come from and their licence (stored "
                                                  "in the model file).")] = "",
    channels: Annotated[str, typer.Option(help="U-Net channels per level.")] = "16,32,64,128",
    latent_channels: Annotated[int, typer.Option(help="Channels of the variational bottleneck.")] = 8,
    norm: Annotated[str, typer.Option(help="batch (exact tiling, fast channels-last inference), instance or "
                                           "none.")] = "batch",
    beta: Annotated[float, typer.Option(help="KL weight.")] = 1e-4,
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 10,
    batch_size: Annotated[int, typer.Option(help="Patches per step.")] = 16,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    test_fraction: Annotated[float, typer.Option(help="Share of the folders' images held out.")] = 0.2,
    out: Annotated[Path, typer.Option(help="Model file; the training state goes beside it.")]
    = Path("medvae-enhancer.safetensors"),
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    device: Device = DEFAULT_DEVICE,
    threads: Threads = None,
    amp: Amp = True,
    resume: Resume = False,
    overwrite: Overwrite = False,
    tensorboard: Tensorboard = None,
    progress: Progress = True,
) -> None:
    """Train the chest X-ray enhancer (a VAE-U-Net) on clean radiographs with simulated degradations."""
    from medvae.tasks.cxr.train_enhance import train_enhance

    result = run_task(
        train_enhance, data=tuple(data), out=out, init=init, patch=patch, patches_per_epoch=patches_per_epoch,
        kinds=parse_kinds(kinds) or (), severity=parse_floats("--severity", severity, 2),
        channels=parse_ints("--channels", channels), latent_channels=latent_channels, norm=norm, beta=beta,
        epochs=epochs, batch_size=batch_size, lr=lr, clean_fraction=clean_fraction, annotations=annotations,
        borders=borders, collimation=collimation, appearance=appearance, patients=patients, lr_schedule=lr_schedule,
        attribution=attribution, test_fraction=test_fraction, seed=seed, device=device, amp=amp, resume=resume,
        overwrite=overwrite, tensorboard=tensorboard, progress=progress, threads=threads)
    if result is None:
        return
    r = result.record
    val = f": validation loss {r['val_loss'][-1]:.4f}" if r.get("val_loss") else ""
    typer.echo(f"trained the enhancer on {count(len(result.train_images), 'image')} ({len(result.test_images)} "
               f"held out) for {count(r['epochs'], 'epoch')} in {r['train_seconds']:.1f} s{val}")
    typer.echo(f"wrote {result.model_path}")


def train_segment(
    data: Annotated[Optional[str], typer.Option(show_default=False,
                                                help="A folder holding images/ (radiographs) and masks/ (lung "
                                                     "masks named like the images): what 'medvae phantom cxr' "
                                                     "writes, and the layout of the shared lung set.")] = None,
    size: Annotated[int, typer.Option(help="Images are resized to SIZE x SIZE.")] = 256,
    channels: Annotated[str, typer.Option(help="ResUNet++ channels per level.")] = "16,32,64,128",
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 20,
    batch_size: Annotated[int, typer.Option(help="Images per step.")] = 8,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    test_fraction: Annotated[float, typer.Option(help="Share of images held out, whole patients at a time; 0 "
                                                      "trains on every image.")] = 0.2,
    patients: Annotated[Optional[str], typer.Option(help="A CSV naming each image's patient (columns like "
                                                         "image, patient_id); default: index.csv beside the "
                                                         "images folder, else each image is its own patient.")]
    = None,
    folds: Annotated[int, typer.Option(help="Patient-level cross-validation: split the patients into FOLDS "
                                            "folds and hold out --fold.")] = 0,
    fold: Annotated[int, typer.Option(help="The fold held out (0 .. FOLDS-1).")] = 0,
    exposure: Annotated[float, typer.Option(help="Share of training films given simulated over- or "
                                                 "under-exposure, so badly exposed films still segment.")] = 0.0,
    opacity: Annotated[float, typer.Option(help="Share of training films given simulated consolidation or "
                                                "effusion over the lungs (mask unchanged), so a lung whose edge "
                                                "is hidden is still drawn.")] = 0.0,
    mask_convention: Annotated[str, typer.Option(help="What the masks count as lung (stored in the model file), "
                                                      "e.g. 'retrocardiac lung included'.")] = "",
    lr_schedule: Annotated[str, typer.Option(help="constant, or cosine (falls to 0 over the epochs).")] = "cosine",
    calibrate: Annotated[Optional[str], typer.Option(help="Chest films (a folder) that set the range of the "
                                                          "'looks like a frontal chest film' check: the "
                                                          "training part of a patient split of them; default: "
                                                          "the training films.")] = None,
    calibrate_holdout: Annotated[float, typer.Option(help="Share of --calibrate's films held out (whole "
                                                          "patients) to measure false alarms on.")] = 0.15,
    calibrate_films: Annotated[int, typer.Option(help="At most this many --calibrate films set the range.")] = 300,
    out: Annotated[Path, typer.Option(help="Model file; the training state goes beside it.")]
    = Path("medvae-segmenter.safetensors"),
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    device: Device = DEFAULT_DEVICE,
    threads: Threads = None,
    amp: Amp = True,
    resume: Resume = False,
    overwrite: Overwrite = False,
    tensorboard: Tensorboard = None,
    progress: Progress = True,
    images: Annotated[Optional[str], hidden("--images")] = None,
    masks: Annotated[Optional[str], hidden("--masks")] = None,
) -> None:
    """Train the ResUNet++ lung segmenter on radiographs with lung masks (--data FOLDER: FOLDER/images and
    FOLDER/masks)."""
    from medvae.tasks.cxr.train_segment import train_segment

    if data is None and images is None:
        raise fail("missing option --data: a folder holding images/ and masks/")
    if data is not None and (images is not None or masks is not None):
        raise fail(f"{'--images' if images is not None else '--masks'} is the old spelling of --data "
                   "(FOLDER/images and FOLDER/masks); give --data only")
    # --images/--masks: the old spelling (hidden, for one release); --images may also name a public set's root
    source = {"data": data} if data is not None else {"images": images, "masks": masks}
    result = run_task(
        train_segment, **source, out=out, size=size, channels=parse_ints("--channels", channels), epochs=epochs,
        batch_size=batch_size, lr=lr, test_fraction=test_fraction, patients=patients, folds=folds, fold=fold,
        exposure=exposure, opacity=opacity, mask_convention=mask_convention, lr_schedule=lr_schedule,
        calibrate=calibrate, calibrate_holdout=calibrate_holdout, calibrate_films=calibrate_films, seed=seed,
        device=device, amp=amp, resume=resume, overwrite=overwrite, tensorboard=tensorboard, progress=progress, threads=threads)
    if result is None:
        return
    r = result.record
    val = f": held-out loss {r['val_loss'][-1]:.4f}" if r["val_loss"] else ""
    typer.echo(f"trained the segmenter on {count(len(result.train_images), 'image')} ({len(result.test_images)} "
               f"held out) for {count(r['epochs'], 'epoch')} in {r['train_seconds']:.1f} s{val}")
    typer.echo(f"wrote {result.model_path}")


def evaluate_enhance(
    model: Annotated[Path, typer.Argument(help="An enhancer model file ('medvae train enhance').", metavar="MODEL")],
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
    as_json: Json = False,
    device: Device = DEFAULT_DEVICE,
    threads: Threads = None,
    progress: Progress = True,
) -> None:
    """PSNR/SSIM of degraded and enhanced films beside tuned non-local means, TV, Gaussian, median and CLAHE."""
    from medvae.tasks.cxr.evaluate_enhance import evaluate_enhance, format_enhance

    result = run_task(evaluate_enhance, model, data, kinds=parse_kinds(kinds),
                      severities=parse_floats("--severities", severities), seed=seed, size=size, tune=tune,
                      limit=limit, progress=progress, device=device, threads=threads)
    typer.echo(json.dumps(result.to_dict(), indent=2) if as_json else format_enhance(result))


def evaluate_segment(
    model: Annotated[list[Path], typer.Argument(help="Segmenter model files ('medvae train segment'): one, or one "
                                                     "per fold of a cross-validation (--folds K --fold I), each "
                                                     "scored on the films it held out.", metavar="MODEL")],
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
    as_json: Json = False,
    device: Device = DEFAULT_DEVICE,
    threads: Threads = None,
    progress: Progress = True,
) -> None:
    """Dice and HD95 on clean, degraded and enhanced radiographs, per fold and overall."""
    from medvae.tasks.cxr.evaluate_segment import evaluate_segment, format_segment

    chosen = () if kinds is not None and kinds.strip().lower() == "none" else parse_kinds(kinds)
    result = run_task(evaluate_segment, model, data, masks, enhancer=enhancer, kinds=chosen,
                      severities=parse_floats("--severities", severities), seed=seed, size=size,
                      classical=classical, limit=limit, progress=progress, device=device, threads=threads)
    typer.echo(json.dumps(result.to_dict(), indent=2) if as_json else format_segment(result))


def evaluate_chest_check(
    model: Annotated[Optional[Path], typer.Argument(help="A segmenter model file (default: the shipped one).",
                                                    metavar="MODEL")]
    = None,
    chest: Annotated[list[str], typer.Option(help="A folder of frontal chest films (repeatable); films of "
                                                  "patients the model saw are left out.")] = [],  # noqa: B006
    other: Annotated[list[str], typer.Option(help="Files or folders of images that are not frontal chest films "
                                                  "(repeatable).")] = [],  # noqa: B006
    limit: Annotated[Optional[int], typer.Option(help="At most N chest films per folder.")] = None,
    as_json: Json = False,
    device: Device = DEFAULT_DEVICE,
    threads: Threads = None,
    progress: Progress = True,
) -> None:
    """False alarms on unseen chest films and detections on other images of the 'not a chest film' check."""
    from medvae.tasks.cxr.evaluate_chest_check import evaluate_chest_check, format_check

    result = run_task(evaluate_chest_check, model, chest, other, limit=limit, progress=progress, device=device,
                      threads=threads)
    typer.echo(json.dumps(result.to_dict(), indent=2) if as_json else format_check(result))

