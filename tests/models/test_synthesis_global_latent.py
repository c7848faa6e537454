"""The synthesis model's global latent: a per-image vector whose draws move the whole image together."""

import pytest
import torch

from medvae.errors import UsageError
from medvae.models import SynthesisConfig, SynthesisModel


def _model(spatial_dims=2, global_latent=3):
    torch.manual_seed(0)
    return SynthesisModel(SynthesisConfig(spatial_dims=spatial_dims, in_channels=1, channels=(4, 8),
                                          latent_channels=2, global_latent=global_latent, gan=False))


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_global_latent_shapes_and_a_kl_term(spatial_dims):
    model = _model(spatial_dims)
    shape = (2, 1) + (8,) * spatial_dims
    batch = {"source": torch.randn(shape), "target": torch.randn(shape)}
    prior = model.generator.prior_params(model.generator.features(batch["source"]))
    assert len(prior) == 4 and prior[2].shape == (2, 3)
    out = model.loss(batch)
    assert {"kl", "kl_global", "l1", "scale_nll"} <= set(out.terms)
    out.loss.backward()
    assert model.generator.global_posterior.weight.grad is not None
    draws = model.generator.sample(batch["source"], 3, generator=torch.Generator().manual_seed(1))
    assert draws.shape == (3, 2, 2) + (8,) * spatial_dims


def test_the_global_latent_starts_as_the_plain_unet_and_then_moves_the_whole_image():
    model = _model()
    g = model.generator
    x = torch.randn(1, 1, 8, 8)
    feats = g.features(x)
    z = torch.zeros(1, 2, 4, 4)
    same = g.decode(feats, (z, torch.randn(1, 3)))
    assert torch.allclose(same, g.decode(feats, z))  # FiLM starts at identity
    torch.nn.init.normal_(g.film.weight)
    a, b = g.decode(feats, (z, torch.zeros(1, 3))), g.decode(feats, (z, torch.ones(1, 3)))
    assert not torch.allclose(a, b)


def test_global_latent_needs_a_latent_and_must_not_be_negative():
    with pytest.raises(UsageError, match="global_latent"):
        SynthesisConfig(latent_channels=0, global_latent=2, gan=False)
    with pytest.raises(UsageError, match="global_latent"):
        SynthesisConfig(global_latent=-1)


def test_without_a_global_latent_nothing_changes():
    model = _model(global_latent=0)
    assert not hasattr(model.generator, "film")
    assert len(model.generator.prior_params(model.generator.features(torch.randn(1, 1, 8, 8)))) == 2


def test_a_global_gain_scales_the_whole_mean_map_by_exp_of_its_draw():
    torch.manual_seed(0)
    model = SynthesisModel(SynthesisConfig(in_channels=1, channels=(4, 8), latent_channels=2, global_latent=1,
                                           global_gain=True, gan=False))
    g = model.generator
    feats = g.features(torch.randn(1, 1, 8, 8))
    z = torch.zeros(1, 2, 4, 4)
    base, scaled = g.decode(feats, (z, torch.zeros(1, 1))), g.decode(feats, (z, torch.full((1, 1), 0.5)))
    torch.testing.assert_close(scaled[:, :1], base[:, :1] * torch.exp(torch.tensor(0.5)))
    torch.testing.assert_close(scaled[:, 1:], base[:, 1:])  # the noise scale is not the gain's
    assert not hasattr(g, "film")
    with pytest.raises(UsageError, match="global_gain needs global_latent"):
        SynthesisConfig(global_gain=True)
