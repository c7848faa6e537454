"""``medvae evaluate enhance``: the enhancer beside tuned classical baselines on degraded clean films.

Each held-out clean film is degraded by every degradation at fixed severities, with a fixed seed per (film,
degradation, severity), and PSNR / SSIM (scikit-image, data range 1) against the clean film are reported for
the degraded film, medvae's enhancement (run as ``medvae enhance`` runs it: the film's own minimum and maximum
map to [0, 1] and back) and five classical scikit-image/SciPy baselines: non-local means, total-variation
denoising (Chambolle), a Gaussian filter, a median filter and CLAHE.

**The baselines are tuned, on training films only.** For every degradation and severity, each baseline's
parameter (:data:`GRID`) is chosen by its mean PSNR on ``tune`` of the films the model trained on, degraded the
same way with other seeds; the test films never choose anything. Where the model trained on none of the films
given, the baselines keep their default parameters (:data:`DEFAULTS`) and the report says so.

**Do no harm**: every clean test film also goes through the enhancer as it is; its PSNR against itself is
reported (mean and worst).

Targets: above the best classical baseline for noise, blur and grid at every severity; for contrast and exposure
no worse than the degraded film; a clean film comes back at 40 dB or more.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medvae.errors import UsageError, count

SEVERITIES = (0.3, 0.6, 0.9)
CLASSICAL = ("nlm", "tv", "gaussian", "median", "clahe")
#: the parameter tried per baseline: NLM's h and TV's weight as multiples of the estimated noise sigma, the
#: Gaussian's sigma and the median's size in pixels, CLAHE's clip limit
GRID = {"nlm": (0.6, 0.8, 1.0, 1.3), "tv": (0.5, 1.0, 2.0, 4.0), "gaussian": (0.5, 0.8, 1.2, 2.0),
        "median": (3, 5), "clahe": (0.005, 0.01, 0.02)}
DEFAULTS = {"nlm": 0.8, "tv": 2.0, "gaussian": 0.8, "median": 3, "clahe": 0.01}
#: kinds the enhancer must beat the best baseline on; the others it must at least not make worse
RESTORED, KEPT = ("noise", "blur", "grid"), ("contrast", "exposure")
DO_NO_HARM_DB = 40.0


def noise_sigma(image: np.ndarray) -> float:
    """Gaussian noise level of an image by Immerkaer's (1996) Laplacian-difference estimator.

    scikit-image's ``estimate_sigma`` needs PyWavelets, a dependency for one number; this is the classic
    fast alternative: the image convolved with a kernel that cancels smooth structure, averaged in absolute value.
    """
    from scipy.ndimage import convolve

    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float64)
    residual = convolve(image.astype(np.float64), kernel, mode="reflect")[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2) * np.abs(residual).mean() / 6)


def baseline(method: str, image: np.ndarray, param: float, sigma: float | None = None) -> np.ndarray:
    """One classical baseline with its parameter (see :data:`GRID`) on a [0, 1] image."""
    from scipy.ndimage import gaussian_filter, median_filter
    from skimage.exposure import equalize_adapthist
    from skimage.restoration import denoise_nl_means, denoise_tv_chambolle

    sigma = noise_sigma(image) if sigma is None else sigma
    if method == "nlm":
        out = denoise_nl_means(image, h=param * sigma, sigma=sigma, patch_size=5, patch_distance=6, fast_mode=True)
    elif method == "tv":
        out = denoise_tv_chambolle(image, weight=max(0.005, param * sigma))
    elif method == "gaussian":
        out = gaussian_filter(image, sigma=param, mode="reflect")
    elif method == "median":
        out = median_filter(image, size=int(param), mode="reflect")
    elif method == "clahe":
        out = equalize_adapthist(np.clip(image, 0, 1), clip_limit=param)
    else:
        raise UsageError(f"baseline {method!r} is not one of {', '.join(CLASSICAL)}", param="baseline")
    return np.asarray(out, dtype=np.float32)


def classical(image: np.ndarray, params: dict[str, float] | None = None) -> dict[str, np.ndarray]:
    """Every classical baseline applied to a [0, 1] image, with ``params`` (default :data:`DEFAULTS`)."""
    params = {**DEFAULTS, **(params or {})}
    sigma = noise_sigma(image)
    return {m: baseline(m, image, params[m], sigma) for m in CLASSICAL}


def quality(image: np.ndarray, clean: np.ndarray) -> tuple[float, float]:
    """(PSNR dB, SSIM) of ``image`` against ``clean``, both in [0, 1]."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    return (float(peak_signal_noise_ratio(clean, image, data_range=1.0)),
            float(structural_similarity(clean, image, data_range=1.0)))


def degraded_versions(clean: np.ndarray, index: int, kinds, severities, seed: int):
    """``(kind, severity, degraded)`` for every pair, each with its own fixed seed."""
    from medvae.phantoms.degrade import degrade

    for k, kind in enumerate(kinds):
        for s, severity in enumerate(severities):
            yield kind, severity, degrade(clean, kind, severity, np.random.default_rng([seed, index, k, s]))


@dataclass
class EnhanceEvaluation:
    """Mean PSNR / SSIM per (kind, severity) and method over the test films (``images``); the baselines'
    parameters per (kind, severity), the films that tuned them, and each clean film's PSNR through medvae."""

    images: list[str]
    rows: dict[tuple[str, float], dict[str, tuple[float, float]]] = field(default_factory=dict)
    params: dict[tuple[str, float], dict[str, float]] = field(default_factory=dict)
    tuned_on: list[str] = field(default_factory=list)
    clean_psnr: list[float] = field(default_factory=list)

    def mean(self, method: str) -> tuple[float, float]:
        values = np.array([row[method] for row in self.rows.values()])
        return float(values[:, 0].mean()), float(values[:, 1].mean())

    def best_classical(self, key: tuple[str, float]) -> str:
        return max(CLASSICAL, key=lambda m: self.rows[key][m][0])

    def checks(self) -> list[tuple[str, bool]]:
        """``(statement, met)`` per target. Each statement gives the measured values, the target and whether it
        was met, in words true either way (e.g. "enhanced 22.18 dB is 5.14 dB below degraded (27.29 dB)")."""
        out = []
        for kind in dict.fromkeys(k for k, _ in self.rows):
            keys = [key for key in self.rows if key[0] == kind]
            if kind in RESTORED:
                parts, met = [], []
                for key in keys:
                    best = self.best_classical(key)
                    a, b = self.rows[key]["medvae"][0], self.rows[key][best][0]
                    parts.append(f"at {key[1]:g} enhanced {_versus(a, b)} the best tuned baseline, {best} "
                                 f"({b:.2f} dB)")
                    met.append((key[1], a > b))
                out.append((f"{kind}: {'; '.join(parts)}; target: above the best baseline at every severity: "
                            f"{_met(met)}", all(ok for _, ok in met)))
            elif kind in KEPT:
                parts, met = [], []
                for key in keys:
                    a, b = self.rows[key]["medvae"][0], self.rows[key]["degraded"][0]
                    parts.append(f"at {key[1]:g} enhanced {_versus(a, b)} degraded ({b:.2f} dB)")
                    met.append((key[1], a >= b))
                out.append((f"{kind}: {'; '.join(parts)}; target: no worse than degraded at every severity: "
                            f"{_met(met)}", all(ok for _, ok in met)))
        if self.clean_psnr:
            worst, mean = min(self.clean_psnr), float(np.mean(self.clean_psnr))
            below = sum(p < DO_NO_HARM_DB for p in self.clean_psnr)
            verdict = "met" if not below else "not met"
            out.append((f"a clean film through medvae comes back at {mean:.2f} dB on average, {worst:.2f} dB at "
                        f"worst, {gap_words(worst, DO_NO_HARM_DB)} the target; target: at least {DO_NO_HARM_DB:g} dB "
                        f"for every film: {verdict}", not below))
        return out

    def to_dict(self) -> dict:
        return {"images": self.images, "tuned_on": self.tuned_on, "clean_psnr": self.clean_psnr,
                "rows": [{"degradation": k, "severity": s, "params": self.params.get((k, s), {}),
                          **{m: {"psnr": v[0], "ssim": v[1]} for m, v in row.items()}}
                         for (k, s), row in self.rows.items()],
                "checks": [{"check": t, "pass": ok} for t, ok in self.checks()]}


def gap_words(a: float, b: float, unit: str = "dB", digits: int = 2) -> str:
    """How ``a`` stands to ``b`` in words true either way: "5.14 dB below", "0.20 dB above", "level with"
    (rounded to ``digits``: a gap that rounds to nothing is "level with")."""
    gap = round(a - b, digits)
    if gap == 0:
        return "level with"
    return f"{abs(gap):.{digits}f}{' ' + unit if unit else ''} {'above' if gap > 0 else 'below'}"


def _versus(a: float, b: float) -> str:
    """"22.18 dB is 5.14 dB below" (``a`` against ``b``; the caller names ``b``)."""
    return f"{a:.2f} dB is {gap_words(a, b)}"


def _met(met: list[tuple[float, bool]]) -> str:
    """"met", or "not met at 0.6 and 0.9": which severities missed."""
    missed = [f"{s:g}" for s, ok in met if not ok]
    if not missed:
        return "met"
    return "not met at " + (missed[0] if len(missed) == 1 else ", ".join(missed[:-1]) + " and " + missed[-1])


def trained_names(info) -> set[str]:
    """File names of the images a model trained on (names, not paths: a model may be trained elsewhere)."""
    return {Path(p).name for p in (info.training or {}).get("train_images", [])}


def eval_images(info, data: list[str] | None) -> tuple[list[Path], list[Path]]:
    """``(test, training)`` films: those in ``data`` (files or folders) the model did not train on and those it
    did; without ``data``, the films the model held out (where they still lie where it recorded them)."""
    from medvae.io.batch import discover

    if data:
        seen = trained_names(info)
        found = [p for d in data for p in discover(d)]
        paths = [p for p in found if p.name not in seen]
        if not paths:
            raise UsageError(f"data: the model trained on every image in {', '.join(data)}; pass held-out images", param="data")
        return paths, [p for p in found if p.name in seen]
    held_out = [Path(p) for p in (info.training or {}).get("test_images", [])]
    if not held_out or not all(p.is_file() for p in held_out):
        raise UsageError("data: pass --data with clean images (the model's held-out films are not at hand)", param="data")
    return held_out, []


def reduced(image: np.ndarray, size: int) -> np.ndarray:
    """``image`` reduced (anti-aliased) so its longer side is at most ``size`` pixels (0: as it is)."""
    from medvae.data.transforms import resize

    factor = max(image.shape) / size if size else 1.0
    return image if factor <= 1 else resize(image, tuple(max(1, round(n / factor)) for n in image.shape))


def tune_baselines(films: list[np.ndarray], kinds, severities, seed: int) -> dict[tuple[str, float], dict[str, float]]:
    """Per (kind, severity), each baseline's parameter from :data:`GRID` with the best mean PSNR on ``films``
    (training films, degraded with seeds the test films never use)."""
    scores: dict[tuple[str, float], dict[str, dict[float, list[float]]]] = {}
    for i, clean in enumerate(films):
        for kind, severity, degraded in degraded_versions(clean, 10_000 + i, kinds, severities, seed):
            sigma = noise_sigma(degraded)
            row = scores.setdefault((kind, severity), {})
            for method, values in GRID.items():
                for value in values:
                    psnr = quality(baseline(method, degraded, value, sigma), clean)[0]
                    row.setdefault(method, {}).setdefault(value, []).append(psnr)
    return {key: {m: max(v, key=lambda value: np.mean(v[value])) for m, v in row.items()}
            for key, row in scores.items()}


def evaluate_enhance(model: str | os.PathLike, data: list[str] | None = None, *, kinds=None,
                     severities=SEVERITIES, seed: int = 0, size: int = 0, tune: int = 4, limit: int | None = None,
                     progress: bool = True, device: str = "auto") -> EnhanceEvaluation:
    """Score the enhancer and the tuned classical baselines on degraded clean films (see the module docstring)."""
    from tqdm.auto import tqdm

    from medvae.train import resolve_device

    from medvae.phantoms.degrade import DEGRADATIONS
    from medvae.tasks.cxr.enhance import enhance_values
    from medvae.checkpoint import load_model_of_kind
    from medvae.tasks.cxr.train_enhance import read_unit

    if size < 0 or tune < 0:
        raise UsageError(f"size and tune must not be negative, got size {size}, tune {tune}", param="size")
    net, info = load_model_of_kind(model, "enhancer", option="model", device=str(resolve_device(device)))
    kinds = tuple(kinds or DEGRADATIONS)
    paths, training = eval_images(info, data)
    paths = paths[:limit]
    tuning = sorted(training, key=lambda p: p.name)[:tune]
    params = tune_baselines([reduced(read_unit(p), size) for p in tuning], kinds, severities, seed) if tuning else {}
    result = EnhanceEvaluation([str(p) for p in paths], params=params, tuned_on=[p.name for p in tuning])
    sums: dict[tuple[str, float], dict[str, list]] = {}
    for i, path in enumerate(tqdm(paths, desc="evaluating", disable=not progress, leave=False)):
        clean = reduced(read_unit(path), size)
        result.clean_psnr.append(quality(enhance_values(net, clean), clean)[0])
        for kind, severity, degraded in degraded_versions(clean, i, kinds, severities, seed):
            # medvae exactly as `medvae enhance` runs it on a file: the image's own range in and out
            outputs = {"degraded": degraded, "medvae": enhance_values(net, degraded),
                       **classical(degraded, params.get((kind, severity)))}
            row = sums.setdefault((kind, severity), {})
            for method, image in outputs.items():
                row.setdefault(method, []).append(quality(image, clean))
    for key, row in sums.items():
        result.rows[key] = {m: tuple(np.mean(v, axis=0).tolist()) for m, v in row.items()}
    return result


def format_enhance(ev: EnhanceEvaluation) -> str:
    """A Markdown table: one row per (degradation, severity), PSNR / SSIM per method, then the checks."""
    methods = ("degraded", "medvae", *CLASSICAL)
    tuned = (f"baselines tuned per row on {count(len(ev.tuned_on), 'training film')}" if ev.tuned_on else
             "baselines at their default parameters (the model trained on none of these films)")
    lines = [f"{count(len(ev.images), 'clean film')}; PSNR dB / SSIM against the clean film; {tuned}", "",
             "| degradation | severity | " + " | ".join(methods) + " | best classical |",
             "|---|---:|" + "---:|" * len(methods) + "---|"]
    for (kind, severity), row in ev.rows.items():
        best = ev.best_classical((kind, severity))
        param = ev.params.get((kind, severity), DEFAULTS)[best]
        lines.append(f"| {kind} | {severity:g} | " + " | ".join(f"{row[m][0]:.2f} / {row[m][1]:.3f}"
                                                                 for m in methods) + f" | {best} ({param:g}) |")
    lines.append("| **mean** | | " + " | ".join(f"**{ev.mean(m)[0]:.2f} / {ev.mean(m)[1]:.3f}**"
                                                  for m in methods) + " | |")
    lines += [""] + [f"{'PASS' if ok else 'MISS'}: {text}" for text, ok in ev.checks()]
    return "\n".join(lines)
