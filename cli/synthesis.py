"""``medvae train synthesis``, ``medvae synthesize`` and ``medvae evaluate synthesis``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from medvae_cli._options import (DEFAULT_DEVICE, Amp, Deidentify, Device, Json, Overwrite, Progress, Resume, Shard,
                                 Tensorboard, Threads, hidden)
from medvae_cli._run import one_of, parse_floats, parse_ints, report_batch, require, run_task


def train_synthesis(
    data: Annotated[str, typer.Option(help="A folder of subject folders: DIR/<subject>/<modality>.nii.gz (or "
                                           "BraTS names, .dcm files or DICOM series folders).")],
    source: Annotated[list[str], typer.Option(help="A modality the subjects have; repeat for several.")],
    target: Annotated[str, typer.Option(help="The modality to synthesise.")],
    model: Annotated[str, typer.Option(help="vaegan (conditional VAE-GAN) or unet (the L1-only baseline).")]
    = "vaegan",
    spatial_dims: Annotated[int, typer.Option(help="2: axial slices; 3: patches of --patch-size.")] = 2,
    patch_size: Annotated[int, typer.Option(help="3-D patch size per axis.")] = 32,
    spacing: Annotated[Optional[str], typer.Option(help="Model voxel size in mm, e.g. 2,2,2 (default: the "
                                                        "training data's median).")] = None,
    channels: Annotated[str, typer.Option(help="U-Net channels per level.")] = "16,32,64,128",
    latent_channels: Annotated[int, typer.Option(help="Channels of the spatial latent.")] = 4,
    global_latent: Annotated[int, typer.Option(help="Size of a per-image latent vector beside the spatial one: it "
                                                    "carries what the sources cannot show about the whole image, "
                                                    "such as a subject-wide perfusion level; 0: none.")] = 0,
    global_gain: Annotated[bool, typer.Option(help="Make the global latent's first value a gain on the whole "
                                                   "synthesis (exp of it), for a subject-wide factor.")] = False,
    beta: Annotated[float, typer.Option(help="KL weight.")] = 0.05,
    free_bits: Annotated[float, typer.Option(help="The least KL each spatial latent channel is charged, nats per "
                                                  "latent element (free bits, against an unused latent; 0: off).")]
    = 0.0,
    adv_weight: Annotated[float, typer.Option(help="Adversarial weight.")] = 0.02,
    adv_warmup: Annotated[int, typer.Option(help="Epochs before the adversarial term is at full weight.")] = 1,
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 20,
    batch_size: Annotated[int, typer.Option(help="Slices or patches per step.")] = 16,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    test_fraction: Annotated[float, typer.Option(help="Share held out: of the subjects, or with --holdout slabs "
                                                      "one 16 mm axial slab in round(1 / share).")] = 0.25,
    holdout: Annotated[str, typer.Option(help="subjects (hold out whole subjects) or slabs (hold out axial slabs "
                                              "of every subject, 8 mm apart from the training slices: for one "
                                              "subject; 2-D only).")] = "subjects",
    limit: Annotated[Optional[int], typer.Option(help="Use at most N subjects.")] = None,
    out: Annotated[Path, typer.Option(help="Model file; a preview PNG and the training state go beside it.")]
    = Path("medvae-synthesis.safetensors"),
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    device: Device = DEFAULT_DEVICE,
    amp: Amp = True,
    resume: Resume = False,
    overwrite: Overwrite = False,
    tensorboard: Tensorboard = None,
    progress: Progress = True,
    threads: Threads = None,
) -> None:
    """Train missing-modality synthesis: a conditional VAE-GAN from --source modalities to --target."""
    from medvae.tasks.synthesis.train import train_synthesis

    result = run_task(
        train_synthesis, data=data, sources=tuple(source), target=target, out=out, model=model,
        spatial_dims=spatial_dims, patch_size=patch_size,
        spacing=parse_floats("--spacing", spacing, 3) if spacing else None,
        channels=parse_ints("--channels", channels), latent_channels=latent_channels,
        global_latent=global_latent, global_gain=global_gain, beta=beta, free_bits=free_bits,
        adv_weight=adv_weight, adv_warmup=adv_warmup, epochs=epochs, batch_size=batch_size, lr=lr,
        test_fraction=test_fraction, holdout=holdout, limit=limit, seed=seed, device=device, amp=amp, resume=resume,
        overwrite=overwrite, tensorboard=tensorboard, progress=progress, threads=threads)
    if result is None:
        return
    r = result.record
    from medvae.errors import count

    unit = "slice" if spatial_dims == 2 else "patch"
    held = ("axial slabs of every subject" if holdout == "slabs" else ", ".join(result.test_subjects))
    typer.echo(f"trained {model} {'+'.join(s.lower() for s in source)} → {target.lower()} on "
               f"{count(len(result.train_subjects), 'subject')} ({count(result.n_train, unit, unit + ('s' if unit == 'slice' else 'es'))}; held "
               f"out: {held}) for {count(r['epochs'], 'epoch')} in {r['train_seconds']:.1f} s: "
               f"validation loss {r['val_loss'][-1]:.4f}")
    typer.echo(f"wrote {result.model_path}, {result.model_path.with_suffix('')}.preview.png")


def synthesize(
    model: Annotated[Path, typer.Argument(help="A model file from 'medvae train synthesis'.", metavar="MODEL")],
    input: Annotated[Optional[Path], typer.Argument(metavar="INPUT", show_default=False,
                                                    help="A source image (file or DICOM series folder), a subject "
                                                         "folder, or a folder of subject folders.")] = None,
    output: Annotated[Optional[Path], typer.Argument(metavar="OUTPUT", show_default=False,
                                                     help="Output file (.nii.gz, .nii, .dcm for a DICOM series, "
                                                          ".npy); for a folder of subjects, an output folder.")]
    = None,
    samples: Annotated[int, typer.Option(help="Latent draws: the output is their mean.")] = 16,
    uncertainty: Annotated[Optional[Path], typer.Option(help="Also write the per-voxel predictive standard "
                                                             "deviation here (one input; a folder of subjects "
                                                             "always gets <target>_std files).")]
    = None,
    model_uncertainty: Annotated[Optional[Path], typer.Option(help="Also write the model's part of it here: the "
                                                                   "standard deviation of the draws' means, where "
                                                                   "the model itself is unsure (0 for the L1 "
                                                                   "U-Net; one input; a folder of subjects always "
                                                                   "gets <target>_model_std files).")]
    = None,
    seed: Annotated[int, typer.Option(help="Random seed for the draws.")] = 0,
    device: Device = DEFAULT_DEVICE,
    deidentify: Deidentify = False,
    shard: Shard = None,
    overwrite: Overwrite = False,
    progress: Progress = True,
    threads: Threads = None,
    input_option: Annotated[Optional[Path], hidden("--input")] = None,
    out_option: Annotated[Optional[Path], hidden("--out")] = None,
) -> None:
    """Synthesise a missing modality; output in the input's grid and format, marked synthetic.

    Outputs that exist are skipped (each named in a note) unless --overwrite."""
    from medvae.tasks.synthesis.synthesize import synthesize as run

    input = require(one_of("input", input, input_option, "--input"), "INPUT")
    output = require(one_of("output", output, out_option, "--out"), "OUTPUT")
    report = run_task(run, model, input, output, samples=samples, uncertainty=uncertainty,
                      model_uncertainty=model_uncertainty, seed=seed, device=device, overwrite=overwrite,
                      progress=progress, threads=threads, deidentify=deidentify, shard=shard)
    also = [str(p) for p in (uncertainty, model_uncertainty) if p]
    report_batch(report, "synthesised", what="subjects", also=f" and {' and '.join(also)}" if also else "")


def evaluate_synthesis(
    model: Annotated[Path, typer.Argument(help="A model file from 'medvae train synthesis'.", metavar="MODEL")],
    data: Annotated[str, typer.Option(help="A folder of subject folders; those the model trained on are left "
                                           "out.")],
    baseline: Annotated[Optional[Path], typer.Option(help="The L1 U-Net baseline ('medvae train synthesis "
                                                          "--model unet'); default: trained once and kept "
                                                          "beside MODEL.")] = None,
    samples: Annotated[int, typer.Option(help="Latent draws per subject.")] = 16,
    seed: Annotated[int, typer.Option(help="Random seed for the draws.")] = 0,
    limit: Annotated[Optional[int], typer.Option(help="Use at most N held-out subjects.")] = None,
    as_json: Json = False,
    device: Device = DEFAULT_DEVICE,
    progress: Progress = True,
    threads: Threads = None,
) -> None:
    """PSNR/SSIM/MAE in the brain mask beside linear-regression and L1 U-Net baselines, and how the spread ranks
    the errors."""
    from medvae.tasks.synthesis.evaluate import evaluate_synthesis, format_report

    result = run_task(evaluate_synthesis, model, data, baseline=baseline, samples=samples, seed=seed, limit=limit,
                      device=device, progress=progress, threads=threads)
    typer.echo(json.dumps(result, indent=2) if as_json else format_report(result))

