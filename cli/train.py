"""``medvae train vae|vaegan``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from medvae_cli._run import parse_ints, run_task

app = typer.Typer(help="Train a model.", no_args_is_help=True)

DOCS = {
    "vae": "Train a convolutional VAE (2-D or 3-D) on a folder of images or on MNIST.",
    "vaegan": "Train a VAE-GAN: the convolutional VAE plus a patch discriminator (Larsen et al. 2016).",
}


def _command(kind: str):
    def command(
        data: Annotated[str, typer.Option(help="A folder of DICOM/NIfTI/PNG images (searched recursively; mixed "
                                               "sizes are resized keeping aspect) or 'mnist' (the embedded sample).")],
        size: Annotated[int, typer.Option(help="Model input size per axis (a multiple of 2^levels).")] = 32,
        spatial_dims: Annotated[int, typer.Option(help="2 for images, 3 for volumes.")] = 2,
        latent_dim: Annotated[int, typer.Option(help="Latent size (2 allows --grid in generate).")] = 16,
        channels: Annotated[Optional[str], typer.Option(help="Feature channels per level, e.g. 32,64,128 "
                                                             "(default from --size).")] = None,
        beta: Annotated[float, typer.Option(help="KL weight (1 = the ELBO).")] = 1.0,
        kl_warmup: Annotated[int, typer.Option(help="Epochs over which the KL weight ramps up to beta.")] = 0,
        likelihood: Annotated[str, typer.Option(help="bernoulli (BCE) or gaussian (MSE).")] = "bernoulli",
        adv_weight: Annotated[float, typer.Option(help="vaegan: adversarial weight per pixel.")] = 0.05,
        feature_weight: Annotated[float, typer.Option(help="vaegan: feature-matching weight per pixel.")] = 0.05,
        adv_warmup: Annotated[int, typer.Option(help="vaegan: epochs over which the adversarial terms ramp in.")] = 1,
        epochs: Annotated[int, typer.Option(help="Training epochs.")] = 10,
        batch_size: Annotated[int, typer.Option(help="Images per step.")] = 32,
        lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
        val_fraction: Annotated[float, typer.Option(help="Share of images held out for validation.")] = 0.1,
        normalize: Annotated[str, typer.Option(help="Intensity window per image: percentile, window, minmax.")]
        = "percentile",
        limit: Annotated[Optional[int], typer.Option(help="Use at most N images.")] = None,
        out: Annotated[Optional[Path], typer.Option(help="Model file (default medvae-KIND.safetensors); previews "
                                                         "and the training state go beside it.")] = None,
        seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
        device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
        amp: Annotated[bool, typer.Option(help="Mixed precision on CUDA.")] = True,
        resume: Annotated[bool, typer.Option(help="Continue from the training state beside --out.")] = False,
        progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    ) -> None:
        from medvae.tasks.train_generative import GenerativeTrainConfig, train_generative

        config = run_task(
            GenerativeTrainConfig, kind=kind, data=data, out=out or Path(f"medvae-{kind}.safetensors"), size=size,
            spatial_dims=spatial_dims, latent_dim=latent_dim,
            channels=parse_ints("--channels", channels) if channels else None, beta=beta, kl_warmup=kl_warmup,
            likelihood=likelihood, adv_weight=adv_weight, feature_weight=feature_weight, adv_warmup=adv_warmup,
            epochs=epochs, batch_size=batch_size, lr=lr, val_fraction=val_fraction, normalize=normalize,
            limit=limit, seed=seed, device=device, amp=amp, resume=resume, progress=progress,
        )
        if kind == "vaegan" and 0 < adv_warmup and epochs <= adv_warmup:
            typer.echo(f"note: with --adv-warmup {adv_warmup} the adversarial terms are off for the first epoch "
                       f"and reach full weight after epoch {adv_warmup}; {epochs} epochs train mostly a plain VAE",
                       err=True)
        result = run_task(train_generative, config)
        if result is None:
            return
        r = result.record
        for path, reason in result.skipped:
            typer.echo(f"note: skipped {path}: {reason}", err=True)
        typer.echo(f"trained {kind} on {result.n_train} images ({result.n_val} held out) for {r['epochs']} epochs "
                   f"in {r['train_seconds']:.1f} s: validation loss {r['val_loss'][-1]:.2f}")
        stem = result.model_path.with_suffix("")
        typer.echo(f"wrote {result.model_path}, {stem}.recon.png, {stem}.samples.png")

    command.__doc__ = DOCS[kind]
    return command


app.command("vae")(_command("vae"))
app.command("vaegan")(_command("vaegan"))


@app.command("synthesis")
def synthesis(
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
    beta: Annotated[float, typer.Option(help="KL weight.")] = 0.05,
    adv_weight: Annotated[float, typer.Option(help="Adversarial weight.")] = 0.02,
    adv_warmup: Annotated[int, typer.Option(help="Epochs before the adversarial term is at full weight.")] = 1,
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 20,
    batch_size: Annotated[int, typer.Option(help="Slices or patches per step.")] = 16,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    test_fraction: Annotated[float, typer.Option(help="Share of subjects held out (whole subjects).")] = 0.25,
    limit: Annotated[Optional[int], typer.Option(help="Use at most N subjects.")] = None,
    out: Annotated[Path, typer.Option(help="Model file; a preview PNG and the training state go beside it.")]
    = Path("medvae-synthesis.safetensors"),
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    amp: Annotated[bool, typer.Option(help="Mixed precision on CUDA.")] = True,
    resume: Annotated[bool, typer.Option(help="Continue from the training state beside --out.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Train missing-modality synthesis: a conditional VAE-GAN from --source modalities to --target."""
    from medvae_cli._run import parse_floats
    from medvae.tasks.train_synthesis import SynthesisTrainConfig, train_synthesis

    config = run_task(
        SynthesisTrainConfig, data=data, sources=tuple(source), target=target, out=out, model=model,
        spatial_dims=spatial_dims, patch_size=patch_size,
        spacing=parse_floats("--spacing", spacing, 3) if spacing else None,
        channels=parse_ints("--channels", channels), latent_channels=latent_channels, beta=beta,
        adv_weight=adv_weight, adv_warmup=adv_warmup, epochs=epochs, batch_size=batch_size, lr=lr,
        test_fraction=test_fraction, limit=limit, seed=seed, device=device, amp=amp, resume=resume,
        progress=progress)
    result = run_task(train_synthesis, config)
    if result is None:
        return
    r = result.record
    typer.echo(f"trained {model} {'+'.join(config.sources)} → {config.target} on {len(result.train_subjects)} "
               f"subjects ({result.n_train} {'slices' if spatial_dims == 2 else 'patches'}; held out: "
               f"{', '.join(result.test_subjects)}) for {r['epochs']} epochs in {r['train_seconds']:.1f} s: "
               f"validation loss {r['val_loss'][-1]:.4f}")
    typer.echo(f"wrote {result.model_path}, {result.model_path.with_suffix('')}.preview.png")


@app.command("enhance")
def enhance(
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
    patients: Annotated[Optional[str], typer.Option(help="A CSV naming each image's patient; default: index.csv "
                                                         "beside each folder, else each image is its own "
                                                         "patient.")] = None,
    lr_schedule: Annotated[str, typer.Option(help="constant, or cosine (falls to 0 over the epochs).")]
    = "constant",
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
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    amp: Annotated[bool, typer.Option(help="Mixed precision on CUDA.")] = True,
    resume: Annotated[bool, typer.Option(help="Continue from the training state beside --out.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Train the chest X-ray enhancer (a VAE-U-Net) on clean radiographs with simulated degradations."""
    from medvae_cli._run import parse_floats
    from medvae.tasks.train_enhance import EnhanceTrainConfig, train_enhance

    config = run_task(
        EnhanceTrainConfig, data=tuple(data), out=out, init=init, patch=patch, patches_per_epoch=patches_per_epoch,
        kinds=tuple(k.strip() for k in kinds.split(",") if k.strip()),
        severity=parse_floats("--severity", severity, 2), channels=parse_ints("--channels", channels),
        latent_channels=latent_channels, norm=norm, beta=beta, epochs=epochs, batch_size=batch_size, lr=lr,
        clean_fraction=clean_fraction, patients=patients, lr_schedule=lr_schedule,
        test_fraction=test_fraction, seed=seed, device=device, amp=amp, resume=resume, progress=progress)
    result = run_task(train_enhance, config)
    if result is None:
        return
    r = result.record
    val = f": validation loss {r['val_loss'][-1]:.4f}" if r.get("val_loss") else ""
    typer.echo(f"trained the enhancer on {len(result.train_images)} images ({len(result.test_images)} held out) "
               f"for {r['epochs']} epochs in {r['train_seconds']:.1f} s{val}")
    typer.echo(f"wrote {result.model_path}")


@app.command("segment")
def segment(
    images: Annotated[str, typer.Option(help="A folder of radiographs, or the root of a public set "
                                             "(Montgomery, Shenzhen, JSRT + SCR).")],
    masks: Annotated[Optional[str], typer.Option(help="A folder of lung masks named like the images.")] = None,
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
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    amp: Annotated[bool, typer.Option(help="Mixed precision on CUDA.")] = True,
    resume: Annotated[bool, typer.Option(help="Continue from the training state beside --out.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Train the ResUNet++ lung segmenter on radiographs with lung masks."""
    from medvae.tasks.train_segment import SegmentTrainConfig, train_segment

    config = run_task(
        SegmentTrainConfig, images=images, masks=masks, out=out, size=size,
        channels=parse_ints("--channels", channels), epochs=epochs, batch_size=batch_size, lr=lr,
        test_fraction=test_fraction, patients=patients, folds=folds, fold=fold, mask_convention=mask_convention,
        lr_schedule=lr_schedule, calibrate=calibrate, calibrate_holdout=calibrate_holdout,
        calibrate_films=calibrate_films, seed=seed, device=device, amp=amp, resume=resume, progress=progress)
    result = run_task(train_segment, config)
    if result is None:
        return
    r = result.record
    val = f": held-out loss {r['val_loss'][-1]:.4f}" if r["val_loss"] else ""
    typer.echo(f"trained the segmenter on {len(result.train_images)} images ({len(result.test_images)} held out) "
               f"for {r['epochs']} epochs in {r['train_seconds']:.1f} s{val}")
    typer.echo(f"wrote {result.model_path}")
