"""``medvae evaluate synthesis MODEL --data DIR``: the synthesis model beside two baselines, on held-out subjects.

Held-out subjects are those of ``DIR`` the model did not train on (the model file lists its training
subjects' folders). For each, inside the brain mask (the subject's ``mask`` image, or the voxels where a
source is non-zero), in the subject's own grid and the target's own units:

* **model**: the mean of ``samples`` draws from the conditional VAE-GAN;
* **linear**: a least-squares intensity regression ``target ≈ a + Σ b_i · source_i`` on the normalised
  sources, fitted on the model's training subjects inside their masks;
* **L1 U-Net**: the same U-Net trained with L1 only (``medvae train synthesis --model unet``) on the same
  subjects, epochs and seed; given with ``baseline`` or trained here once and kept as
  ``<model>.l1unet.safetensors``.

Metrics: PSNR (range of the target inside the mask), SSIM (map averaged over the mask), MAE; and the
Spearman correlation between the model's per-voxel standard deviation and its absolute error.

Where a subject also holds ``<target>_truth`` (the brain phantoms' noise-free CBF), every metric is also
computed against it: the measured target carries noise no method can predict, the truth does not.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import numpy as np

from medvae.errors import InputError, UsageError, check_positive

METHODS = ("model", "linear", "l1_unet")
LABELS = {"model": "VAE-GAN", "linear": "linear", "l1_unet": "L1 U-Net"}
SPEARMAN_TARGET = 0.3


def _mask(images: dict, sources: list[str]) -> np.ndarray:
    if "mask" in images:
        return images["mask"].array > 0.5
    return np.any(np.stack([images[s].array != 0 for s in sources]), axis=0)


def _design(images: dict, sources: list[str]) -> np.ndarray:
    from medvae.data.paired import normalize_sources

    stack = normalize_sources(np.stack([images[s].array for s in sources]))
    return np.concatenate([np.ones((1, *stack.shape[1:]), np.float32), stack])  # (1 + S, x, y, z)


def fit_linear(subjects: list[dict], sources: list[str], target: str) -> np.ndarray:
    """Least-squares coefficients ``(1 + S,)`` of ``target ≈ a + Σ b_i source_i`` inside the subjects' masks."""
    xs, ys = [], []
    for images in subjects:
        mask = _mask(images, sources)
        xs.append(_design(images, sources)[:, mask].T)
        ys.append(np.asarray(images[target].array, np.float64)[mask])
    coef, *_ = np.linalg.lstsq(np.concatenate(xs).astype(np.float64), np.concatenate(ys), rcond=None)
    return coef


def apply_linear(coef: np.ndarray, images: dict, sources: list[str]) -> np.ndarray:
    """The linear baseline's prediction on the subject's grid (0 where every source is 0)."""
    design = _design(images, sources)
    pred = np.tensordot(coef, design, axes=1)
    return np.where(np.any(design[1:] != 0, axis=0), pred, 0.0)


def l1_unet(model_path: Path, info, baseline: str | os.PathLike | None, device: str, progress: bool):
    """``(model, info, note)``: the L1 U-Net baseline from ``baseline``, from beside the model, or trained now."""
    from medvae.checkpoint import load_model_of_kind
    from medvae.tasks.synthesis.train import train_synthesis

    path = Path(baseline) if baseline else model_path.with_suffix(".l1unet.safetensors")
    note = f"L1 U-Net baseline: {path}"
    if not path.is_file():
        if baseline:
            raise InputError(f"{path}: no such file (the L1 U-Net baseline)")
        config = dict(info.training.get("config") or {})
        if not config:
            raise InputError(f"{model_path}: the model file does not record its training settings; pass "
                             "--baseline with a model from 'medvae train synthesis --model unet'")
        config.update(model="unet", out=path, progress=progress, previews=False, resume=False,
                      sources=tuple(config["sources"]), channels=tuple(config["channels"]),
                      spacing=tuple(config["spacing"]) if config.get("spacing") else None)
        with contextlib.redirect_stdout(sys.stderr):  # stdout carries the report (and --json)
            train_synthesis(**config)  # its own fields and the training loop's, as plain_config records them
        note = f"L1 U-Net baseline trained with the model's data, subjects, epochs and seed: wrote {path}"
    unet, unet_info = load_model_of_kind(path, "synthesis", option="baseline", device=device)
    if unet.config.latent_channels or unet.config.gan:
        raise UsageError(f"baseline {path} is a VAE-GAN; pass a model from 'medvae train synthesis --model unet'", param="baseline")
    if unet_info.training.get("train_subjects") != info.training.get("train_subjects"):
        note += " (warning: trained on other subjects than the model)"
    return unet, unet_info, note


def evaluate_synthesis(model_path: str | os.PathLike, data: str | os.PathLike, *, baseline=None, samples: int = 16,
                       seed: int = 0, limit: int | None = None, device: str = "auto", progress: bool = True) -> dict:
    """Score the model, the linear regression and the L1 U-Net on ``data``'s held-out subjects (see module doc)."""
    from tqdm.auto import tqdm

    from medvae.data.paired import find_subjects, read_subject_folder
    from medvae.metrics import masked_image_metrics, spearman
    from medvae.checkpoint import load_model_of_kind
    from medvae.tasks.synthesis.synthesize import synthesize_subject
    from medvae.train import resolve_device

    device = str(resolve_device(device))
    check_positive("samples", samples)
    if samples < 2:
        raise UsageError("samples must be at least 2 to measure a spread", param="samples")
    model_path = Path(model_path)
    model, info = load_model_of_kind(model_path, "synthesis", option="model", device=device)
    pre = info.preprocessing
    sources, target = pre["sources"], pre["target"]
    trained_on = set(info.training.get("train_subjects") or [])
    subjects = [s for s in find_subjects(data, [*sources, target]) if str(s.folder.resolve()) not in trained_on]
    if not subjects:
        raise InputError(f"{data}: every subject here trained the model; pass a folder with held-out subjects")
    subjects = subjects[:limit] if limit else subjects
    missing = [f for f in trained_on if not Path(f).is_dir()]
    if missing:
        raise InputError(f"{missing[0]}: a training subject of the model is gone; the linear baseline is fitted "
                         "on the model's training subjects")
    training = [read_subject_folder(Path(f), [*sources, target]) for f in sorted(trained_on)]
    coef = fit_linear(training, sources, target)
    unet, unet_info, note = l1_unet(model_path, info, baseline, device, progress)
    rows = []
    for subject in tqdm(subjects, desc="evaluating", unit="subject", disable=not progress, leave=False):
        images = read_subject_folder(subject.folder, [*sources, target], ("mask", f"{target}_truth"))
        mask = _mask(images, sources)
        result = synthesize_subject(model, info, images, samples, seed)
        preds = {"model": result.mean,
                 "linear": apply_linear(coef, images, sources),
                 "l1_unet": synthesize_subject(unet, unet_info, images, 1, seed).mean}
        row = {"subject": subject.name, "mean_std": float(result.std[mask].mean())}
        for key, name in (("", target), ("truth_", f"{target}_truth")):
            if name in images:
                truth = images[name].array
                row.update({key + m: masked_image_metrics(p, truth, mask) for m, p in preds.items()})
                row[key + "spearman"] = spearman(result.std[mask], np.abs(result.mean - truth)[mask])
        rows.append(row)
    mean = {"mean_std": float(np.mean([r["mean_std"] for r in rows]))}
    for key in ("", "truth_") if all("truth_model" in r for r in rows) else ("",):
        mean.update({key + m: {k: float(np.mean([r[key + m][k] for r in rows])) for k in ("psnr", "ssim", "mae")}
                     for m in METHODS})
        mean[key + "spearman"] = float(np.mean([r[key + "spearman"] for r in rows]))
    m, lin, unet_m = mean["model"], mean["linear"], mean["l1_unet"]
    checks = {
        "beats linear on PSNR": m["psnr"] > lin["psnr"],
        "beats linear on SSIM": m["ssim"] > lin["ssim"],
        "beats linear on MAE": m["mae"] < lin["mae"],
        "beats L1 U-Net on SSIM": m["ssim"] > unet_m["ssim"],
        f"Spearman(std, |error|) > {SPEARMAN_TARGET}": mean["spearman"] > SPEARMAN_TARGET,
    }
    if "truth_spearman" in mean:
        checks[f"against the noise-free truth: Spearman(std, |error|) > {SPEARMAN_TARGET}"] = (
            mean["truth_spearman"] > SPEARMAN_TARGET)
    return {"model": str(model_path), "data": str(data), "sources": sources, "target": target, "samples": samples,
            "normalize": pre["normalize"], "linear_coefficients": [float(c) for c in coef], "baseline_note": note,
            "subjects": rows, "mean": mean, "checks": checks}


def format_report(result: dict) -> str:
    """The evaluation as a plain-text table."""
    lines = [f"{'+'.join(result['sources'])} → {result['target']} on {len(result['subjects'])} held-out subjects, "
             f"inside the brain mask ({result['samples']} samples; sources {result['normalize']})",
             result["baseline_note"]]
    target = result["target"]
    for key, title in (("", f"against the measured {target}"), ("truth_", f"against the noise-free {target}_truth")):
        if key + "model" not in result["mean"]:
            continue
        lines += ["", title,
                  f"{'subject':<12} {'method':<10} {'PSNR dB':>8} {'SSIM':>7} {'MAE':>8}   Spearman(std, |err|)"]
        for row in [*result["subjects"], {"subject": "mean", **result["mean"]}]:
            for i, method in enumerate(METHODS):
                r = row[key + method]
                tail = f"   {row[key + 'spearman']:.3f}" if i == 0 else ""
                lines.append(f"{row['subject'] if i == 0 else '':<12} {LABELS[method]:<10} {r['psnr']:>8.2f} "
                             f"{r['ssim']:>7.4f} {r['mae']:>8.3f}{tail}")
    lines.append("")
    lines += [f"{'PASS' if ok else 'MISS'}  {name}" for name, ok in result["checks"].items()]
    return "\n".join(lines)
