"""``medvae evaluate segment``: lung segmentation on clean, degraded, enhanced and classically restored images.

Every image goes through the pipeline ``medvae segment [--enhance]`` runs on a file (its own minimum and
maximum mapped to [0, 1]; enhanced within its own range). For every held-out image with a lung mask: Dice
and Hausdorff distance (MONAI metrics, in pixels of the
input) of the segmenter's mask on the clean image, then for every degradation and severity (fixed seeds,
as ``evaluate enhance``) on the degraded image, the degraded image enhanced by medvae, and the degraded
image restored by the best classical baseline (the one with the best PSNR against the clean image, chosen
per image: generous to the baseline). Targets: Dice on clean images at least 0.95, and enhancement
recovers at least 80 % of the Dice that degradation loses (on the mean over all degradations).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medvae.errors import UsageError
from medvae.tasks.evaluate_enhance import SEVERITIES

CONDITIONS = ("clean", "degraded", "enhanced", "classical")


def mask_scores(labels: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(Dice, Hausdorff distance in pixels) of a predicted lung mask against the true one (both non-zero = lung)."""
    import warnings

    import torch
    from monai.metrics import compute_dice, compute_hausdorff_distance

    pred = torch.from_numpy(labels > 0)[None, None].float()
    true = torch.from_numpy(truth > 0)[None, None].float()
    dice = float(compute_dice(pred, true, include_background=True)[0, 0])
    if not pred.any() or not true.any():
        return dice, float("inf")
    with warnings.catch_warnings():  # MONAI 1.5+ warns about its own internal argument
        warnings.simplefilter("ignore", FutureWarning)
        return dice, float(compute_hausdorff_distance(pred, true, include_background=True)[0, 0])


@dataclass
class SegmentEvaluation:
    """Per condition and degradation: lists of (Dice, Hausdorff) over images."""

    images: list[str]
    clean: list[tuple[float, float]] = field(default_factory=list)
    rows: dict[tuple[str, float], dict[str, list[tuple[float, float]]]] = field(default_factory=dict)

    def mean(self, condition: str, key: tuple[str, float] | None = None) -> tuple[float, float]:
        values = self.clean if condition == "clean" else (
            self.rows[key][condition] if key else [v for row in self.rows.values() for v in row[condition]])
        a = np.array(values)
        return float(a[:, 0].mean()), float(np.median(a[:, 1]))

    def recovered(self) -> float:
        """Share of the Dice lost to degradation that enhancement wins back (mean over everything)."""
        clean, degraded, enhanced = (self.mean(c)[0] for c in ("clean", "degraded", "enhanced"))
        lost = clean - degraded
        return float("nan") if lost <= 0 else (enhanced - degraded) / lost

    def checks(self) -> list[tuple[str, bool]]:
        clean, recovered = self.mean("clean")[0], self.recovered()
        return [(f"Dice on clean images {clean:.4f} >= 0.95", clean >= 0.95),
                (f"enhancement recovers {recovered:.0%} of the Dice lost to degradation (>= 80 %)"
                 if recovered == recovered else "degradation lost no Dice, so there is nothing to recover",
                 recovered >= 0.8 if recovered == recovered else True)]


def evaluate_segment(model: str | os.PathLike, images: str, masks: str | None = None, *,
                     enhancer: str | os.PathLike | None = None, kinds=None, severities=SEVERITIES, seed: int = 0,
                     limit: int | None = None, progress: bool = True) -> SegmentEvaluation:
    """Score the segmenter on every image with a mask under ``images`` that it did not train on (see the module
    docstring)."""
    from tqdm.auto import tqdm

    from medvae.data.degrade import DEGRADATIONS
    from medvae.data.lung_datasets import load_lung_mask, lung_pairs, read_lung_image
    from medvae.tasks.enhance import enhance_values, load_model_of_kind, to_unit
    from medvae.tasks.evaluate_enhance import classical, degraded_versions, quality, trained_names
    from medvae.tasks.segment import lung_labels, predict_lungs

    net, info = load_model_of_kind(model, "segmenter", option="model")
    enhancer_net = load_model_of_kind(enhancer, "enhancer", option="--enhancer")[0]
    seen = trained_names(info)
    pairs = [p for p in lung_pairs(Path(images), Path(masks) if masks else None) if p.image.name not in seen]
    if not pairs:
        raise UsageError(f"data: the model trained on every image in {images}; pass held-out images")
    pairs = pairs[:limit]
    kinds = tuple(kinds or DEGRADATIONS)
    result = SegmentEvaluation([str(p.image) for p in pairs])

    def score(image, truth):  # as `medvae segment` runs: the image's own minimum and maximum map to [0, 1]
        return mask_scores(lung_labels(predict_lungs(net, info, to_unit(image)[0])), truth)

    for i, pair in enumerate(tqdm(pairs, desc="evaluating", disable=not progress, leave=False)):
        image = read_lung_image(pair.image)
        clean = to_unit(image.array.reshape(image.array.shape[:2]))[0]
        truth = load_lung_mask(pair, clean.shape)
        result.clean.append(score(clean, truth))
        for kind, severity, degraded in degraded_versions(clean, i, kinds, severities, seed):
            restored = classical(degraded)
            best = max(restored.values(), key=lambda im: quality(im, clean)[0])
            row = result.rows.setdefault((kind, severity), {c: [] for c in CONDITIONS[1:]})
            row["degraded"].append(score(degraded, truth))
            row["enhanced"].append(score(enhance_values(enhancer_net, degraded), truth))
            row["classical"].append(score(best, truth))
    return result


def format_segment(ev: SegmentEvaluation) -> str:
    """A Markdown table: Dice (mean) / Hausdorff (median, pixels) per degradation and condition, then checks."""
    lines = [f"{len(ev.images)} images with lung masks; Dice (mean) / Hausdorff distance (median, pixels)", "",
             "| degradation | severity | degraded | enhanced | best classical |", "|---|---:|---:|---:|---:|"]
    for key in ev.rows:
        lines.append(f"| {key[0]} | {key[1]:g} | " + " | ".join(
            f"{ev.mean(c, key)[0]:.4f} / {ev.mean(c, key)[1]:.1f}" for c in CONDITIONS[1:]) + " |")
    lines.append("| **mean** | | " + " | ".join(f"**{ev.mean(c)[0]:.4f} / {ev.mean(c)[1]:.1f}**"
                                                  for c in CONDITIONS[1:]) + " |")
    clean = ev.mean("clean")
    lines += ["", f"clean images: Dice {clean[0]:.4f}, Hausdorff {clean[1]:.1f} px (median)", ""]
    lines += [f"{'PASS' if ok else 'MISS'}: {text}" for text, ok in ev.checks()]
    return "\n".join(lines)
