"""The synthesis model's free bits: each spatial latent channel is charged at least a floor of KL, so a channel
below it gets no gradient toward collapse."""

import pytest
import torch

from medvae.errors import UsageError
from medvae.losses import gaussian_kl, gaussian_kl_elements
from medvae.models import SynthesisConfig, SynthesisModel
from medvae.models.synthesis import free_bits_kl


@pytest.mark.parametrize("shape", [(3, 2, 4, 5), (2, 3, 2, 3, 4)])
def test_without_a_floor_it_is_the_mean_kl_per_image(shape):
    torch.manual_seed(0)
    mu_q, lv_q, mu_p, lv_p = (torch.randn(shape) for _ in range(4))
    assert torch.allclose(free_bits_kl(gaussian_kl_elements(mu_q, lv_q, mu_p, lv_p), 0.0),
                          gaussian_kl(mu_q, lv_q, mu_p, lv_p).mean())


def test_a_channel_below_the_floor_is_charged_the_floor_and_gets_no_gradient():
    shape = (2, 2, 3, 3)  # channel 0 equal to the prior (KL 0), channel 1 far from it (KL 2 per element)
    mu_p, lv_p = torch.zeros(shape), torch.zeros(shape)
    mu_q = torch.zeros(shape)
    mu_q[:, 1] = 2.0
    mu_q.requires_grad_(True)
    lv_q = torch.zeros(shape, requires_grad=True)
    kl = free_bits_kl(gaussian_kl_elements(mu_q, lv_q, mu_p, lv_p), 0.5)
    assert kl.item() == pytest.approx((0.5 + 2.0) * 9)  # positions * (floor for channel 0 + 2 nats for channel 1)
    kl.backward()
    assert mu_q.grad[:, 0].abs().sum() == 0 and lv_q.grad[:, 0].abs().sum() == 0
    assert (mu_q.grad[:, 1] > 0).all()


def test_the_training_loss_uses_the_floor_and_reports_the_plain_kl():
    torch.manual_seed(0)
    batch = {"source": torch.randn(2, 1, 8, 8), "target": torch.randn(2, 1, 8, 8)}
    losses = {}
    for fb in (0.0, 5.0):
        torch.manual_seed(1)
        model = SynthesisModel(SynthesisConfig(in_channels=1, channels=(4, 8), latent_channels=2, free_bits=fb,
                                               gan=False))
        torch.manual_seed(2)
        losses[fb] = model.loss(batch)
    assert torch.allclose(losses[0.0].terms["kl"], losses[5.0].terms["kl"])  # the same model and draw
    # both channels are below 5 nats: charged beta * floor * channels * latent positions / target voxels
    charged = 5.0 * 2 * 16 / 64
    expected = 0.05 * (charged - losses[0.0].terms["kl"].item())
    assert losses[5.0].loss.item() - losses[0.0].loss.item() == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("bad", [dict(free_bits=-0.1), dict(free_bits=0.5, latent_channels=0)])
def test_bad_free_bits_are_refused_naming_the_parameter(bad):
    with pytest.raises(UsageError) as err:
        SynthesisConfig(**{"in_channels": 1, **bad})
    assert err.value.param == "free_bits"
