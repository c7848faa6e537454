"""Does an input look like a frontal chest radiograph? A check from the lung segmenter's own output.

``segment`` and ``enhance`` were made for frontal chest films; on anything else (an extremity, a lateral
view, a CT slice, a photograph) their output is not to be trusted, and a user should be told so per file.
The segmenter's probability map at its input size says it well enough: on a frontal chest film it finds two
lungs of similar size covering a typical share of the image, and it is sure of almost every pixel. Three
numbers per image:

* ``lung_fraction``: the share of pixels with lung probability at least 0.5;
* ``confidence``: the mean of ``|2p - 1|`` over all pixels (1: sure of every pixel, 0: p = 0.5 everywhere);
* ``balance``: the smaller of the two largest lung regions' areas over the larger (0 with fewer than two).

The accepted range of each is set from chest films with :func:`calibrate` (the ``q`` and ``1 - q`` quantiles
over the films, widened by ``margin`` of their distance on each side) and stored in the segmenter's model
file; an image with any number outside its range is flagged, naming the number. ``medvae train segment
--calibrate DIR`` sets it from the training part of a patient split of DIR's films (so the held-out part
measures the false alarms), else from the segmenter's own training films.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

FEATURES = ("lung_fraction", "confidence", "balance")
CSV_NAME = "chest_check.csv"
QUANTILE, MARGIN = 0.005, 0.10
NOTE = "does not look like a frontal chest radiograph"


def features(prob: np.ndarray) -> dict[str, float]:
    """The check's numbers (see the module docstring) from a lung probability map."""
    from scipy.ndimage import label

    lungs = prob >= 0.5
    regions, n = label(lungs)
    sizes = np.sort(np.bincount(regions.ravel())[1:])[::-1] if n else np.zeros(0)
    balance = float(sizes[1] / sizes[0]) if len(sizes) >= 2 else 0.0
    return {"lung_fraction": float(lungs.mean()), "confidence": float(np.abs(2 * prob - 1).mean()),
            "balance": balance}


def model_probability(model, size: int, unit: np.ndarray) -> np.ndarray:
    """The segmenter's lung probability at its input size (``size``²) for a 2-D image in [0, 1]."""
    import torch

    from medvae.data.transforms import resize

    device = next(model.parameters()).device
    x = torch.from_numpy(resize(unit, (size, size)))[None, None].to(device)
    with torch.inference_mode():
        return model.predict(x)[0, 0].float().cpu().numpy()


def ranges_from(values: list[dict[str, float]], q: float = QUANTILE, margin: float = MARGIN) -> dict[str, list[float]]:
    """Accepted ``[low, high]`` per feature from chest films' values."""
    out = {}
    for name in FEATURES:
        v = np.array([x[name] for x in values], dtype=np.float64)
        low, high = np.quantile(v, q), np.quantile(v, 1 - q)
        pad = margin * (high - low)
        out[name] = [float(low - pad), float(high + pad)]
    return out


@dataclass
class CheckResult:
    """``ok`` when every feature is in range; ``reasons`` name those that are not."""

    ok: bool
    values: dict[str, float]
    reasons: list[str]

    def note(self) -> str:
        return f"{NOTE} ({'; '.join(self.reasons)}): its output is not to be trusted"


def check(values: dict[str, float], ranges: dict[str, list[float]]) -> CheckResult:
    """Compare an image's features with the model's accepted ranges."""
    reasons = [f"{name.replace('_', ' ')} {values[name]:.3f} outside {low:.3f}..{high:.3f}"
               for name, (low, high) in ranges.items() if not low <= values[name] <= high]
    return CheckResult(not reasons, values, reasons)


def ranges_of(info) -> dict[str, list[float]] | None:
    """The accepted ranges a segmenter model file stores (None for a model calibrated before the check)."""
    stored = (info.preprocessing or {}).get("chest_check")
    return stored.get("ranges") if isinstance(stored, dict) else None


def check_image(model, info, unit: np.ndarray, prob: np.ndarray | None = None) -> CheckResult | None:
    """Check a 2-D image in [0, 1] (``prob``: its probability at the model's size, if already computed)."""
    ranges = ranges_of(info)
    if ranges is None:
        return None
    if prob is None:
        prob = model_probability(model, int(info.preprocessing.get("size", 256)), unit)
    return check(features(prob), ranges)


def calibrate(model, size: int, films: list[np.ndarray], q: float = QUANTILE, margin: float = MARGIN) -> dict:
    """The ``chest_check`` entry of a segmenter's preprocessing metadata, from chest films in [0, 1]."""
    values = [features(model_probability(model, size, film)) for film in films]
    return {"features": list(FEATURES), "ranges": ranges_from(values, q, margin), "films": len(films),
            "quantile": q, "margin": margin}


def verdict_text(verdict: CheckResult | None) -> str:
    """A CSV cell: ``ok``, what looks wrong, or empty where not checked."""
    return "" if verdict is None else "ok" if verdict.ok else "; ".join(verdict.reasons)


def write_check_csv(path: Path, rows: dict[str, tuple[str, str]]) -> Path:
    """``chest_check.csv`` (input, output, chest_check): this run's ``rows`` by input, merged into the rows an
    earlier run or another shard left (:func:`medvae.io.tables.merge_rows`)."""
    from medvae.io.tables import merge_rows

    return merge_rows(path, ["input", "output", "chest_check"], [[src, dst, v] for src, (dst, v) in rows.items()])
