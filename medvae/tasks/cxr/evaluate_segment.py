"""``medvae evaluate segment``: lung segmentation on clean, degraded and enhanced radiographs, per fold.

Every image goes through the pipeline ``medvae segment [--enhance]`` runs on a file (its own minimum and
maximum mapped to [0, 1]; enhanced within its own range). Scores are the Dice coefficient and the 95th
percentile Hausdorff distance (MONAI metrics), in millimetres where every image's pixel spacing is known and
in pixels of the input otherwise.

**Folds.** Give one model per fold of a patient-level cross-validation (``medvae train segment --folds K
--fold I``): each model is scored on the images it held out, so every image is scored once, by the one model
that never saw its patient. A model that holds out nothing is scored on the images under ``data`` it did not
train on.

Per image:

* **clean**: the film at its own resolution, without and with enhancement;
* **degraded**: for every degradation and severity (a fixed seed per image, kind and severity, as ``evaluate
  enhance``), the film reduced so its longer side is at most ``size`` pixels (0: not reduced; degrading a
  2000² film costs minutes per condition) and degraded, then segmented as it is and after enhancement (and,
  with ``classical``, after the classical baseline with the best PSNR against the clean film, chosen per
  image: generous to the baseline). The reduced clean film's own score is the reference for what
  degradation costs.

Targets: mean Dice on clean films at least 0.95 and no film below 0.85; enhancement recovers at least 80 % of
the Dice that degradation costs (on the mean over all degradations).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from medvae.errors import UsageError, count
from medvae.tasks.cxr.evaluate_enhance import SEVERITIES, gap_words

CONDITIONS = ("degraded", "enhanced", "classical")
TARGET_MEAN, TARGET_MIN, TARGET_RECOVERY = 0.95, 0.85, 0.80
DEGENERATE_DICE = 0.5
"""Below this mean Dice on clean films the segmenter does not work: recovery on it is a MISS, never judged."""


def mask_scores(labels: np.ndarray, truth: np.ndarray, spacing: tuple[float, float] | None = None
                ) -> tuple[float, float]:
    """(Dice, 95th-percentile Hausdorff distance) of a predicted lung mask against the true one (non-zero =
    lung); the distance in the units of ``spacing`` (pixels when None), infinite when either mask is empty."""
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
        hd = compute_hausdorff_distance(pred, true, include_background=True, percentile=95,
                                        spacing=list(spacing) if spacing else None)
    return dice, float(hd[0, 0])


@dataclass
class ImageScores:
    """One film's scores: ``(Dice, HD95)`` per condition; ``rows[(kind, severity)][condition]``."""

    image: str
    fold: int
    clean: tuple[float, float]
    clean_enhanced: tuple[float, float]
    reduced: tuple[float, float]
    rows: dict[tuple[str, float], dict[str, tuple[float, float]]] = field(default_factory=dict)


@dataclass
class SegmentEvaluation:
    """Every film's scores, the models (one per fold) and the distance unit (``mm`` or ``px``)."""

    models: list[str]
    images: list[ImageScores] = field(default_factory=list)
    unit: str = "px"
    size: int = 0

    def _of(self, fold: int | None) -> list[ImageScores]:
        return [s for s in self.images if fold is None or s.fold == fold]

    def values(self, condition: str, key: tuple[str, float] | None = None, fold: int | None = None) -> np.ndarray:
        """``(n, 2)`` Dice and HD95 of ``condition`` (``clean``, ``clean_enhanced``, ``reduced`` or one of
        :data:`CONDITIONS`, for one degradation ``key`` or all of them) over the films of ``fold`` (None: all)."""
        films = self._of(fold)
        if condition in ("clean", "clean_enhanced", "reduced"):
            return np.array([getattr(s, condition) for s in films]).reshape(-1, 2)
        return np.array([row[condition] for s in films for k, row in s.rows.items()
                         if (key is None or k == key) and condition in row]).reshape(-1, 2)

    def mean(self, condition: str, key=None, fold=None) -> tuple[float, float]:
        """(mean Dice, median HD95)."""
        v = self.values(condition, key, fold)
        return (float(v[:, 0].mean()), float(np.median(v[:, 1]))) if len(v) else (float("nan"), float("nan"))

    def keys(self) -> list[tuple[str, float]]:
        return list(dict.fromkeys(k for s in self.images for k in s.rows))

    def recovered(self, fold: int | None = None) -> float:
        """Share of the Dice lost to degradation that enhancement wins back (NaN when nothing is lost)."""
        reduced, degraded, enhanced = (self.mean(c, fold=fold)[0] for c in ("reduced", "degraded", "enhanced"))
        lost = reduced - degraded
        return float("nan") if not lost > 0 else (enhanced - degraded) / lost

    def checks(self) -> list[tuple[str, bool]]:
        """``(statement, met)`` per target. Each statement gives the measured value, the target and whether it was
        met, in words true either way. A segmenter that fails on clean films (mean Dice below
        :data:`DEGENERATE_DICE`) misses the recovery target: there is no working segmentation to recover."""
        clean = self.values("clean")[:, 0]
        mean, worst = float(clean.mean()), float(clean.min())
        out = [(f"mean Dice on clean films is {mean:.4f}, {gap_words(mean, TARGET_MEAN, '', 4)} the target; "
                f"target: at least {TARGET_MEAN}: {'met' if mean >= TARGET_MEAN else 'not met'}", mean >= TARGET_MEAN),
               (f"the worst clean film has Dice {worst:.4f}, {gap_words(worst, TARGET_MIN, '', 4)} the target; "
                f"target: none below {TARGET_MIN}: {'met' if worst >= TARGET_MIN else 'not met'}", worst >= TARGET_MIN)]
        if self.keys():
            reduced, degraded, enhanced = (self.mean(c)[0] for c in ("reduced", "degraded", "enhanced"))
            recovered = self.recovered()
            target = (f"target: enhancement wins back at least {TARGET_RECOVERY:.0%} of the Dice degradation costs a "
                      f"working segmenter (mean clean Dice at least {DEGENERATE_DICE})")
            if mean < DEGENERATE_DICE:
                out.append((f"the segmenter fails on clean films (mean Dice {mean:.4f}, below {DEGENERATE_DICE}): "
                            f"degraded {degraded:.4f}, enhanced {enhanced:.4f} measure no recovery of a working "
                            f"segmentation; {target}: not met", False))
            elif recovered == recovered:
                out.append((f"degradation costs {reduced - degraded:.4f} Dice and enhancement wins back "
                            f"{enhanced - degraded:.4f}, {recovered:.0%} of it; "
                            f"{target}: {'met' if recovered >= TARGET_RECOVERY else 'not met'}",
                            recovered >= TARGET_RECOVERY))
            else:
                out.append((f"degradation costs no Dice (reduced clean {reduced:.4f}, degraded {degraded:.4f}), so "
                            f"enhancement has nothing to win back and recovery cannot be measured; {target}: not "
                            "met (not measurable)", False))
        return out

    def to_dict(self) -> dict:
        return {"models": self.models, "unit": self.unit, "size": self.size,
                "images": [{**asdict(s), "rows": [{"degradation": k[0], "severity": k[1], **v}
                                                  for k, v in s.rows.items()]} for s in self.images],
                "checks": [{"check": t, "pass": ok} for t, ok in self.checks()]}


def reduce(image: np.ndarray, truth: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, float]:
    """The film and its mask reduced so the longer side is at most ``size`` (0: as they are), and the factor."""
    from medvae.tasks.cxr.evaluate_enhance import reduced
    from medvae.data.transforms import resize

    small = reduced(image, size)
    if small is image:
        return image, truth, 1.0
    return small, resize((truth > 0).astype(np.float32), small.shape) >= 0.5, image.shape[0] / small.shape[0]


def held_out_pairs(models: list, pairs) -> list[tuple[int, object]]:
    """``(model index, pair)`` for every pair a model held out (or, for a model that holds out nothing, did not
    train on); an image held out by two models is refused (give one model per fold)."""
    from medvae.tasks.cxr.evaluate_enhance import trained_names

    chosen, owner = [], {}
    for m, (_, info) in enumerate(models):
        held = {Path(p).name for p in (info.training or {}).get("test_images", [])}
        seen = trained_names(info)
        for pair in pairs:
            name = pair.image.name
            if (name in held) if held else (name not in seen):
                if name in owner:
                    raise UsageError(f"model: {name} is held out by two of the models given; give one model per "
                                     "fold of one cross-validation", param="model")
                owner[name] = m
                chosen.append((m, pair))
    return chosen


def evaluate_segment(model, images: str, masks: str | None = None, *, enhancer: str | os.PathLike | None = None,
                     kinds=None, severities=SEVERITIES, seed: int = 0, size: int = 512, classical: bool = False,
                     limit: int | None = None, progress: bool = True,
                     device: str = "auto") -> SegmentEvaluation:
    """Score the segmenter (one model file, or a list of one per fold) on the films with masks under ``images``
    that it held out (see the module docstring)."""
    from tqdm.auto import tqdm

    from medvae.train import resolve_device

    from medvae.phantoms.degrade import DEGRADATIONS
    from medvae.data.lung_datasets import load_lung_mask, lung_pairs, read_lung_image
    from medvae.tasks.cxr.enhance import enhance_values
    from medvae.data.intensity import to_unit
    from medvae.checkpoint import load_model_of_kind
    from medvae.tasks.cxr.evaluate_enhance import classical as classical_baselines, degraded_versions, quality
    from medvae.tasks.cxr.segment import lung_labels, predict_lungs

    paths = [model] if isinstance(model, (str, os.PathLike)) else list(model)
    if not paths:
        raise UsageError("model: give at least one segmenter model file", param="model")
    if size < 0:
        raise UsageError(f"size must be 0 (films as they are) or a number of pixels, got {size}", param="size")
    dev = str(resolve_device(device))
    models = [load_model_of_kind(p, "segmenter", option="model", device=dev) for p in paths]
    enhancer_net = load_model_of_kind(enhancer, "enhancer", option="enhancer", device=dev)[0]
    chosen = held_out_pairs(models, lung_pairs(Path(images), Path(masks) if masks else None))
    if not chosen:
        raise UsageError(f"data: the models trained on every image in {images}; pass held-out images", param="data")
    chosen = chosen[:limit]
    kinds = tuple(kinds if kinds is not None else DEGRADATIONS)
    films = [(m, pair, read_lung_image(pair.image)) for m, pair in chosen]
    known = all(image.spacing_known for _, _, image in films)
    result = SegmentEvaluation([str(p) for p in paths], unit="mm" if known else "px", size=size)

    for i, (m, pair, image) in enumerate(tqdm(films, desc="evaluating", disable=not progress, leave=False)):
        net, info = models[m]

        def score(array, truth, factor=1.0):  # as `medvae segment` runs: the image's own range maps to [0, 1]
            spacing = tuple(float(s) * factor for s in image.spacing[:2]) if known else None
            return mask_scores(lung_labels(predict_lungs(net, info, to_unit(array)[0])), truth, spacing)

        clean = to_unit(image.plane())[0]
        truth = load_lung_mask(pair, clean.shape)
        small, small_truth, factor = reduce(clean, truth, size)
        scores = ImageScores(str(pair.image), m, score(clean, truth), score(enhance_values(enhancer_net, clean), truth),
                             score(small, small_truth, factor))
        for kind, severity, degraded in degraded_versions(small, i, kinds, severities, seed):
            row = {"degraded": score(degraded, small_truth, factor),
                   "enhanced": score(enhance_values(enhancer_net, degraded), small_truth, factor)}
            if classical:
                best = max(classical_baselines(degraded).values(), key=lambda im: quality(im, small)[0])
                row["classical"] = score(best, small_truth, factor)
            scores.rows[(kind, severity)] = row
        result.images.append(scores)
    return result


def _cell(ev: SegmentEvaluation, condition: str, key=None, fold=None) -> str:
    dice, hd = ev.mean(condition, key, fold)
    return f"{dice:.4f} / {hd:.1f}"


def format_segment(ev: SegmentEvaluation) -> str:
    """Markdown tables: per fold, per degradation; then the checks."""
    unit = ev.unit
    lines = [f"{count(len(ev.images), 'film')} with lung masks, {count(len(ev.models), 'model')}; Dice (mean) / "
             f"95th-percentile Hausdorff distance (median, {unit})", ""]
    lines += ["| fold | model | films | clean | worst clean Dice | clean, enhanced | degraded | enhanced | "
              "recovered |", "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    folds = [None] if len(ev.models) == 1 else [*range(len(ev.models)), None]
    for f in folds:
        films = ev._of(f)
        if not films:
            continue
        worst = ev.values("clean", fold=f)[:, 0].min()
        degraded = [_cell(ev, c, fold=f) for c in ("degraded", "enhanced")] if ev.keys() else ["", ""]
        recovered = ev.recovered(f) if ev.keys() else float("nan")
        lines.append(f"| {'all' if f is None else f} | {'' if f is None else Path(ev.models[f]).name} | {len(films)} | "
                     f"{_cell(ev, 'clean', fold=f)} | {worst:.4f} | {_cell(ev, 'clean_enhanced', fold=f)} | "
                     f"{' | '.join(degraded)} | {'n/a' if recovered != recovered else f'{recovered:.0%}'} |")
    if ev.keys():
        conditions = [c for c in CONDITIONS if len(ev.values(c))]
        reduced = f" (films reduced to at most {ev.size} px a side)" if ev.size else ""
        lines += ["", f"Per degradation{reduced}; the reduced clean films score {_cell(ev, 'reduced')}", "",
                  "| degradation | severity | " + " | ".join(c if c != "classical" else "best classical"
                                                          for c in conditions) + " |",
                  "|---|---:|" + "---:|" * len(conditions)]
        for key in ev.keys():
            lines.append(f"| {key[0]} | {key[1]:g} | " + " | ".join(_cell(ev, c, key) for c in conditions) + " |")
        lines.append("| **mean** | | " + " | ".join(f"**{_cell(ev, c)}**" for c in conditions) + " |")
    clean = ev.mean("clean")
    lines += ["", f"clean images: Dice {clean[0]:.4f}, HD95 {clean[1]:.1f} {unit} (median)", ""]
    lines += [f"{'PASS' if ok else 'MISS'}: {text}" for text, ok in ev.checks()]
    return "\n".join(lines)
