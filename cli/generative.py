"""``medvae train vae|vaegan``, ``medvae generate`` and ``medvae evaluate generative``."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from medvae.errors import count
from medvae_cli._options import DEFAULT_DEVICE, Amp, Deidentify, Device, Json, Overwrite, Progress, Resume, Tensorboard, Threads
from medvae_cli._run import fail, parse_ints, run_task

DOCS = {
    "vae": "Train a convolutional VAE (2-D or 3-D) on a folder of images or on MNIST.",
    "vaegan": "Train a VAE-GAN: the convolutional VAE plus a patch discriminator (Larsen et al. 2016).",
}

VAEGAN = "VAE-GAN"
"""The help panel of the options that only a VAE-GAN has."""
VAEGAN_ONLY = ("adv_weight", "feature_weight", "adv_warmup")


def parse_digits(text: str | None) -> tuple[int, ...] | None:
    """``"0,1,2"`` -> (0, 1, 2); None when not given."""
    if text is None:
        return None
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise fail(f"--digits {text!r}: expected comma-separated digits such as '0,1,2'") from None


def train_command(kind: str):
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
        likelihood: Annotated[str, typer.Option(help="bernoulli (BCE), gaussian (MSE, fixed sigma) or "
                                                     "gaussian-learned (a per-pixel variance the decoder learns; "
                                                     "vae only; what 'medvae score' works best with).")]
        = "bernoulli",
        adv_weight: Annotated[float, typer.Option(help="Adversarial weight per pixel.", rich_help_panel=VAEGAN)]
        = 0.05,
        feature_weight: Annotated[float, typer.Option(help="Feature-matching weight per pixel.",
                                                      rich_help_panel=VAEGAN)] = 0.05,
        adv_warmup: Annotated[int, typer.Option(help="Epochs over which the adversarial terms ramp in.",
                                                rich_help_panel=VAEGAN)] = 1,
        epochs: Annotated[int, typer.Option(help="Training epochs.")] = 10,
        batch_size: Annotated[int, typer.Option(help="Images per step.")] = 32,
        lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
        val_fraction: Annotated[float, typer.Option(help="Share of images held out for validation.")] = 0.1,
        normalize: Annotated[str, typer.Option(help="Intensity window per image: percentile, window, minmax.")]
        = "percentile",
        limit: Annotated[Optional[int], typer.Option(help="Use at most N images.")] = None,
        digits: Annotated[Optional[str], typer.Option(help="With --data mnist: train on these digits only, "
                                                           "e.g. 0,1,2,3,4,5,6,8,9 (the rest are anomalies to "
                                                           "'medvae evaluate anomaly').")] = None,
        out: Annotated[Optional[Path], typer.Option(help="Model file (default medvae-KIND.safetensors); previews "
                                                         "and the training state go beside it.")] = None,
        seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
        device: Device = DEFAULT_DEVICE,
        threads: Threads = None,
        amp: Amp = True,
        resume: Resume = False,
        overwrite: Overwrite = False,
        tensorboard: Tensorboard = None,
        progress: Progress = True,
    ) -> None:
        from medvae.tasks.generative.train import train_generative

        if kind == "vaegan" and 0 < adv_warmup and epochs <= adv_warmup:
            typer.echo(f"note: with --adv-warmup {adv_warmup} the adversarial terms are off for the first epoch "
                       f"and reach full weight after epoch {adv_warmup}; {count(epochs, 'epoch')} "
                       f"{'trains' if epochs == 1 else 'train'} mostly a plain VAE",
                       err=True)
        result = run_task(
            train_generative, kind=kind, data=data, out=out or Path(f"medvae-{kind}.safetensors"), size=size,
            spatial_dims=spatial_dims, latent_dim=latent_dim,
            channels=parse_ints("--channels", channels) if channels else None, beta=beta, kl_warmup=kl_warmup,
            likelihood=likelihood, adv_weight=adv_weight, feature_weight=feature_weight, adv_warmup=adv_warmup,
            epochs=epochs, batch_size=batch_size, lr=lr, val_fraction=val_fraction, normalize=normalize,
            limit=limit, digits=parse_digits(digits), seed=seed, device=device, amp=amp, resume=resume, overwrite=overwrite,
            tensorboard=tensorboard, progress=progress, threads=threads,
        )
        if result is None:
            return
        r = result.record
        for path, reason in result.skipped:
            typer.echo(f"note: skipped {path}: {reason}", err=True)
        typer.echo(f"trained {kind} on {count(result.n_train, 'image')} ({result.n_val} held out) for "
                   f"{count(r['epochs'], 'epoch')} "
                   f"in {r['train_seconds']:.1f} s: validation loss {r['val_loss'][-1]:.2f}")
        stem = result.model_path.with_suffix("")
        typer.echo(f"wrote {result.model_path}, {stem}.recon.png, {stem}.samples.png")

    command.__doc__ = DOCS[kind]
    if kind != "vaegan":  # a plain VAE has no discriminator: its options are not offered (nor accepted) there
        signature = inspect.signature(command, eval_str=True)
        command.__signature__ = signature.replace(
            parameters=[p for p in signature.parameters.values() if p.name not in VAEGAN_ONLY])
    return command


def generate(
    model: Annotated[Path, typer.Argument(help="A model file from 'medvae train vae|vaegan'.", metavar="MODEL")],
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("medvae-generated"),
    n: Annotated[int, typer.Option("--n", help="Images to draw from the prior.")] = 16,
    format: Annotated[str, typer.Option("--format", "-f", help="png, nii or dcm (NIfTI/DICOM marked synthetic).")]
    = "png",
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same images.")] = 0,
    grid: Annotated[bool, typer.Option("--grid", help="Decode a latent grid (models with a 2-D latent).")] = False,
    grid_size: Annotated[int, typer.Option(help="Images per side of the grid.")] = 15,
    grid_range: Annotated[float, typer.Option(help="The grid covers [-r, r]^2.")] = 3.0,
    interpolate: Annotated[Optional[tuple[Path, Path]], typer.Option(help="Two images A B to encode and "
                                                                           "interpolate between.")] = None,
    steps: Annotated[int, typer.Option(help="Points on the interpolation path.")] = 8,
    device: Device = DEFAULT_DEVICE,
    threads: Threads = None,
    deidentify: Deidentify = False,
    overwrite: Overwrite = False,
) -> None:
    """Generate images: draws from the prior, a latent grid, or an interpolation; plus a contact sheet.

    A set already in --out (the same mode's images or the contact sheet) is left alone, with a note, unless
    --overwrite; a run killed before it finished is resumed by the same command."""
    from medvae.tasks.generative.generate import generate as run

    result = run_task(run, model, out, n=n, fmt=format, seed=seed, grid=grid, grid_size=grid_size,
                      grid_range=grid_range, interpolate=tuple(interpolate) if interpolate else None, steps=steps,
                      device=device, overwrite=overwrite, threads=threads, deidentify=deidentify)
    if result.resumed:
        typer.echo(f"note: {out}: resumed an interrupted run: kept the {count(result.resumed, 'image')} it had "
                   "written", err=True)
    typer.echo(f"wrote {count(len(result.files), 'image')} and {result.contact_sheet.name} to {out}")


def evaluate_generative(
    model: Annotated[Path, typer.Argument(help="A model file from 'medvae train vae|vaegan'.", metavar="MODEL")],
    data: Annotated[str, typer.Option(help="'mnist' (the embedded sample's test split) or a folder of held-out "
                                           "images.")] = "mnist",
    samples: Annotated[Optional[int], typer.Option(help="Prior samples (default: one per real image).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed for the samples.")] = 0,
    limit: Annotated[Optional[int], typer.Option(help="Use at most N held-out images.")] = None,
    as_json: Json = False,
    device: Device = DEFAULT_DEVICE,
    threads: Threads = None,
    progress: Progress = True,
) -> None:
    """Reconstruction PSNR/SSIM, -ELBO, sample sharpness and (MNIST) a Fréchet distance."""
    from medvae.tasks.generative.evaluate import evaluate_generative, format_report

    result = run_task(evaluate_generative, model, data, n_samples=samples, seed=seed, limit=limit, device=device,
                      progress=progress, threads=threads)
    typer.echo(json.dumps(result, indent=2) if as_json else format_report(result))

