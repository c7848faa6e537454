"""The reference demo at its defaults must learn what the classic example learns (about 20 s)."""

import json

import numpy as np
import torch

from medvae.checkpoint import load_model
from medvae.tasks import run_mnist_demo
from medvae.tasks.demo import load_mnist_batches


def test_default_demo_learns_a_useful_latent_space(tmp_path):
    result = run_mnist_demo(out=tmp_path, progress=False, nll_images=200, device="cpu")
    t = result.metrics["test"]
    # A 2-D latent MLP VAE on [0, 1] MNIST intensities ends near 167 nats after 10 epochs on 4,000 digits.
    assert t["neg_elbo"] < 172, t
    assert t["nll_importance_sampled"] < t["neg_elbo"]
    assert 2 < t["kl"] < 10  # the latent is used, and not over-used
    losses = json.loads((tmp_path / "metrics.json").read_text())["test_loss"]
    assert losses[-1] < losses[0] - 20
    # Digits form clusters: the latent means of 0s and 1s are far apart relative to their spread.
    model, _ = load_model(tmp_path / "model.safetensors")
    _, test, _ = load_mnist_batches()
    with torch.no_grad():
        mu = model.encode(test.tensors["image"])[0].numpy()
    labels = test.tensors["label"].numpy()
    c0, c1 = mu[labels == 0].mean(0), mu[labels == 1].mean(0)
    within = (np.sqrt(mu[labels == 0].var(0).sum()) + np.sqrt(mu[labels == 1].var(0).sum())) / 2
    assert np.linalg.norm(c0 - c1) > 2 * within  # about 3.3x after training; about 1.2x untrained
