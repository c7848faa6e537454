"""``medvae evaluate enhance``: the enhancer beside classical baselines on degraded clean images.

Enhancement: each held-out clean image is degraded by every degradation at fixed severities, with a
fixed seed per (image, degradation, severity), and PSNR / SSIM (scikit-image, data range 1) against the
clean image are reported for the degraded image, medvae's enhancement (run as ``medvae enhance`` runs it:
the image's own minimum and maximum map to [0, 1] and back) and three classical scikit-image
baselines: non-local means (noise sigma estimated from the image), total-variation denoising (Chambolle) and
CLAHE. Targets: enhanced PSNR at least 3 dB above degraded on average, and above the best classical one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medvae.errors import UsageError

SEVERITIES = (0.3, 0.6, 0.9)
CLASSICAL = ("nlm", "tv", "clahe")


def noise_sigma(image: np.ndarray) -> float:
    """Gaussian noise level of an image by Immerkaer's (1996) Laplacian-difference estimator.

    scikit-image's ``estimate_sigma`` needs PyWavelets, a dependency for one number; this is the classic
    fast alternative: the image convolved with a kernel that cancels smooth structure, averaged in absolute value.
    """
    from scipy.ndimage import convolve

    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float64)
    residual = convolve(image.astype(np.float64), kernel, mode="reflect")[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2) * np.abs(residual).mean() / 6)


def classical(image: np.ndarray) -> dict[str, np.ndarray]:
    """The three classical baselines applied to a [0, 1] image."""
    from skimage.exposure import equalize_adapthist
    from skimage.restoration import denoise_nl_means, denoise_tv_chambolle

    sigma = noise_sigma(image)
    return {
        "nlm": denoise_nl_means(image, h=0.8 * sigma, sigma=sigma, patch_size=5, patch_distance=6,
                                fast_mode=True).astype(np.float32),
        "tv": denoise_tv_chambolle(image, weight=max(0.02, 2 * sigma)).astype(np.float32),
        "clahe": equalize_adapthist(np.clip(image, 0, 1), clip_limit=0.01).astype(np.float32),
    }


def quality(image: np.ndarray, clean: np.ndarray) -> tuple[float, float]:
    """(PSNR dB, SSIM) of ``image`` against ``clean``, both in [0, 1]."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    return (float(peak_signal_noise_ratio(clean, image, data_range=1.0)),
            float(structural_similarity(clean, image, data_range=1.0)))


def degraded_versions(clean: np.ndarray, index: int, kinds, severities, seed: int):
    """``(kind, severity, degraded)`` for every pair, each with its own fixed seed."""
    from medvae.data.degrade import degrade

    for k, kind in enumerate(kinds):
        for s, severity in enumerate(severities):
            yield kind, severity, degrade(clean, kind, severity, np.random.default_rng([seed, index, k, s]))


@dataclass
class EnhanceEvaluation:
    """Mean PSNR / SSIM per (kind, severity) and method, over the images; ``images`` names them."""

    images: list[str]
    rows: dict[tuple[str, float], dict[str, tuple[float, float]]] = field(default_factory=dict)

    def mean(self, method: str) -> tuple[float, float]:
        values = np.array([row[method] for row in self.rows.values()])
        return float(values[:, 0].mean()), float(values[:, 1].mean())

    def checks(self) -> list[tuple[str, bool]]:
        enhanced, degraded = self.mean("medvae")[0], self.mean("degraded")[0]
        best = max(CLASSICAL, key=lambda m: self.mean(m)[0])
        return [(f"enhanced PSNR {enhanced:.2f} dB is at least 3 dB above degraded ({degraded:.2f})",
                 enhanced >= degraded + 3),
                (f"enhanced PSNR {enhanced:.2f} dB beats the best classical baseline ({best} "
                 f"{self.mean(best)[0]:.2f})", enhanced > self.mean(best)[0])]


def trained_names(info) -> set[str]:
    """File names of the images a model trained on (names, not paths: a model may be trained elsewhere)."""
    return {Path(p).name for p in (info.training or {}).get("train_images", [])}


def eval_images(info, data: list[str] | None) -> list[Path]:
    """The images to evaluate on: those in ``data`` (files or folders) the model did not train on, else the
    images the model held out."""
    from medvae.data.batch import discover

    if data:
        seen = trained_names(info)
        paths = [p for d in data for p in discover(d) if p.name not in seen]
        if not paths:
            raise UsageError(f"data: the model trained on every image in {', '.join(data)}; pass held-out images")
        return paths
    held_out = [Path(p) for p in (info.training or {}).get("test_images", [])]
    if not held_out:
        raise UsageError("data: this model holds out no images to evaluate on; pass --data with clean images")
    return held_out


def evaluate_enhance(model: str | os.PathLike, data: list[str] | None = None, *, kinds=None,
                     severities=SEVERITIES, seed: int = 0, progress: bool = True) -> EnhanceEvaluation:
    """Score the enhancer and the classical baselines on degraded clean images (see the module docstring)."""
    from tqdm.auto import tqdm

    from medvae.data.degrade import DEGRADATIONS
    from medvae.tasks.enhance import enhance_values, load_model_of_kind
    from medvae.tasks.train_enhance import read_unit

    net, info = load_model_of_kind(model, "enhancer", option="model")
    kinds = tuple(kinds or DEGRADATIONS)
    paths = eval_images(info, data)
    sums: dict[tuple[str, float], dict[str, list]] = {}
    for i, path in enumerate(tqdm(paths, desc="evaluating", disable=not progress, leave=False)):
        clean = read_unit(path)
        for kind, severity, degraded in degraded_versions(clean, i, kinds, severities, seed):
            # medvae exactly as `medvae enhance` runs it on a file: the image's own range in and out
            outputs = {"degraded": degraded, "medvae": enhance_values(net, degraded), **classical(degraded)}
            row = sums.setdefault((kind, severity), {})
            for method, image in outputs.items():
                row.setdefault(method, []).append(quality(image, clean))
    result = EnhanceEvaluation([str(p) for p in paths])
    for key, row in sums.items():
        result.rows[key] = {m: tuple(np.mean(v, axis=0).tolist()) for m, v in row.items()}
    return result


def format_enhance(ev: EnhanceEvaluation) -> str:
    """A Markdown table: one row per (degradation, severity), PSNR / SSIM per method, then the checks."""
    methods = ("degraded", "medvae", *CLASSICAL)
    lines = [f"{len(ev.images)} clean images; PSNR dB / SSIM against the clean image", "",
             "| degradation | severity | " + " | ".join(methods) + " |",
             "|---|---:|" + "---:|" * len(methods)]
    for (kind, severity), row in ev.rows.items():
        lines.append(f"| {kind} | {severity:g} | " + " | ".join(f"{row[m][0]:.2f} / {row[m][1]:.3f}"
                                                                 for m in methods) + " |")
    lines.append("| **mean** | | " + " | ".join(f"**{ev.mean(m)[0]:.2f} / {ev.mean(m)[1]:.3f}**"
                                                  for m in methods) + " |")
    lines += [""] + [f"{'PASS' if ok else 'MISS'}: {text}" for text, ok in ev.checks()]
    return "\n".join(lines)
