"""How well a score separates anomalous from normal images (scikit-learn's metrics; higher score = anomalous)."""

from __future__ import annotations

import numpy as np


def rankable(scores: np.ndarray) -> np.ndarray:
    """Scores with NaN and +inf (an input so far from normal that its score overflowed) above every finite score
    and -inf below, so they rank as the most (least) anomalous instead of breaking the metrics."""
    s = np.asarray(scores, dtype=float).copy()
    finite = s[np.isfinite(s)]
    top, bottom = (finite.max() + 1, finite.min() - 1) if finite.size else (1.0, -1.0)
    s[np.isnan(s) | (s == np.inf)] = top
    s[s == -np.inf] = bottom
    return s


def detection_metrics(normal, anomalous, fpr: float = 0.05) -> dict[str, float]:
    """AUROC, AUPRC (the anomalous images as positives) with its chance level (the prevalence), and the true-positive
    rate at the threshold that flags ``fpr`` of the normal images."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    normal, anomalous = np.asarray(normal, dtype=float), np.asarray(anomalous, dtype=float)
    y = np.r_[np.zeros(len(normal)), np.ones(len(anomalous))]
    s = rankable(np.r_[normal, anomalous])
    normal, anomalous = s[: len(normal)], s[len(normal):]
    limit = np.quantile(normal, 1 - fpr)
    return {"auroc": float(roc_auc_score(y, s)), "auprc": float(average_precision_score(y, s)),
            "prevalence": float(y.mean()), f"tpr_at_{round(fpr * 100)}pct_fpr": float(np.mean(anomalous > limit))}


def pixel_metrics(maps, masks) -> dict[str, float]:
    """Pixel AUROC and AUPRC of per-pixel scores ``maps`` against binary ``masks`` (same shapes, all images
    pooled), and ⌈Dice⌉: the best Dice over every threshold of the maps."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    s = rankable(np.asarray(maps, dtype=float).ravel())
    y = np.asarray(masks).ravel() > 0
    order = np.argsort(-s, kind="stable")
    tp = np.cumsum(y[order])
    dice = 2 * tp / (np.arange(1, len(s) + 1) + y.sum())
    return {"auroc": float(roc_auc_score(y, s)), "auprc": float(average_precision_score(y, s)),
            "prevalence": float(y.mean()), "best_dice": float(dice.max()) if len(dice) else 0.0}
