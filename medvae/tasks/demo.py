"""``medvae demo mnist``: the reference VAE example, end to end.

Data (IDX files, a download, or the embedded sample) -> MONAI pipeline -> the one training loop ->
model file -> figures and metrics. Everything lands in ``config.out``.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medvae.errors import UsageError, check_positive
from medvae.train.config import TrainConfig, train_defaults

MODEL_CHOICES = ("mlp", "conv")


@dataclass
class MnistDemoConfig:
    """Args:
    out: output folder.
    data: folder of MNIST IDX files (None: the embedded 5,000-digit sample, or ``download``).
    download: fetch MNIST from the standard mirrors into ``data`` (default ``~/.cache/medvae/mnist``).
    model: ``"mlp"`` (the reference 784-256-128 network) or ``"conv"`` (a convolutional VAE).
    hidden: MLP layer widths.
    latent_dim: size of z (figures use its first two dimensions, the others held at 0).
    point: latent point decoded into ``sample.png``.
    grid_size: images per side of ``manifold.png``.
    grid_range: the manifold covers ``[-grid_range, grid_range]^2``.
    nll_k: importance samples per image for the NLL estimate.
    nll_images: test images used for the NLL estimate (None: all).
    limit: use at most this many images of each split (quick runs).
    train: the training loop's settings (epochs, batch size, Adam's rate, seed, device, ...); see
        :class:`medvae.train.TrainConfig`.
    """

    out: Path = Path("medvae-mnist")
    data: Path | None = None
    download: bool = False
    model: str = "mlp"
    hidden: tuple[int, ...] = (256, 128)
    latent_dim: int = 2
    point: tuple[float, ...] = (-3.0, 1.0)
    grid_size: int = 15
    grid_range: float = 3.0
    nll_k: int = 1000
    nll_images: int | None = None
    limit: int | None = None
    train: TrainConfig = train_defaults(epochs=10, batch_size=64)

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.data = Path(self.data) if self.data is not None else None
        self.hidden, self.point = tuple(self.hidden), tuple(float(p) for p in self.point)
        if self.model not in MODEL_CHOICES:
            raise UsageError(f"model must be one of {', '.join(MODEL_CHOICES)}, got {self.model!r}", param="model")
        for name in ("latent_dim", "grid_size", "nll_k"):
            check_positive(name, getattr(self, name))
        check_positive("grid_range", self.grid_range, integer=False)
        for name in ("nll_images", "limit"):
            if getattr(self, name) is not None:
                check_positive(name, getattr(self, name))
        if self.latent_dim < 2:
            raise UsageError(f"latent_dim must be at least 2 for the demo's 2-D figures, got {self.latent_dim}", param="latent_dim")
        if len(self.point) != 2:
            raise UsageError(f"point must be two numbers 'x,y' (a point in the first two latent dims), got {self.point}", param="point")
        if self.out.exists() and not self.out.is_dir():
            raise UsageError(f"out {self.out} exists and is not a folder; pass a folder for the outputs", param="out")


@dataclass
class MnistDemoResult:
    """``metrics`` as written to metrics.json and the path of every file written (rank 0 only)."""

    out: Path
    metrics: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)


def _build_model(config: MnistDemoConfig):
    from medvae.models import ConvVAE, ConvVAEConfig, MLPVAE, MLPVAEConfig

    if config.model == "mlp":
        return MLPVAE(MLPVAEConfig(in_shape=(1, 28, 28), hidden=config.hidden, latent_dim=config.latent_dim))
    return ConvVAE(ConvVAEConfig(spatial_dims=2, in_shape=(1, 28, 28), channels=(32, 64), strides=(2, 2),
                                 latent_dim=config.latent_dim))


def load_mnist_batches(data=None, download: bool = False, limit: int | None = None, announce: bool = False):
    """MNIST through the MONAI pipeline into memory: ``(train, test, source)`` as :class:`TensorBatches`.

    ``announce``: once the files are found, say so before MONAI's import and transforms (several seconds)."""
    from medvae.data.mnist import load_mnist

    mnist = load_mnist(data, download=download)
    if announce:
        from medvae.train.report import note

        note("reading the MNIST digits through the MONAI pipeline")
    from medvae.data.datasets import TensorBatches
    from medvae.data.transforms import mnist_transforms

    transform = mnist_transforms()

    def prepared(images, labels) -> TensorBatches:  # (N, 28, 28) uint8, (N,): the whole stack at once
        n = len(images) if limit is None else min(limit, len(images))
        return TensorBatches(transform({"image": images[:n, None], "label": labels[:n]}))

    train = prepared(mnist.train_images, mnist.train_labels)
    return train, prepared(mnist.test_images, mnist.test_labels), mnist.source


def run_mnist_demo(config: MnistDemoConfig | None = None, **overrides) -> MnistDemoResult | None:
    """Train the demo VAE and write its model, figures and metrics to ``config.out``.

    Returns the result on the process that writes files (rank 0), None on the other ranks of a
    ``torchrun`` job.
    """
    from medvae import checkpoint, train
    from medvae.data.transforms import mnist_preprocessing
    from medvae.train.recipe import Recipe, configure

    config = configure(MnistDemoConfig, config, **overrides)
    out = config.out
    recipe = Recipe(config, out / "model.safetensors", state_path=out / "train_state.pt")
    train_data, test_data, source = load_mnist_batches(config.data, config.download, config.limit,
                                                       announce=config.train.progress)
    train.seed_everything(config.train.seed)  # the model's initial weights do not depend on the data read
    model = _build_model(config)
    if train.is_main_process():
        out.mkdir(parents=True, exist_ok=True)
    training_meta: dict[str, Any] = {"data": source, "train_images": len(train_data), "test_images": len(test_data),
                                     "task": "demo mnist", "demo_config": _jsonable(dataclasses.asdict(config))}

    def save(m, record, final) -> None:
        checkpoint.save_model(out / "model.safetensors", m, preprocessing=mnist_preprocessing(),
                              training={**training_meta, **record.to_dict()})

    record = recipe.fit(model, train_data, test_data, save)
    if record is None:
        return None
    metrics = _evaluate_and_draw(model, train_data, test_data, record, config)
    metrics.update(data=source, train_images=len(train_data), test_images=len(test_data),
                   seconds=round(time.perf_counter() - recipe.started, 3))
    from medvae.io.atomic import write_json

    write_json(out / "metrics.json", metrics)
    files = {name: out / name for name in
             ("latent.png", "sample.png", "manifold.png", "loss.png", "model.safetensors", "metrics.json")}
    return MnistDemoResult(out=out, metrics=metrics, files=files)


def _evaluate_and_draw(model, train_data, test_data, record, config: MnistDemoConfig) -> dict[str, Any]:
    import numpy as np
    import torch

    from medvae import viz
    from medvae.metrics import importance_sampled_nll, negative_elbo
    from medvae.errors import count
    from medvae.train.report import note

    out = config.out
    device = next(model.parameters()).device
    model.eval()
    torch.manual_seed(config.train.seed)
    x = test_data.tensors["image"].to(device)
    labels = test_data.tensors["label"].numpy()
    with torch.no_grad():
        elbo = {k: [] for k in ("neg_elbo", "recon", "kl")}
        mus = []
        for batch in test_data.batches(1000):
            xb = batch["image"].to(device)
            for k, v in negative_elbo(model, xb, samples=10).items():
                elbo[k].append(v)
            mus.append(model.encode(xb)[0])
        elbo = {k: torch.cat(v).mean().item() for k, v in elbo.items()}
        n_nll = len(x) if config.nll_images is None else min(config.nll_images, len(x))
        note(f"estimating the NLL of {count(n_nll, 'test image')} with "
             f"{count(config.nll_k, 'importance sample')} each")
        nll = importance_sampled_nll(model, x[:n_nll], k=config.nll_k).mean().item()
        mu = torch.cat(mus).cpu().numpy()

        def latent(points: np.ndarray) -> torch.Tensor:  # (N, 2) -> (N, L), other dims at 0
            z = torch.zeros(len(points), model.latent_dim)
            z[:, :2] = torch.as_tensor(points, dtype=torch.float32)
            return z.to(device)

        sample = model.generate(latent(np.array([config.point])))[0, 0].cpu().numpy()
        g, r = config.grid_size, config.grid_range
        axis = np.linspace(-r, r, g)
        grid = np.array([(zx, zy) for zy in axis[::-1] for zx in axis])  # row 0 = top = largest z[1]
        images = model.generate(latent(grid))[:, 0].cpu().numpy().reshape(g, g, 28, 28)

    viz.latent_scatter(mu[:, :2], labels, out / "latent.png",
                       title=f"test-set latent means ({len(mu)} digits, {config.model} VAE)")
    px, py = config.point
    viz.single_image(sample, out / "sample.png", title=f"decoded at z = ({px:g}, {py:g})")
    viz.manifold(images, (-r, r), out / "manifold.png", title=f"decoded {g}x{g} grid over [-{r:g}, {r:g}]^2")
    viz.loss_curve(record["train_loss"], record["val_loss"], out / "loss.png", ylabel="negative ELBO (nats / image)")
    return {
        "model": model.kind,
        "units": "nats per image",
        "test": {**elbo, "nll_importance_sampled": nll, "nll_k": config.nll_k, "nll_images": n_nll,
                 "elbo_posterior_samples": 10},
        "epochs": record["epochs"],
        "batch_size": record["batch_size"],
        "lr": record["lr"],
        "seed": record["seed"],
        "device": record["device"],
        "amp": record["amp"],
        "world_size": record["world_size"],
        "train_seconds": round(record["train_seconds"], 3),
        "samples_per_second": round(record["samples_per_second"], 1),
        "train_loss": record["train_loss"],
        "test_loss": record["val_loss"],
    }


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in d.items()}
