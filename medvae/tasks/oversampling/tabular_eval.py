"""Tables: does the tabular conditional VAE-GAN's oversampling help a gradient-boosted classifier?

Per table, stratified K-fold cross-validation (5 folds, shuffled, seeded). In each fold every method sees the
training fold only; the test fold is scored untouched. The classifier is scikit-learn's
``HistGradientBoostingClassifier`` (its defaults, seeded) trained on:

- ``none``: the training fold as it is;
- ``class weights``: the same with ``sample_weight`` inversely proportional to the class counts;
- ``random``, ``smote``, ``adasyn``: imbalanced-learn's ``RandomOverSampler``, ``SMOTE`` and ``ADASYN``,
  every class topped up to the largest (their default ``sampling_strategy``);
- ``cvaegan``: the tabular conditional VAE-GAN (:func:`medvae.tasks.oversampling.tabular.fit_tabular`),
  trained on the training fold for ``generator_steps`` optimisation steps, drawing each class up to the
  largest.

Metrics on the test fold: the minority's AUPRC (average precision of its predicted probability), macro-F1,
balanced accuracy and the minority's recall (the minority: the class with the fewest rows in the table).
:func:`compare` pairs ``cvaegan`` with every other method across folds × tables (one-sided Wilcoxon
signed-rank, scipy) on minority AUPRC and macro-F1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from medvae.errors import UsageError, check_positive

METHODS = ("none", "class weights", "random", "smote", "adasyn", "cvaegan")
METRICS = ("minority_auprc", "macro_f1", "balanced_accuracy", "minority_recall")
TESTED = ("minority_auprc", "macro_f1")


@dataclass
class TableEvalConfig:
    """Settings of :func:`evaluate_table`."""

    folds: int = 5
    seed: int = 0
    methods: tuple[str, ...] = METHODS
    generator_steps: int = 2000
    latent_dim: int = 4
    hidden: tuple[int, ...] = (64, 64)
    batch_size: int = 64
    device: str = "cpu"

    def __post_init__(self) -> None:
        self.methods, self.hidden = tuple(self.methods), tuple(self.hidden)
        if not isinstance(self.folds, int) or self.folds < 2:
            raise UsageError(f"folds must be an integer of 2 or more, got {self.folds!r}", param="folds")
        check_positive("generator_steps", self.generator_steps)
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise UsageError(f"method {unknown[0]!r} is not one of {', '.join(METHODS)}", param="methods")


@dataclass
class Resampled:
    """A training set: rows, classes, per-row weights (None: equal) and which rows are synthetic."""

    x: np.ndarray
    y: np.ndarray
    weight: np.ndarray | None
    synthetic: np.ndarray


def fold_indices(y: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(train, test)`` row indices of stratified K-fold (shuffled with ``seed``); every row is tested once."""
    from sklearn.model_selection import StratifiedKFold

    smallest = int(np.bincount(y).min())
    if smallest < folds:
        raise UsageError(f"folds {folds}: the smallest class has {smallest} rows; every fold needs one",
                         param="folds")
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y))


def resample(method: str, x: np.ndarray, y: np.ndarray, config: TableEvalConfig, seed: int) -> Resampled:
    """The training set ``method`` makes of the training rows ``x``, ``y`` (and of nothing else)."""
    n, counts = len(y), np.bincount(y)
    plain = np.zeros(n, dtype=bool)
    if method == "none":
        return Resampled(x, y, None, plain)
    if method == "class weights":
        return Resampled(x, y, (n / (len(counts) * counts))[y], plain)
    if method in ("random", "smote", "adasyn"):
        from imblearn.over_sampling import ADASYN, SMOTE, RandomOverSampler

        k = min(5, int(counts.min()) - 1)
        if k < 1 and method != "random":
            raise UsageError(f"{method} needs at least 2 training rows of every class; a training fold has "
                             f"{int(counts.min())}: use fewer folds", param="folds")
        sampler = {"random": lambda: RandomOverSampler(random_state=seed),
                   "smote": lambda: SMOTE(k_neighbors=k, random_state=seed),
                   "adasyn": lambda: ADASYN(n_neighbors=k, random_state=seed)}[method]()
        xr, yr = sampler.fit_resample(x, y)
        if not (np.array_equal(xr[:n], x) and np.array_equal(yr[:n], y)):  # imbalanced-learn appends its rows
            raise RuntimeError(f"{method} did not keep the training rows first")
        return Resampled(xr, yr, None, np.arange(len(yr)) >= n)
    if method == "cvaegan":
        from medvae.tasks.oversampling import tabular

        sampler = tabular.fit_tabular(x, y, len(counts), **generator_settings(y, config, seed))
        top = int(counts.max())
        drawn = [(sampler.draw(k, top - int(c), seed=seed * 1000 + k), k) for k, c in enumerate(counts) if c < top]
        xs = np.concatenate([x, *(rows for rows, _ in drawn)])
        ys = np.concatenate([y, *(np.full(len(rows), k) for rows, k in drawn)])
        return Resampled(xs, ys, None, np.arange(len(ys)) >= n)
    raise ValueError(f"unknown method {method!r}; one of {', '.join(METHODS)}")


def generator_settings(y: np.ndarray, config: TableEvalConfig, seed: int) -> dict:
    """The conditional VAE-GAN's training settings for a training fold of classes ``y``: as many epochs as make
    ``generator_steps`` steps over the epoch :func:`~medvae.tasks.oversampling.train.balanced_indices` makes."""
    from medvae.tasks.oversampling.train import RARE_FLOOR

    counts = np.bincount(y)
    rows = int(np.maximum(counts, math.ceil(RARE_FLOOR * counts.max())).sum())
    epochs = max(1, round(config.generator_steps / math.ceil(rows / config.batch_size)))
    return dict(epochs=epochs, batch_size=config.batch_size, latent_dim=config.latent_dim, hidden=config.hidden,
                seed=seed, device=config.device, progress=False, previews=False)


def fit_classifier(x: np.ndarray, y: np.ndarray, weight: np.ndarray | None, seed: int):
    """scikit-learn's ``HistGradientBoostingClassifier`` with its defaults, seeded."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(random_state=seed).fit(x, y, sample_weight=weight)


def score(classifier, x: np.ndarray, y: np.ndarray, minority: int) -> dict[str, float]:
    """The four metrics of the module's docstring on the test rows ``x``, ``y``."""
    from medvae.tasks.oversampling.evaluate import minority_scores

    proba = classifier.predict_proba(x)
    column = list(classifier.classes_).index(minority)
    return minority_scores(y, classifier.classes_[proba.argmax(1)], proba[:, column], minority)


def evaluate_table(x: np.ndarray, y: np.ndarray, config: TableEvalConfig | None = None,
                   **overrides) -> dict[str, list[dict[str, float]]]:
    """Every method of ``config.methods`` on every fold of the table ``x`` ``(N, F)``, ``y`` ``(N,)`` class
    indices; method → one dict of metrics per fold."""
    import dataclasses

    config = dataclasses.replace(config, **overrides) if config else TableEvalConfig(**overrides)
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.int64)
    minority = int(np.argmin(np.bincount(y)))
    results: dict[str, list[dict[str, float]]] = {m: [] for m in config.methods}
    for fold, (train, test) in enumerate(fold_indices(y, config.folds, config.seed)):
        seed = config.seed * 100 + fold
        for method in config.methods:
            data = resample(method, x[train], y[train], config, seed)
            classifier = fit_classifier(data.x, data.y, data.weight, seed)
            results[method].append(score(classifier, x[test], y[test], minority))
    return results


def paired_p(a, b) -> float:
    """One-sided Wilcoxon signed-rank p-value that ``a`` is above ``b`` (pairs that tie are left out; 1.0 when
    every pair ties or there are fewer than 2)."""
    from scipy.stats import wilcoxon

    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    d = d[np.abs(d) > 1e-12]
    if len(d) < 2:
        return 1.0
    return float(wilcoxon(d, alternative="greater").pvalue)


def compare(results: dict[str, dict[str, list[dict[str, float]]]], ours: str = "cvaegan") -> list[dict]:
    """``ours`` against every other method, pooled over the folds of every table: per tested metric the mean
    difference and the one-sided p-values that ours is better (``p_better``) and worse (``p_worse``)."""
    methods = [m for m in next(iter(results.values())) if m != ours]
    pooled = lambda method, metric: [r[metric] for table in results.values() for r in table[method]]  # noqa: E731
    rows = []
    for other in methods:
        row = {"method": other}
        for metric in TESTED:
            a, b = pooled(ours, metric), pooled(other, metric)
            row[metric] = {"gap": float(np.mean(a) - np.mean(b)), "p_better": paired_p(a, b),
                           "p_worse": paired_p(b, a)}
        rows.append(row)
    return rows


def verdict(comparison: list[dict], alpha: float = 0.05) -> tuple[bool, str]:
    """Whether the conditional VAE-GAN beats every other method on minority AUPRC and macro-F1 (p < ``alpha``),
    and a sentence saying so, with the closest rival and where it was itself beaten."""
    if not comparison:
        return False, "nothing to compare the conditional VAE-GAN with"
    worst = max(((row[m]["p_better"], row["method"], m, row[m]["gap"]) for row in comparison for m in TESTED))
    met = worst[0] < alpha
    beaten = [f"{row['method']} ({m})" for row in comparison for m in TESTED if row[m]["p_worse"] < alpha]
    text = (f"{'MET' if met else 'MISSED'}: the conditional VAE-GAN {'beats' if met else 'does not beat'} every "
            f"other method on minority AUPRC and macro-F1 at p < {alpha} (one-sided Wilcoxon across folds x "
            f"tables); closest rival {worst[1]}, {worst[2]} {worst[3]:+.4f} (p = {worst[0]:.3f}); "
            + (f"it is itself significantly worse than {', '.join(beaten)}" if beaten else
               "no method is significantly better than it"))
    return met, text


def format_results(results: dict[str, dict[str, list[dict[str, float]]]], counts: dict[str, tuple[int, int]]
                   ) -> str:
    """Markdown: a table per data set and one pooled over every fold (mean ± sd over folds), the paired
    comparison and the verdict. ``counts`` is table → (rows, minority rows)."""
    header = ["| method | minority AUPRC | macro-F1 | balanced accuracy | minority recall |", "|---|---:|---:|---:|---:|"]

    def table(by_method):
        return [f"| {m} | " + " | ".join(f"{np.mean([r[k] for r in rows]):.3f} ± {np.std([r[k] for r in rows]):.3f}"
                                         for k in METRICS) + " |" for m, rows in by_method.items()]

    lines = []
    for name, by_method in results.items():
        n, n_min = counts[name]
        folds = len(next(iter(by_method.values())))
        lines += [f"### {name}: {n} rows, {n_min} minority (imbalance {(n - n_min) / n_min:.1f}), {folds} folds",
                  "", *header, *table(by_method), ""]
    methods = next(iter(results.values()))
    pooled = {m: [r for by_method in results.values() for r in by_method[m]] for m in methods}
    lines += [f"### pooled: {len(results)} tables x folds = {len(next(iter(pooled.values())))} test folds", "",
              *header, *table(pooled), ""]
    if "cvaegan" in methods and len(methods) > 1:
        comparison = compare(results)
        lines += ["| cvaegan vs | Δ AUPRC | p (better) | p (worse) | Δ macro-F1 | p (better) | p (worse) |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for row in comparison:
            cells = [f"{row[m]['gap']:+.4f} | {row[m]['p_better']:.3f} | {row[m]['p_worse']:.3f}" for m in TESTED]
            lines.append(f"| {row['method']} | " + " | ".join(cells) + " |")
        lines += ["", verdict(comparison)[1]]
    return "\n".join(lines)
