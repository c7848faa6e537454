"""``medvae evaluate oversampling``: does generating the rare class help a classifier, on this data?

Per seed, the data is split first (train / validation / test; by patient where an ``index.csv`` names them;
synthetic images are made from the training split only and never reach validation or test). Then a small CNN
(MONAI ``Classifier``) is trained on:

- ``none``: the imbalanced training split as it is;
- ``class weights``: the same with cross-entropy weights inversely proportional to the class counts;
- ``tuned threshold``: ``none``'s classifier with a bias on the minority's logit chosen on the validation
  split for the best macro-F1 (it cannot change the minority's AUPRC: the bias keeps the ranking);
- each sampler of :mod:`medvae.tasks.oversampling.samplers` adding ``ratio`` x the minority count of
  synthetic minority images (ratios 0.25, 1 and 4 by default), and with ``balance`` as many as bring the
  minority up to the largest class (the reference method's setting).

Metrics on the test split: balanced accuracy, macro-F1, the minority's recall and its AUPRC (one against the
rest, on the softmax probability). Every conditional VAE-GAN row is compared with every other row by a
one-sided paired t-test across seeds (scipy): the verdict is whether one of them beats all the others on
minority AUPRC and macro-F1 at p < 0.05.

MNIST (``data="mnist"``): the embedded sample's 400 training digits per class, the minority digit cut to
``minority_count`` (4, 20, 40: imbalance 100, 20, 10); each seed's validation split is 50 test digits per
class with the minority at the same imbalance (at least 1), and its test split the other 50 per class
(balanced).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from medvae.errors import UsageError, check_positive
from medvae.tasks.oversampling.samplers import SAMPLERS

BASELINES = ("none", "class weights", "tuned threshold")
METRICS = ("balanced_accuracy", "macro_f1", "minority_recall", "minority_auprc")


@dataclass
class OversamplingEvalConfig:
    """Settings of :func:`evaluate_oversampling` (the CLI's options, same names)."""

    data: str = "mnist"
    minority: str = "8"
    minority_count: int | None = 4  # training images of the minority kept (None: all of them)
    seeds: int = 3
    ratios: tuple[float, ...] = (0.25, 1.0, 4.0)
    samplers: tuple[str, ...] = SAMPLERS
    balance: bool = True
    size: int = 28
    classifier_epochs: int = 6
    generator_epochs: int = 12
    latent_dim: int = 8
    channels: tuple[int, ...] = (32, 64)
    test_fraction: float = 0.3  # folders: patients held out for testing ...
    val_fraction: float = 0.15  # ... and for validation
    patients: str | None = None
    limit: int | None = None  # at most this many training images of each class (a seeded choice)
    device: str = "auto"
    progress: bool = True

    def __post_init__(self) -> None:
        check_positive("seeds", self.seeds)
        check_positive("classifier_epochs", self.classifier_epochs)
        check_positive("generator_epochs", self.generator_epochs)
        if self.minority_count is not None:
            check_positive("minority_count", self.minority_count)
        if self.limit is not None:
            check_positive("limit", self.limit)
        self.ratios, self.samplers = tuple(float(r) for r in self.ratios), tuple(self.samplers)
        if not self.ratios or any(r <= 0 for r in self.ratios):
            raise UsageError(f"ratios must be positive, got {self.ratios}", param="ratios")
        unknown = [s for s in self.samplers if s not in SAMPLERS]
        if unknown:
            raise UsageError(f"sampler {unknown[0]!r} is not one of {', '.join(SAMPLERS)}", param="samplers")


@dataclass
class Split:
    train: tuple  # (images, labels)
    val: tuple
    test: tuple


@dataclass
class OversamplingEvaluation:
    config: OversamplingEvalConfig
    classes: list[str]
    counts: dict[str, int]  # the first seed's training images per class
    results: dict[str, list[dict[str, float]]] = field(default_factory=dict)  # method -> metrics per seed

    def summary(self) -> dict[str, dict[str, float]]:
        return {m: {k: float(np.mean([r[k] for r in rows])) for k in METRICS} for m, rows in self.results.items()}


def mnist_split(minority: int, count: int | None, seed: int) -> Split:
    """The MNIST split of the module's docstring."""
    import torch

    from medvae.tasks.generative.classifier import mnist_tensors

    g = torch.Generator().manual_seed(seed)
    x, y = mnist_tensors("train")
    keep = torch.ones(len(y), dtype=torch.bool)
    if count is not None:
        idx = torch.nonzero(y == minority).flatten()
        keep[idx[torch.randperm(len(idx), generator=g)[count:]]] = False
    n_min, n_maj = int((y[keep] == minority).sum()), int((y[keep] != minority).sum()) / 9
    xt, yt = mnist_tensors("test")
    val, test = [], []
    for k in range(10):
        idx = torch.nonzero(yt == k).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        half = len(idx) // 2
        n_val = max(1, round(half * n_min / n_maj)) if k == minority else half
        val.append(idx[:n_val])
        test.append(idx[half:])
    val, test = torch.cat(val), torch.cat(test)
    return Split((x[keep], y[keep]), (xt[val], yt[val]), (xt[test], yt[test]))


def folder_split(labelled, patients: list[str], config: OversamplingEvalConfig, minority: int, seed: int) -> Split:
    """A patient-level split of a labelled folder, the minority's training images cut to ``minority_count``."""
    import torch

    from medvae.data.patients import patient_split

    rest, test = patient_split(patients, config.test_fraction, seed)
    rest_patients = [patients[i] for i in rest]
    train_part, val_part = patient_split(rest_patients, config.val_fraction / (1 - config.test_fraction), seed + 1)
    train, val = torch.as_tensor(rest[train_part]), torch.as_tensor(rest[val_part])
    test = torch.as_tensor(test)
    x, y = labelled.images, labelled.labels
    if config.minority_count is not None:
        g = torch.Generator().manual_seed(seed)
        is_min = torch.nonzero(y[train] == minority).flatten()
        drop = is_min[torch.randperm(len(is_min), generator=g)[config.minority_count:]]
        train = train[~torch.isin(torch.arange(len(train)), drop)]
    for name, part in (("training", train), ("validation", val), ("test", test)):
        if not (y[part] == minority).any():
            raise UsageError(f"the {name} split of seed {seed} has no image of the minority class; the class is "
                             "too rare for this split: add images or patients", param="minority")
    return Split((x[train], y[train]), (x[val], y[val]), (x[test], y[test]))


def per_class_limit(images, labels, limit: int, seed: int):
    """At most ``limit`` of each class's images (a seeded choice)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    keep = torch.cat([idx[torch.randperm(len(idx), generator=g)[:limit]]
                      for idx in (torch.nonzero(labels == c).flatten() for c in torch.unique(labels))]).sort().values
    return images[keep], labels[keep]


def train_classifier(images, labels, num_classes: int, config: OversamplingEvalConfig, seed: int, weights=None):
    """The small CNN (MONAI ``Classifier``: strided convolutions, a linear head) by the one training loop."""
    import torch
    from monai.networks.nets import Classifier

    from medvae.data.datasets import TensorBatches
    from medvae.models.base import LossOutput
    from medvae.train import TrainConfig, fit, seed_everything

    class Training(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = Classifier(in_shape=tuple(images.shape[1:]), classes=num_classes, channels=(16, 32, 64),
                                  strides=(2, 2, 2))
            self.register_buffer("weights", torch.as_tensor(weights).float() if weights is not None else None)

        def loss(self, batch):
            out = self.net(batch["image"])
            return LossOutput(torch.nn.functional.cross_entropy(out, batch["label"], weight=self.weights), {})

    seed_everything(seed)
    model = Training()
    fit(model, TensorBatches({"image": images, "label": labels}), None,
        TrainConfig(epochs=config.classifier_epochs, batch_size=64, seed=seed, device=config.device,
                    progress=False, lr_schedule="cosine"))
    return model.net.eval()


def predict(net, images):
    """Logits ``(N, K)`` on the CPU, in batches on the classifier's device."""
    import torch

    device = next(net.parameters()).device
    with torch.no_grad():
        return torch.cat([net(images[i:i + 512].to(device)).float().cpu() for i in range(0, len(images), 512)])


def metrics(logits, labels, minority: int, bias: float = 0.0) -> dict[str, float]:
    """The four metrics of the module's docstring (``bias`` added to the minority's logit)."""
    logits = logits.clone()
    logits[:, minority] += bias
    return minority_scores(labels.numpy(), logits.argmax(1).numpy(), logits.softmax(1)[:, minority].numpy(),
                           minority)


def minority_scores(y, pred, p_minority, minority: int) -> dict[str, float]:
    """Balanced accuracy, macro-F1, the minority's recall and its AUPRC (average precision of ``p_minority``),
    from the true classes ``y``, the predicted ones ``pred`` and the minority's predicted probability."""
    from sklearn.metrics import average_precision_score, balanced_accuracy_score, f1_score, recall_score

    y, pred = np.asarray(y), np.asarray(pred)
    return {"balanced_accuracy": float(balanced_accuracy_score(y, pred)),
            "macro_f1": float(f1_score(y, pred, average="macro", zero_division=0)),
            "minority_recall": float(recall_score(y == minority, pred == minority, zero_division=0)),
            "minority_auprc": float(average_precision_score(y == minority, p_minority))}


def tune_bias(logits, labels, minority: int) -> float:
    """The bias on the minority's logit (a grid from -4 to 12) with the best macro-F1 on ``logits``."""
    grid = np.linspace(-4, 12, 65)
    scores = [metrics(logits, labels, minority, b)["macro_f1"] for b in grid]
    return float(grid[int(np.argmax(scores))])


def evaluate_oversampling(config: OversamplingEvalConfig | None = None, **overrides) -> OversamplingEvaluation:
    """Run the comparison of the module's docstring; one row of results per method and seed."""
    import dataclasses

    import torch
    from tqdm.auto import tqdm

    from medvae.tasks.oversampling import samplers as S

    config = dataclasses.replace(config, **overrides) if config else OversamplingEvalConfig(**overrides)
    if config.data == "mnist":
        classes, labelled, patients = [str(d) for d in range(10)], None, None
    else:
        from medvae.data.classes import load_labelled
        from medvae.data.patients import patients_of

        labelled = load_labelled(config.data, config.size, normalize="percentile", progress=config.progress)
        classes = labelled.classes
        from pathlib import Path

        patients, _ = patients_of([Path(f) for f in labelled.files], config.patients, search=config.data)
    if config.minority not in classes:
        raise UsageError(f"minority {config.minority!r} is not one of the classes: {', '.join(classes)}",
                         param="minority")
    minority, k = classes.index(config.minority), len(classes)
    report = OversamplingEvaluation(config, classes, {})
    amounts = list(config.ratios) + (["balance"] if config.balance else [])
    steps = config.seeds * (len(BASELINES) + len(config.samplers) * len(amounts))
    bar = tqdm(total=steps, desc="classifiers", unit="model", disable=not config.progress, leave=False)

    def add(method, values):
        report.results.setdefault(method, []).append(values)
        bar.update(1)

    for seed in range(config.seeds):
        split = (mnist_split(minority, config.minority_count, seed) if labelled is None
                 else folder_split(labelled, patients, config, minority, seed))
        x, y = split.train if config.limit is None else per_class_limit(*split.train, config.limit, seed)
        counts = torch.bincount(y, minlength=k)
        if not report.counts:
            report.counts = dict(zip(classes, counts.tolist()))
        plain = train_classifier(x, y, k, config, seed)
        add("none", metrics(predict(plain, split.test[0]), split.test[1], minority))
        weights = counts.sum() / (k * counts.clamp(min=1).float())
        weighted = train_classifier(x, y, k, config, seed, weights=weights)
        add("class weights", metrics(predict(weighted, split.test[0]), split.test[1], minority))
        bias = tune_bias(predict(plain, split.val[0]), split.val[1], minority)
        add("tuned threshold", metrics(predict(plain, split.test[0]), split.test[1], minority, bias))
        models = {}
        if {"smote-latent", "vae"} & set(config.samplers):
            models["vae"] = S.fit_vae(x, config, seed)
        if "cvaegan" in config.samplers:
            models["cvaegan"] = S.fit_cvaegan(x, y, k, config, seed)
        n_min = int(counts[minority])
        for sampler in config.samplers:
            for ratio in amounts:
                count = int(counts.max()) - n_min if ratio == "balance" else max(1, round(ratio * n_min))
                extra = S.draw(sampler, x, y, minority, count, seed, models)
                xs, ys = torch.cat([x, extra.float()]), torch.cat([y, torch.full((count,), minority)])
                net = train_classifier(xs, ys, k, config, seed)
                add(method_name(sampler, ratio), metrics(predict(net, split.test[0]), split.test[1], minority))
    bar.close()
    return report


def method_name(sampler: str, ratio: float | str) -> str:
    return f"{sampler} ×{ratio}" if isinstance(ratio, str) else f"{sampler} ×{ratio:g}"


def paired_p(a: list[float], b: list[float]) -> float:
    """One-sided paired t-test p-value that ``a`` is above ``b`` across seeds (1.0 for fewer than 2 seeds or
    no difference)."""
    from scipy.stats import ttest_rel

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    d = a - b
    if len(d) < 2 or np.allclose(d, 0):
        return 1.0
    if np.ptp(d) < 1e-9 * max(1.0, abs(d.mean())):  # the same gap on every seed: no spread to test against
        return 0.0 if d.mean() > 0 else 1.0
    return float(ttest_rel(a, b, alternative="greater").pvalue)


def verdict(report: OversamplingEvaluation, alpha: float = 0.05) -> tuple[bool, str]:
    """Whether a conditional VAE-GAN row beats every other row on minority AUPRC and macro-F1 (paired,
    p < ``alpha``), and a sentence saying so, with the closest rival."""
    rows = report.results
    ours = [m for m in rows if m.startswith("cvaegan")]
    if not ours:
        return False, "no conditional VAE-GAN row was run"
    best_line, best_worst = "", -1.0
    for mine in ours:
        worst_p, rival_line = 0.0, ""
        for other in (m for m in rows if not m.startswith("cvaegan")):
            for metric in ("minority_auprc", "macro_f1"):
                p = paired_p([r[metric] for r in rows[mine]], [r[metric] for r in rows[other]])
                if p >= worst_p:
                    worst_p = p
                    gap = np.mean([r[metric] for r in rows[mine]]) - np.mean([r[metric] for r in rows[other]])
                    rival_line = f"{metric} {gap:+.4f} against {other} (p = {p:.3f})"
        if best_worst < 0 or worst_p < best_worst:
            best_worst, best_line = worst_p, f"{mine}: closest rival {rival_line}"
    met = best_worst < alpha
    return met, (f"{'MET' if met else 'MISSED'}: the best conditional VAE-GAN row beats every other row on "
                 f"minority AUPRC and macro-F1 at p < {alpha}" if met else
                 f"MISSED: no conditional VAE-GAN row beats every other row on minority AUPRC and macro-F1 "
                 f"at p < {alpha}") + f"; {best_line}"


def format_report(report: OversamplingEvaluation) -> str:
    """A Markdown table (mean ± sd over seeds) and the verdict."""
    c = report.config
    n_min = report.counts.get(c.minority, 0)
    top = max(report.counts.values()) if report.counts else 0
    lines = [f"minority class {c.minority}: {n_min} training images against up to {top} of each other class "
             f"(imbalance {top / max(n_min, 1):.0f}); {c.seeds} seeds",
             "", "| method | balanced accuracy | macro-F1 | minority recall | minority AUPRC |",
             "|---|---:|---:|---:|---:|"]
    for method, rows in report.results.items():
        cells = [f"{np.mean([r[m] for r in rows]):.3f} ± {np.std([r[m] for r in rows]):.3f}" for m in METRICS]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines += ["", verdict(report)[1]]
    return "\n".join(lines)
