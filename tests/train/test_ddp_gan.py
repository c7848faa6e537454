"""A VAE-GAN (and the class-conditional one) under torchrun: two CPU processes (gloo) train it with the generator
through DDP and the discriminator's gradients averaged by hand, and end with the same weights, buffers included,
on both ranks."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

SCRIPT = """
import os, sys, torch
from medvae.data.datasets import TensorBatches
from medvae.models import build_model
from medvae.train.config import TrainConfig
from medvae.train.loop import fit

torch.manual_seed(0)
kind = sys.argv[2]
images = torch.rand(32, 1, 16, 16, generator=torch.Generator().manual_seed(1))
data = {"image": images, "label": torch.arange(32) % 3}
model = build_model(kind, dict(in_shape=(1, 16, 16), channels=(8, 16), strides=(2, 2), latent_dim=4, disc_channels=8,
                               adv_warmup_epochs=1, num_classes=3))
record = fit(model, TensorBatches(data), None,
             TrainConfig(epochs=2, batch_size=8, device="cpu", progress=False, seed=0))
state = {k: v.detach().clone() for k, v in model.state_dict().items()}
torch.save({"state": state, "world_size": record.world_size, "d_loss": [t.get("d_loss") for t in record.train_terms]},
           os.path.join(sys.argv[1], f"rank{os.environ['RANK']}.pt"))
"""


@pytest.mark.parametrize("kind", ["vae_gan", "cvae_gan"])
def test_a_vaegan_trains_under_torchrun_and_the_ranks_stay_in_step(tmp_path, kind):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(script), str(tmp_path), kind], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert a["world_size"] == 2 and all(d is not None for d in a["d_loss"])
    assert a["state"].keys() == b["state"].keys()
    for key in a["state"]:
        assert torch.allclose(a["state"][key].float(), b["state"][key].float(), atol=1e-6), key
    from medvae.models import build_model

    torch.manual_seed(0)
    fresh = build_model(kind, dict(in_shape=(1, 16, 16), channels=(8, 16), strides=(2, 2), latent_dim=4,
                                   disc_channels=8, adv_warmup_epochs=1, num_classes=3)).state_dict()
    moved = [k for k in fresh if k.startswith("discriminator") and fresh[k].is_floating_point()
             and not torch.allclose(fresh[k], a["state"][k])]
    assert moved  # the discriminator trained (and identically on both ranks, above)
