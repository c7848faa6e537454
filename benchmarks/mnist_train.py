"""Training speed of ``medvae demo mnist`` beside a plain PyTorch loop, in one process.

The plain loop is what a tutorial writes: the same 784-256-128-2 network as an ``nn.Module`` with a
sigmoid output and ``F.binary_cross_entropy(reduction="sum")`` + closed-form KL, a ``DataLoader`` over a
``TensorDataset`` (batch 64, shuffled), ``torch.optim.Adam(lr=1e-3)``. medvae runs the demo's own path:
MNIST through the MONAI pipeline into :class:`TensorBatches`, :func:`medvae.train.fit` with the
:class:`MLPVAE`. Rounds alternate between the two so that machine noise hits both alike. Both models are
scored by the same function (:func:`medvae.metrics.negative_elbo`, 10 posterior samples per test image).

medvae runs twice per round: as the demo does by default (``--amp``: on CPUs with native bfloat16 the
MLP's two big matmuls run in bf16) and in float32 throughout (``--no-amp``), the plain loop's precision.

    python benchmarks/mnist_train.py                 # embedded 5,000-digit sample, 10 epochs, 5 rounds
    python benchmarks/mnist_train.py --data DIR      # full MNIST from IDX files
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from medvae.metrics import negative_elbo
from medvae.models import MLPVAE
from medvae.tasks.demo import load_mnist_batches
from medvae.train import TrainConfig, fit, seed_everything


class PlainVAE(nn.Module):
    """The tutorial network, layer for layer the same as medvae's MLPVAE."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(784, 256), nn.Linear(256, 128)
        self.mu, self.logvar = nn.Linear(128, 2), nn.Linear(128, 2)
        self.fc3, self.fc4, self.fc5 = nn.Linear(2, 128), nn.Linear(128, 256), nn.Linear(256, 784)

    def forward(self, x):
        h = F.relu(self.fc2(F.relu(self.fc1(x))))
        mu, logvar = self.mu(h), self.logvar(h)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        return torch.sigmoid(self.fc5(F.relu(self.fc4(F.relu(self.fc3(z)))))), mu, logvar

    def as_medvae(self) -> MLPVAE:
        """Copy the weights into an MLPVAE so both are scored by the same code."""
        m = MLPVAE()
        pairs = [(m.encoder[0][0], self.fc1), (m.encoder[0][2], self.fc2), (m.to_mu, self.mu),
                 (m.to_logvar, self.logvar), (m.decoder[0], self.fc3), (m.decoder[2], self.fc4), (m.decoder[4], self.fc5)]
        for dst, src in pairs:
            dst.load_state_dict(src.state_dict())
        return m


def plain_loop(x_train: torch.Tensor, epochs: int, seed: int) -> tuple[MLPVAE, float]:
    torch.manual_seed(seed)
    model = PlainVAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x_train), batch_size=64, shuffle=True)
    t0 = time.perf_counter()
    for _ in range(epochs):
        for (x,) in loader:
            recon, mu, logvar = model(x)
            bce = F.binary_cross_entropy(recon, x, reduction="sum")
            kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
            loss = (bce + kl) / x.shape[0]
            opt.zero_grad()
            loss.backward()
            opt.step()
    seconds = time.perf_counter() - t0
    return model.as_medvae(), len(x_train) * epochs / seconds


def medvae_loop(train, test, epochs: int, seed: int, amp: bool = True) -> tuple[MLPVAE, float, str]:
    seed_everything(seed)
    model = MLPVAE()
    record = fit(model, train, test, TrainConfig(epochs=epochs, batch_size=64, lr=1e-3, seed=seed, device="cpu",
                                                 progress=False, amp=amp))
    return model, record.samples_per_second, record.amp


def test_neg_elbo(model: MLPVAE, x_test: torch.Tensor) -> float:
    torch.manual_seed(1234)
    model.eval()
    return negative_elbo(model, x_test, samples=10)["neg_elbo"].mean().item()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None, help="folder of MNIST IDX files (default: the embedded sample)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    train, test, source = load_mnist_batches(args.data)
    x_train = train.tensors["image"].flatten(1)  # the plain loop's tensors: (N, 784) in [0, 1]
    x_test = test.tensors["image"]
    print(f"data: {source}; {len(train)} train / {len(test)} test images; {args.epochs} epochs, batch 64, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}")
    medvae_loop(train.subset(640), test, 1, 99)  # warm-up both paths (allocator, kernels)
    plain_loop(x_train[:640], 1, 99)
    amp = medvae_loop(train.subset(64), None, 1, 99)[2]
    names = {True: f"medvae (default; mixed precision: {amp})", False: "medvae --no-amp (float32)"}
    rows: dict[str, list[tuple[float, float]]] = {"plain PyTorch loop": [], names[True]: [], names[False]: []}
    for r in range(args.rounds):
        for use_amp in (True, False):
            model, sps, _ = medvae_loop(train, test, args.epochs, seed=r, amp=use_amp)
            rows[names[use_amp]].append((sps, test_neg_elbo(model, x_test)))
        model, sps = plain_loop(x_train, args.epochs, seed=r)
        rows["plain PyTorch loop"].append((sps, test_neg_elbo(model, x_test)))
    # This machine's speed drifts by tens of percent over seconds: the ratio is taken within each round
    # (the two loops ran back to back) and the median over rounds is reported.
    base = [s for s, _ in rows["plain PyTorch loop"]]
    print(f"\n| loop | samples/s (median of {args.rounds} rounds) | ratio (median of per-round ratios) "
          f"| test -ELBO (nats/image, mean over rounds) | per round (samples/s) |")
    print("| --- | ---: | ---: | ---: | --- |")
    for name, runs in rows.items():
        sps = [s for s, _ in runs]
        ratio = statistics.median(a / b for a, b in zip(sps, base))
        elbo = statistics.mean(e for _, e in runs)
        print(f"| {name} | {statistics.median(sps):,.0f} | {ratio:.2f}x | {elbo:.2f} | {', '.join(f'{s:,.0f}' for s in sps)} |")


if __name__ == "__main__":
    main()
