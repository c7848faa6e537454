"""``medvae evaluate generative MODEL --data DIR|mnist``: how good a VAE or VAE-GAN is, measured.

On held-out images: reconstruction PSNR and SSIM (from the posterior mean), the negative ELBO per image,
and the sharpness (variance of the Laplacian) of prior samples beside that of real images. On MNIST
also a Fréchet distance between samples and real test digits in the feature space of a digit classifier
that medvae trains itself (:mod:`medvae.models.digit_classifier`; standard FID needs Inception weights
from the internet).
"""

from __future__ import annotations

import os
from typing import Any


def evaluate_generative(model_path: str | os.PathLike, data: str = "mnist", *, n_samples: int | None = None,
                        seed: int = 0, limit: int | None = None, batch_size: int = 250,
                        device: str = "auto", progress: bool = True) -> dict[str, Any]:
    """Measure a generative model on held-out data; returns a dict of metrics (see the module docstring).

    Args:
        model_path: a model file from ``medvae train vae|vaegan``.
        data: ``"mnist"`` (the embedded sample's test split, never used in training) or a folder of
            held-out images, prepared the way the model's training data was.
        n_samples: prior samples for sharpness and Fréchet distance (default: as many as real images).
        seed: fixes the prior samples.
        limit: use at most this many held-out images.
        progress: show a progress bar (over the held-out batches, then the samples' batches).
    """
    import torch
    from tqdm.auto import tqdm

    from medvae.checkpoint import load_model
    from medvae.errors import UsageError, check_positive
    from medvae.metrics import frechet_distance, laplacian_variance, negative_elbo, psnr, ssim
    from medvae.train import resolve_device

    for name, value in (("samples", n_samples), ("limit", limit)):
        if value is not None:
            check_positive(name, value)
    model, info = load_model(model_path, device=str(resolve_device(device)))
    model.eval()
    if "axes" not in info.preprocessing or not hasattr(getattr(model, "config", None), "in_shape"):
        raise UsageError(f"{model_path}: evaluate generative takes models from 'medvae train vae|vaegan' "
                         "(the MNIST demo reports its own metrics in metrics.json)")
    shape = tuple(model.config.in_shape)
    spatial_dims = len(shape) - 1
    note = None
    if data == "mnist" and spatial_dims != 2:
        raise UsageError(f"data mnist is 2-D but {model_path} makes {spatial_dims}-D images; pass --data with "
                         "a folder of held-out volumes", param="data")
    if data == "mnist":
        from medvae.tasks.generative.train import mnist_images

        real = mnist_images("test", shape[1])
        source = "mnist (embedded sample, test split)"
    else:
        from medvae.data.datasets import load_image_folder

        from pathlib import Path

        normalize = info.preprocessing.get("normalize", "percentile")
        normalize = normalize if normalize in ("percentile", "window", "minmax") else "percentile"
        val_files = info.training.get("val_files")
        same = str(Path(data).resolve()) == info.training.get("data")
        real = load_image_folder(data, shape[1:], spatial_dims, normalize=normalize,
                                 files=val_files if same and val_files else None, progress=progress).images
        source = str(data)
        if same:  # the training folder: score only the images training held out
            note = (f"the training folder: only its {len(real)} held-out validation images were used"
                    if val_files else "the training folder, and the model file does not list its held-out images: "
                    "these scores include training images")
    if limit:
        real = real[:limit]
    dev = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    n_samples = n_samples or len(real)
    out: dict[str, list] = {"psnr": [], "ssim": [], "neg_elbo": [], "recon_nll": [], "kl": []}
    samples = []
    torch.manual_seed(seed)
    if not progress:  # with --progress the bars say it
        from medvae.errors import count
        from medvae.train.report import note

        note(f"evaluating {count(len(real), 'held-out image')} and drawing {count(n_samples, 'sample')}")
    with torch.no_grad():
        for i in tqdm(range(0, len(real), batch_size), desc="evaluating", unit="batch", disable=not progress,
                      leave=False):
            x = real[i:i + batch_size].to(dev)
            mu, _ = model.encode(x)
            recon = model.generate(mu)
            out["psnr"].append(psnr(recon, x).cpu())
            out["ssim"].append(ssim(recon, x).cpu())
            terms = negative_elbo(model, x)
            out["neg_elbo"].append(terms["neg_elbo"].cpu())
            out["recon_nll"].append(terms["recon"].cpu())
            out["kl"].append(terms["kl"].cpu())
        for i in tqdm(range(0, n_samples, batch_size), desc="sampling", unit="batch", disable=not progress,
                      leave=False):
            z = torch.randn(min(batch_size, n_samples - i), model.latent_dim, generator=g)
            samples.append(model.generate(z.to(dev)).cpu())
    samples_t = torch.cat(samples)
    stats = {k: torch.cat(v) for k, v in out.items()}
    result: dict[str, Any] = {
        "model": str(model_path), "kind": info.kind, "data": source, "images": len(real), "samples": n_samples,
        "seed": seed,
        **{k: float(v.mean()) for k, v in stats.items()},
        "psnr_sd": float(stats["psnr"].std()) if len(real) > 1 else 0.0,
        "ssim_sd": float(stats["ssim"].std()) if len(real) > 1 else 0.0,
        "sharpness_samples": float(laplacian_variance(samples_t).mean()),
        "sharpness_real": float(laplacian_variance(real).mean()),
    }
    if note:
        result["note"] = note
    if data == "mnist" and spatial_dims == 2:
        from medvae.tasks.generative.classifier import digit_classifier

        classifier, accuracy = digit_classifier()
        with torch.no_grad():
            fa = torch.cat([classifier.features(s) for s in samples_t.split(batch_size)])
            fb = torch.cat([classifier.features(r) for r in real.split(batch_size)])
            fr = torch.cat([classifier.features(r) for r in mnist_train_reference(shape[1]).split(batch_size)])
        result["frechet_distance"] = frechet_distance(fa, fb)
        result["frechet_distance_train_vs_test"] = frechet_distance(fr, fb)  # the floor: real digits vs real
        result["classifier_test_accuracy"] = accuracy
    return result


def mnist_train_reference(size: int, n: int = 1000):
    """1,000 real training digits: the Fréchet distance of real against real test digits is the floor."""
    from medvae.tasks.generative.train import mnist_images

    return mnist_images("train", size)[:n]


def format_report(r: dict[str, Any]) -> str:
    from medvae.errors import count

    lines = [f"{r['model']} ({r['kind']}) on {count(r['images'], 'held-out image')} of {r['data']}:",
             f"  reconstruction PSNR {r['psnr']:.2f} dB (sd {r['psnr_sd']:.2f}), SSIM {r['ssim']:.4f} "
             f"(sd {r['ssim_sd']:.4f})",
             f"  -ELBO {r['neg_elbo']:.2f} nats/image (reconstruction {r['recon_nll']:.2f} + KL {r['kl']:.2f})",
             f"  sharpness (variance of the Laplacian): samples {r['sharpness_samples']:.4f}, "
             f"real images {r['sharpness_real']:.4f}"]
    if r.get("note"):
        lines.insert(1, f"  note: {r['note']}")
    if "frechet_distance" in r:
        lines.append(f"  Fréchet distance, {count(r['samples'], 'sample')} vs real test digits: "
                     f"{r['frechet_distance']:.2f} "
                     f"(real train vs test: {r['frechet_distance_train_vs_test']:.2f}; digit classifier "
                     f"accuracy {r['classifier_test_accuracy']:.3f})")
    return "\n".join(lines)
