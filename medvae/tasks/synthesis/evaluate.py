"""``medvae evaluate synthesis MODEL --data DIR``: the synthesis model beside two baselines, on held-out subjects.

Held-out subjects are those of ``DIR`` the model did not train on (the model file lists its training
subjects' folders). A model trained with ``holdout="slabs"`` (one subject, or a few, split by axial slabs) is
scored on the held-out slabs its file records (:func:`medvae.data.slabs.heldout_voxels`), and its linear
baseline is fitted on the training slabs only. For each, inside the brain mask (the subject's ``mask`` image, or the voxels where a
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

How far the model's uncertainty can be trusted (:mod:`medvae.tasks.synthesis.uncertainty`):

* Spearman(model std, |mean - truth|): the model std (the spread of the draws' means) against the model's own
  error, which is the error against the noise-free truth (against the measured target where there is none);
  beside Spearman(total std, |mean - measured|);
* coverage at 50/90/95 %: the share of voxels whose measured value lies in the central interval of the
  predictive distribution, the mixture over the draws of Laplace(mean_k, b_k) (exact, through its CDF); the
  Gaussian with the total std is in the JSON as ``coverage_gaussian``. Only methods that predict a spread
  get one (the linear regression and the L1 U-Net do not);
* sparsification at 5/10/20 %: the mean |mean - truth| left after removing the voxels of highest model std,
  beside the oracle (removing by the error) and a random order (the overall mean), and the share of the
  oracle's cut achieved at 10 %. The mean over subjects averages the curves and takes the share of the
  averages.

Checks (on the means over subjects): beating the baselines, PSNR/SSIM against the measured target no worse
than ``PSNR_FLOOR``/``SSIM_FLOOR``, each Spearman above ``SPEARMAN_TARGET``, each coverage within
``COVERAGE_TOLERANCE`` of its level, and the share of the oracle's cut at 10 % at least ``ORACLE_SHARE_TARGET``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import numpy as np

from medvae.errors import InputError, UsageError, check_positive
from medvae.tasks.synthesis.uncertainty import FRACTIONS, LEVELS

METHODS = ("model", "linear", "l1_unet")
LABELS = {"model": "VAE-GAN", "linear": "linear", "l1_unet": "L1 U-Net"}
SPEARMAN_TARGET = 0.3
PSNR_FLOOR, SSIM_FLOOR = 21.3, 0.689  # against the measured target, no worse than these
COVERAGE_TOLERANCE = 0.05  # each level's coverage within this of the level
ORACLE_SHARE_TARGET = 1 / 3  # removing the 10 % most uncertain voxels cuts at least this share of the oracle's cut


def _mask(images: dict, sources: list[str]) -> np.ndarray:
    if "mask" in images:
        return images["mask"].array > 0.5
    return np.any(np.stack([images[s].array != 0 for s in sources]), axis=0)


def _design(images: dict, sources: list[str]) -> np.ndarray:
    from medvae.data.paired import normalize_sources

    stack = normalize_sources(np.stack([images[s].array for s in sources]))
    return np.concatenate([np.ones((1, *stack.shape[1:]), np.float32), stack])  # (1 + S, x, y, z)


def fit_linear(subjects: list[dict], sources: list[str], target: str, within: list | None = None) -> np.ndarray:
    """Least-squares coefficients ``(1 + S,)`` of ``target ≈ a + Σ b_i source_i`` inside the subjects' masks
    (and inside ``within[i]``, a boolean image per subject, where given: the training slabs)."""
    xs, ys = [], []
    for i, images in enumerate(subjects):
        mask = _mask(images, sources)
        if within is not None and within[i] is not None:
            mask = mask & within[i]
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


def _coverage(result, observed: np.ndarray, mask: np.ndarray) -> dict[str, float] | None:
    """Coverage of the Laplace-mixture predictive of ``result``'s draws (None without predicted scales)."""
    from medvae.tasks.synthesis.uncertainty import interval_coverage

    if result is None or result.draws is None:
        return None
    shares = interval_coverage(result.draws[0], None, observed, LEVELS, mask=mask, scale=result.draws[1])
    return {_level_key(a): v for a, v in shares.items()}


def _level_key(level: float) -> str:
    return f"{level:g}"


def _average(values: list):
    """The mean of equal-shaped numbers, lists or dicts of them (None where any is None)."""
    if any(v is None for v in values):
        return None
    first = values[0]
    if isinstance(first, dict):
        return {k: _average([v[k] for v in values]) for k in first}
    if isinstance(first, list):
        return [_average(list(v)) for v in zip(*values)]
    if isinstance(first, str):
        return first if all(v == first for v in values) else "mixed"
    return float(np.mean(values))


def mean_over_subjects(rows: list[dict]) -> dict:
    """The per-subject numbers averaged over subjects; the sparsification curves are averaged point by point and
    the share of the oracle's cut is taken of the averaged curves."""
    from medvae.tasks.synthesis.uncertainty import oracle_share

    mean = {k: _average([r[k] for r in rows])
            for k in ("mean_std", "mean_model_std", "model_std_spearman", "error_reference", "coverage",
                      "coverage_gaussian")}
    for key in ("", "truth_") if all("truth_model" in r for r in rows) else ("",):
        mean.update({key + m: {k: float(np.mean([r[key + m][k] for r in rows])) for k in ("psnr", "ssim", "mae")}
                     for m in METHODS})
        mean[key + "spearman"] = float(np.mean([r[key + "spearman"] for r in rows]))
    curve = {"fractions": list(rows[0]["sparsification"]["fractions"]),
             **_average([{k: r["sparsification"][k] for k in ("mean_all", "model", "oracle", "random")} for r in rows])}
    curve["oracle_share"] = [float((curve["mean_all"] - m) / (curve["mean_all"] - o)) if curve["mean_all"] > o
                             else float("nan") for m, o in zip(curve["model"], curve["oracle"])]
    mean["sparsification"] = {**curve, "oracle_share_10": oracle_share(curve, 0.1)}
    return mean


def evaluate_synthesis(model_path: str | os.PathLike, data: str | os.PathLike, *, baseline=None, samples: int = 16,
                       seed: int = 0, limit: int | None = None, device: str = "auto", progress: bool = True) -> dict:
    """Score the model, the linear regression and the L1 U-Net on ``data``'s held-out subjects (see module doc)."""
    from tqdm.auto import tqdm

    from medvae.data.paired import find_subjects, read_subject_folder
    from medvae.metrics import masked_image_metrics, spearman
    from medvae.checkpoint import load_model_of_kind
    from medvae.data.slabs import heldout_voxels
    from medvae.tasks.synthesis.synthesize import synthesize_subject
    from medvae.tasks.synthesis.uncertainty import interval_coverage, oracle_share, sparsification
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
    slabs = info.training.get("holdout") == "slabs"
    held = set(info.training.get("heldout_slabs") or {}) if slabs else set()
    subjects = [s for s in find_subjects(data, [*sources, target])
                if (str(s.folder.resolve()) in held if slabs else str(s.folder.resolve()) not in trained_on)]
    if not subjects:
        raise InputError(f"{data}: " + ("no subject here has held-out slabs in the model file; pass the folder the "
                                        "model trained on" if slabs else "every subject here trained the model; "
                                        "pass a folder with held-out subjects"))
    subjects = subjects[:limit] if limit else subjects
    missing = [f for f in trained_on if not Path(f).is_dir()]
    if missing:
        raise InputError(f"{missing[0]}: a training subject of the model is gone; the linear baseline is fitted "
                         "on the model's training subjects")
    folders = sorted(trained_on)
    training = [read_subject_folder(Path(f), [*sources, target]) for f in folders]
    within = ([heldout_voxels(info.training, f, images[target], part="train") for f, images in zip(folders, training)]
              if slabs else None)
    coef = fit_linear(training, sources, target, within)
    unet, unet_info, note = l1_unet(model_path, info, baseline, device, progress)
    if slabs and unet_info.training.get("heldout_slabs") != info.training.get("heldout_slabs"):
        note += " (warning: it holds out other slabs than the model)"
    truth_name = f"{target}_truth"
    rows = []
    for subject in tqdm(subjects, desc="evaluating", unit="subject", disable=not progress, leave=False):
        images = read_subject_folder(subject.folder, [*sources, target], ("mask", truth_name))
        mask = _mask(images, sources)
        if slabs:  # only the held-out slabs: nothing of the training slabs or the gaps beside them
            mask = mask & heldout_voxels(info.training, subject.folder, images[target])
        result = synthesize_subject(model, info, images, samples, seed, keep_draws=True)
        unet_result = synthesize_subject(unet, unet_info, images, 1, seed, keep_draws=True)
        preds = {"model": result.mean, "linear": apply_linear(coef, images, sources), "l1_unet": unet_result.mean}
        row = {"subject": subject.name, "scored_voxels": int(mask.sum()), "mean_std": float(result.std[mask].mean()),
               "mean_model_std": float(result.model_std[mask].mean())}
        for key, name in (("", target), ("truth_", truth_name)):
            if name in images:
                truth = images[name].array
                row.update({key + m: masked_image_metrics(p, truth, mask) for m, p in preds.items()})
                row[key + "spearman"] = spearman(result.std[mask], np.abs(result.mean - truth)[mask])
        reference = truth_name if truth_name in images else target  # the model's own error: against the truth
        error = result.mean - images[reference].array
        row["error_reference"] = reference
        row["model_std_spearman"] = spearman(result.model_std[mask], np.abs(error)[mask])
        measured = images[target].array
        row["coverage"] = {"model": _coverage(result, measured, mask), "linear": None,
                           "l1_unet": _coverage(unet_result, measured, mask)}
        row["coverage_gaussian"] = {_level_key(a): v for a, v in
                                    interval_coverage(result.mean, result.std, measured, LEVELS, mask=mask).items()}
        curve = sparsification(error, result.model_std, FRACTIONS, mask=mask)
        row["sparsification"] = {**curve, "oracle_share_10": oracle_share(curve, 0.1)}
        rows.append(row)
    mean = mean_over_subjects(rows)
    return {"model": str(model_path), "data": str(data), "sources": sources, "target": target, "samples": samples,
            "normalize": pre["normalize"], "linear_coefficients": [float(c) for c in coef], "baseline_note": note,
            "levels": list(LEVELS), "fractions": list(FRACTIONS), "subjects": rows, "mean": mean,
            "checks": checks(mean)}


def checks(mean: dict) -> list[dict]:
    """The targets, each ``{"check", "pass", "value", "measured"}`` (``measured``: the figure, worded)."""
    m, lin, unet = mean["model"], mean["linear"], mean["l1_unet"]
    out = []

    def add(text, ok, value, measured):
        out.append({"check": text, "pass": bool(ok), "value": float(value), "measured": measured})

    add("beats linear on PSNR", m["psnr"] > lin["psnr"], m["psnr"], f"{m['psnr']:.2f} vs {lin['psnr']:.2f} dB")
    add("beats linear on SSIM", m["ssim"] > lin["ssim"], m["ssim"], f"{m['ssim']:.4f} vs {lin['ssim']:.4f}")
    add("beats linear on MAE", m["mae"] < lin["mae"], m["mae"], f"{m['mae']:.3f} vs {lin['mae']:.3f}")
    add("beats L1 U-Net on SSIM", m["ssim"] > unet["ssim"], m["ssim"], f"{m['ssim']:.4f} vs {unet['ssim']:.4f}")
    add(f"PSNR vs measured >= {PSNR_FLOOR} dB", m["psnr"] >= PSNR_FLOOR, m["psnr"], f"{m['psnr']:.2f} dB")
    add(f"SSIM vs measured >= {SSIM_FLOOR}", m["ssim"] >= SSIM_FLOOR, m["ssim"], f"{m['ssim']:.4f}")
    rho = mean["spearman"]
    add(f"Spearman(total std, |error vs measured|) > {SPEARMAN_TARGET}", rho > SPEARMAN_TARGET, rho, f"{rho:.3f}")
    if "truth_spearman" in mean:
        rho = mean["truth_spearman"]
        add(f"Spearman(total std, |error vs truth|) > {SPEARMAN_TARGET}", rho > SPEARMAN_TARGET, rho, f"{rho:.3f}")
    vs = "truth" if mean["error_reference"].endswith("_truth") else "measured"
    rho = mean["model_std_spearman"]
    add(f"Spearman(model std, |error vs {vs}|) > {SPEARMAN_TARGET}", rho > SPEARMAN_TARGET, rho, f"{rho:.3f}")
    coverage = mean["coverage"]["model"]
    for level in LEVELS:
        share = coverage[_level_key(level)] if coverage else float("nan")
        add(f"coverage of the {100 * level:g} % interval vs measured within {100 * level:g} ± "
            f"{100 * COVERAGE_TOLERANCE:g} %", abs(share - level) <= COVERAGE_TOLERANCE + 1e-12, share,
            f"{100 * share:.1f} %")
    share = mean["sparsification"]["oracle_share_10"]
    add(f"removing the 10 % highest model std cuts >= 1/3 of the oracle's cut in |error vs {vs}|",
        share >= ORACLE_SHARE_TARGET, share, f"{share:.2f} of the oracle's cut")
    return out


def format_report(result: dict) -> str:
    """The evaluation as plain-text tables, then one line per check."""
    lines = [f"{'+'.join(result['sources'])} → {result['target']} on {len(result['subjects'])} held-out subjects, "
             f"inside the brain mask ({result['samples']} samples; sources {result['normalize']})",
             result["baseline_note"]]
    target = result["target"]
    every = [*result["subjects"], {"subject": "mean", **result["mean"]}]
    for key, title in (("", f"against the measured {target}"), ("truth_", f"against the noise-free {target}_truth")):
        if key + "model" not in result["mean"]:
            continue
        lines += ["", title,
                  f"{'subject':<12} {'method':<10} {'PSNR dB':>8} {'SSIM':>7} {'MAE':>8}   Spearman(std, |err|)"]
        for row in every:
            for i, method in enumerate(METHODS):
                r = row[key + method]
                tail = f"   {row[key + 'spearman']:.3f}" if i == 0 else ""
                lines.append(f"{row['subject'] if i == 0 else '':<12} {LABELS[method]:<10} {r['psnr']:>8.2f} "
                             f"{r['ssim']:>7.4f} {r['mae']:>8.3f}{tail}")
    ref = result["mean"]["error_reference"]
    levels = [_level_key(a) for a in result["levels"]]
    lines += ["", f"uncertainty of the VAE-GAN: total std (predictive), model std (spread of the {result['samples']} "
                  f"draws' means); coverage of the predictive's central intervals (mixture of the draws' Laplace "
                  f"distributions) against the measured {target}",
              f"{'subject':<12} {'method':<10} {'mean std':>8} {'model std':>9} {(rho := f'ρ(std,|err vs {target}|)')} "
              f"{(rho_model := f'ρ(model std,|err vs {ref}|)')}" + "".join(f" {f'cov {100 * float(a):g}%':>8}" for a in levels)]
    spreadless = [LABELS[m] for m in METHODS if result["mean"]["coverage"][m] is None]
    for row in every:
        for i, method in enumerate(m for m in METHODS if result["mean"]["coverage"][m] is not None):
            cov = row["coverage"][method]
            head = (f"{row['mean_std']:>8.3f} {row['mean_model_std']:>9.3f} {row['spearman']:>{len(rho)}.3f} "
                    f"{row['model_std_spearman']:>{len(rho_model)}.3f}" if method == "model"
                    else " " * (20 + len(rho) + len(rho_model)))
            lines.append(f"{row['subject'] if i == 0 else '':<12} {LABELS[method]:<10} {head}"
                         + "".join(f" {100 * cov[a]:>8.1f}" for a in levels))
    if spreadless:
        lines.append(f"({' and '.join(spreadless)}: no predicted spread, so no coverage)")
    fractions = result["fractions"]
    lines += ["", f"sparsification: mean |error vs {ref}| left after removing the voxels of highest model std "
                  f"(oracle: of highest error; a random order leaves 'all' at every fraction)",
              f"{'subject':<12} {'all':>8}" + "".join(f" {f'{100 * f:g} % model':>11} {'oracle':>7}" for f in fractions)
              + f" {'share of oracle @10 %':>22}"]
    for row in every:
        c = row["sparsification"]
        lines.append(f"{row['subject']:<12} {c['mean_all']:>8.3f}"
                     + "".join(f" {m:>11.3f} {o:>7.3f}" for m, o in zip(c["model"], c["oracle"]))
                     + f" {c['oracle_share_10']:>22.2f}")
    lines.append("")
    lines += [f"{'PASS' if c['pass'] else 'MISS'}  {c['check']}: {c['measured']}" for c in result["checks"]]
    return "\n".join(lines)
