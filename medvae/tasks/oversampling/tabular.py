"""Tables: ``medvae train cvaegan --data table.csv --label COLUMN`` and ``medvae oversample`` on its model.

The table is a CSV with a header: ``--label`` names the class column, every other column (or the ``--features``
named) must be numeric, a finite number in every row. Classes are the label column's values, sorted by name;
class index ``i`` is ``classes[i]``. The features are standardised with the training rows' mean and standard
deviation (a constant column keeps a scale of 1), which the model file keeps in its ``preprocessing``
(``features``, ``label``, ``classes``, ``mean``, ``std``, and each feature's training range ``low``, ``high``)
beside the class counts in its ``training`` record, so every draw comes back in the table's own units, clipped
to the range the training rows span.

``oversample`` on such a model writes ``OUT/synthetic.csv`` (the feature columns, the label column and
``synthetic`` 1) and, given the training table (``data``), ``OUT/manifest.csv``: its rows (``synthetic`` 0)
followed by the synthetic ones (the model's feature and label columns only), the whole oversampled table
ready for a classifier.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medvae.errors import InputError, OutputExists, UsageError, check_positive
from medvae.train.config import TrainConfig, train_defaults

SYNTHETIC_TABLE = "synthetic.csv"
MANIFEST = "manifest.csv"


@dataclass
class Table:
    """Attributes: ``features`` ``(N, F)`` float64, ``labels`` ``(N,)`` class indices, ``classes`` (names),
    ``feature_names``, ``label`` (the class column's name)."""

    features: np.ndarray
    labels: np.ndarray
    classes: list[str]
    feature_names: list[str]
    label: str


def read_table(path: str | os.PathLike, label: str, features: tuple[str, ...] | None = None, *,
               classes: list[str] | None = None) -> Table:
    """Read a CSV of numeric features and a class column (see the module's docstring).

    ``classes`` fixes the class names (a table read for a trained model: a row of another class is an error).

    Raises:
        UsageError: no such CSV; no column ``label`` or one of ``features``; a feature column that is not
            numeric; fewer than two classes.
        InputError: no rows, a row without a label, an empty or non-finite feature value.
    """
    path = Path(path)
    if path.suffix.lower() != ".csv" or not path.is_file():
        raise UsageError(f"data {path}: no such CSV file; give a table with a header row", param="data")
    with open(path, newline="", encoding="utf-8-sig") as f:
        lines = list(csv.reader(f))
    header = [c.strip() for c in (lines[0] if lines else [])]
    numbers = [n for n, r in enumerate(lines[1:], start=2) if any(v.strip() for v in r)]  # blank lines left out
    rows = [lines[n - 1] for n in numbers]
    if label not in header:
        raise UsageError(f"label {label!r}: {path.name} has no such column; its columns are "
                         f"{', '.join(header) or 'none'}", param="label")
    names = list(features) if features else [c for c in header if c != label]
    missing = [c for c in names if c not in header]
    if missing or label in names:
        raise UsageError(f"features: {path.name} has no feature column {(missing or [label])[0]!r}" if missing
                         else f"features: {label!r} is the label column, not a feature", param="features")
    if not names:
        raise UsageError(f"data {path}: no feature column beside the label {label!r}", param="data")
    if not rows:
        raise InputError(f"data {path}: the table has a header but no rows")
    if any(len(r) != len(header) for r in rows):
        bad = next(n for n, r in zip(numbers, rows) if len(r) != len(header))
        raise InputError(f"data {path}: row {bad} has a different number of values from the header")
    text = np.array([[v.strip() for v in r] for r in rows], dtype=object)
    columns = [header.index(c) for c in names]
    for j, name in zip(columns, names):
        empty = np.flatnonzero(text[:, j] == "")
        if len(empty):
            raise InputError(f"data {path}: row {numbers[empty[0]]} has no value in column {name!r}; fill in or drop "
                             "missing values first")
    try:
        x = text[:, columns].astype(np.float64)
    except ValueError:
        for j, name in zip(columns, names):
            for i, value in enumerate(text[:, j]):
                try:
                    float(value)
                except ValueError:
                    raise UsageError(f"data {path}: column {name!r} is not numeric (row {numbers[i]}: {value!r}); "
                                     "give --features with the numeric columns to use", param="data") from None
    if not np.isfinite(x).all():
        i, j = np.argwhere(~np.isfinite(x))[0]
        raise InputError(f"data {path}: row {numbers[i]} has {text[i, columns[j]]!r} in column {names[j]!r}; "
                         "give finite numbers")
    values = text[:, header.index(label)].tolist()
    if "" in values:
        raise InputError(f"data {path}: row {numbers[values.index('')]} has no label; give every row a class")
    found = sorted(set(values))
    if classes is None:
        if len(found) < 2:
            raise UsageError(f"data {path}: found {len(found)} class ({', '.join(found)}) in column {label!r}; a "
                             "conditional model needs two or more", param="data")
        classes = found
    other = [v for v in found if v not in classes]
    if other:
        raise InputError(f"data {path}: class {other[0]!r} is not one of the model's classes: {', '.join(classes)}")
    labels = np.array([classes.index(v) for v in values], dtype=np.int64)
    return Table(x, labels, list(classes), names, label)


def limit_rows(table: Table, limits: dict[str, int], seed: int = 0) -> Table:
    """At most ``limits[name]`` rows of each named class (a seeded choice), as ``--class-limit`` does for images."""
    unknown = [n for n in limits if n not in table.classes]
    if unknown:
        raise UsageError(f"class limit: no class {unknown[0]!r}; the classes are {', '.join(table.classes)}",
                         param="class_limit")
    rng = np.random.default_rng(seed)
    keep = np.ones(len(table.labels), dtype=bool)
    for name, n in limits.items():
        check_positive("class_limit", n)
        idx = np.flatnonzero(table.labels == table.classes.index(name))
        keep[rng.permutation(idx)[n:]] = False
    return Table(table.features[keep], table.labels[keep], table.classes, table.feature_names, table.label)


@dataclass
class TabularTrainConfig:
    """Settings of :func:`train_tabular_cvaegan` (the CLI's options, same names); ``class_limit`` and
    ``balance_classes`` as in :class:`~medvae.tasks.oversampling.train.CVAEGANTrainConfig`."""

    data: str = ""
    label: str = "label"
    features: tuple[str, ...] | None = None
    out: Path = Path("medvae-cvaegan.safetensors")
    latent_dim: int = 4
    hidden: tuple[int, ...] = (64, 64)
    beta: float = 1.0
    adv_weight: float = 0.05
    feature_weight: float = 0.05
    adv_warmup: int = 1
    val_fraction: float = 0.1
    class_limit: dict[str, int] = field(default_factory=dict)
    balance_classes: bool = True
    train: TrainConfig = train_defaults(epochs=300, batch_size=64)

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.hidden = tuple(self.hidden)
        self.features = tuple(self.features) if self.features else None
        check_positive("latent_dim", self.latent_dim)
        if not 0 <= self.val_fraction < 1:
            raise UsageError(f"val_fraction must be at least 0 and below 1, got {self.val_fraction}",
                             param="val_fraction")


def build_tabular(config: TabularTrainConfig, num_features: int, num_classes: int):
    from medvae.models import TabularCVAEGAN, TabularCVAEGANConfig

    return TabularCVAEGAN(TabularCVAEGANConfig(
        num_features=num_features, num_classes=num_classes, hidden=config.hidden, latent_dim=config.latent_dim,
        disc_hidden=config.hidden, beta=config.beta, adv_weight=config.adv_weight,
        feature_weight=config.feature_weight, adv_warmup_epochs=config.adv_warmup))


@dataclass
class TableSampler:
    """A trained tabular model with the standardisation it was trained in: :meth:`draw` gives rows in the table's
    units, each feature clipped to the range of the training rows (``low``, ``high``; None: not clipped)."""

    model: object
    mean: np.ndarray
    std: np.ndarray
    low: np.ndarray | None = None
    high: np.ndarray | None = None

    @staticmethod
    def scale_of(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of each column of ``x`` (1 for a constant column)."""
        std = x.std(axis=0)
        return x.mean(axis=0), np.where(std > 1e-12, std, 1.0)

    def draw(self, class_index: int, n: int, seed: int = 0, batch_size: int = 4096) -> np.ndarray:
        """``n`` new rows ``(n, F)`` of class ``class_index`` in the table's units; the same seed, the same rows."""
        import torch

        g = torch.Generator().manual_seed(seed)
        parts = [self.model.draw(torch.full((min(batch_size, n - i),), class_index), generator=g).cpu()
                 for i in range(0, n, batch_size)]
        z = torch.cat(parts).double().numpy() if parts else np.zeros((0, len(self.mean)))
        rows = z * self.std + self.mean
        return rows if self.low is None else np.clip(rows, self.low, self.high)


def fit_tabular(x: np.ndarray, y: np.ndarray, num_classes: int, config: TabularTrainConfig | None = None,
                **overrides) -> TableSampler:
    """Train the tabular conditional VAE-GAN in memory on rows ``x`` ``(N, F)`` with classes ``y`` (rare classes
    repeated per epoch where ``balance_classes``); no file is written. For evaluations that train one per fold."""
    import torch

    from medvae.data.datasets import TensorBatches
    from medvae.tasks.oversampling.train import balanced_indices
    from medvae.train import fit, seed_everything
    from medvae.train.recipe import configure

    config = configure(TabularTrainConfig, config, **overrides)
    seed_everything(config.train.seed)
    mean, std = TableSampler.scale_of(x)
    features = torch.from_numpy((x - mean) / std).float()
    labels = torch.from_numpy(np.asarray(y)).long()
    idx = balanced_indices(labels) if config.balance_classes else torch.arange(len(labels))
    model = build_tabular(config, x.shape[1], num_classes)
    fit(model, TensorBatches({"features": features[idx], "label": labels[idx]}), None, config.train)
    return TableSampler(model.cpu().eval(), mean, std, x.min(axis=0), x.max(axis=0))


@dataclass
class TabularTrainResult:
    model_path: Path
    record: dict
    counts: dict[str, int]
    n_val: int
    skipped: list = field(default_factory=list)


def train_tabular_cvaegan(config: TabularTrainConfig | None = None, **overrides) -> TabularTrainResult | None:
    """Train the tabular conditional VAE-GAN on ``data`` and write its model file and training state (a
    stratified ``val_fraction`` of each class held out for the validation loss)."""
    import torch

    from medvae import checkpoint
    from medvae.data.datasets import TensorBatches
    from medvae.tasks.oversampling.train import balanced_indices, stratified_split
    from medvae.train.recipe import Recipe, configure, changed_options

    config = configure(TabularTrainConfig, config, **overrides)
    recipe = Recipe(config, config.out)
    table = read_table(config.data, config.label, config.features)
    if config.class_limit:
        table = limit_rows(table, {str(k): int(v) for k, v in config.class_limit.items()}, config.train.seed)
    labels = torch.from_numpy(table.labels)
    train_idx, val_idx = stratified_split(labels, config.val_fraction, config.train.seed)
    rows = table.features[train_idx.numpy()]
    mean, std = TableSampler.scale_of(rows)
    x = torch.from_numpy((table.features - mean) / std).float()
    seen = train_idx[balanced_indices(labels[train_idx])] if config.balance_classes else train_idx
    train_data = TensorBatches({"features": x[seen], "label": labels[seen]})
    val_data = TensorBatches({"features": x[val_idx], "label": labels[val_idx]}) if len(val_idx) else None
    counts = dict(zip(table.classes, torch.bincount(labels[train_idx], minlength=len(table.classes)).tolist()))
    model = build_tabular(config, x.shape[1], len(table.classes))
    preprocessing = {"pipeline": "table", "features": table.feature_names, "label": table.label,
                     "classes": table.classes, "mean": mean.tolist(), "std": std.tolist(),
                     "low": rows.min(axis=0).tolist(), "high": rows.max(axis=0).tolist()}
    parts = ["medvae train cvaegan", f"--data {Path(config.data).name}", f"--label {config.label}"]
    if config.class_limit:
        parts.append("--class-limit " + ",".join(f"{k}={v}" for k, v in config.class_limit.items()))
    command = " ".join(parts + changed_options(config, TabularTrainConfig(), ("data", "label", "out",
                                                                              "class_limit")))

    def save(m, record, final):
        training = {"task": "train cvaegan", "data": Path(config.data).name, "class_counts": counts,
                    "train_images": len(train_idx), "val_images": len(val_idx),
                    "balance_classes": config.balance_classes, **record.to_dict(), "command": command}
        checkpoint.save_model(config.out, m, preprocessing=preprocessing, training=training)

    result = recipe.fit(model, train_data, val_data, save)
    if result is None:
        return None
    return TabularTrainResult(config.out, result, counts, len(val_idx))


@dataclass
class TableOversampleResult:
    table: Path  # OUT/synthetic.csv
    manifest: Path | None  # OUT/manifest.csv (with data), else None
    counts: dict[str, int]  # synthetic rows written per class


def oversample_table(model_path, out, info, todo: dict[str, int], *, seed: int = 0, data=None,
                     device: str = "cpu", overwrite: bool = False) -> TableOversampleResult:
    """Draw ``todo`` (class name → rows) from a tabular model and write ``synthetic.csv`` (and ``manifest.csv``
    with ``data``) into ``out`` (see the module's docstring). ``info`` is the model file's
    :class:`~medvae.checkpoint.ModelInfo`, already read."""
    from medvae.checkpoint import load_model
    from medvae.io.atomic import write_bytes

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"out {out} is a file; give a folder for the tables", param="out")
    existing = [out / name for name in (SYNTHETIC_TABLE, MANIFEST) if (out / name).exists()]
    if existing and not overwrite:
        raise OutputExists(existing[0], "oversampled table")
    pre = info.preprocessing
    names, label, classes = pre.get("features"), pre.get("label"), pre.get("classes")
    width = info.config.get("num_features")
    scales = [pre.get(k) for k in ("mean", "std", "low", "high")]
    if not (isinstance(label, str) and isinstance(classes, list) and isinstance(names, list) and len(names) == width
            and all(isinstance(v, list) and len(v) == width and all(isinstance(a, (int, float)) for a in v)
                    for v in scales)):
        raise InputError(f"{model_path}: not a valid medvae model file (its preprocessing lacks the features, "
                         "label, classes or scales a tabular_cvae_gan model needs, one per feature)")
    if "synthetic" in (*names, label):
        raise InputError(f"{model_path}: its table has a column named 'synthetic', the flag oversample adds; "
                         "train on a table without it")
    real = read_table(data, label, tuple(names), classes=classes) if data is not None else None
    model, _ = load_model(model_path, device)
    sampler = TableSampler(model, *(np.asarray(v, dtype=float) for v in scales))
    synthetic = [(sampler.draw(classes.index(name), n, seed * 1000 + classes.index(name)), name)
                 for name, n in todo.items()]
    header = [*names, label, "synthetic"]

    def lines(features, labels, flag):
        return [[*(f"{v:.8g}" for v in row), name, flag] for row, name in zip(features, labels)]

    def csv_bytes(rows):
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows([header, *rows])
        return text.getvalue().encode("utf-8")

    drawn = [line for rows, name in synthetic for line in lines(rows, [name] * len(rows), 1)]
    out.mkdir(parents=True, exist_ok=True)
    write_bytes(out / SYNTHETIC_TABLE, csv_bytes(drawn))
    manifest = out / MANIFEST
    if real is not None:
        write_bytes(manifest, csv_bytes(lines(real.features, [classes[i] for i in real.labels], 0) + drawn))
    elif manifest.exists():  # an earlier run's, which would no longer match synthetic.csv
        manifest.unlink()
    return TableOversampleResult(out / SYNTHETIC_TABLE, manifest if real is not None else None, todo)
