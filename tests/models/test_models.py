import pytest
import torch

from medvae.models import REGISTRY, ConvVAE, ConvVAEConfig, MLPVAE, MLPVAEConfig, build_model


def test_reference_mlp_has_exactly_the_demo_layers():
    m = MLPVAE()
    linears = [(l.in_features, l.out_features) for l in m.modules() if isinstance(l, torch.nn.Linear)]
    assert linears == [(784, 256), (256, 128), (128, 2), (128, 2), (2, 128), (128, 256), (256, 784)]


@pytest.mark.parametrize(
    "model",
    [
        MLPVAE(MLPVAEConfig()),
        MLPVAE(MLPVAEConfig(in_shape=(2, 8, 8), hidden=(32,), latent_dim=5)),
        ConvVAE(ConvVAEConfig(spatial_dims=2, in_shape=(1, 28, 28), latent_dim=3)),
        ConvVAE(ConvVAEConfig(spatial_dims=3, in_shape=(1, 16, 16, 16), channels=(4, 8), latent_dim=4)),
    ],
    ids=["mlp", "mlp-multichannel", "conv2d", "conv3d"],
)
def test_shapes(model):
    shape = model.config.in_shape
    x = torch.rand(3, *shape)
    out = model(x)
    assert out.logits.shape == (3, *shape)
    assert out.mu.shape == out.logvar.shape == out.z.shape == (3, model.latent_dim)
    assert model.generate(torch.zeros(2, model.latent_dim)).shape == (2, *shape)
    loss = model.loss({"image": x})
    assert loss.loss.ndim == 0 and set(loss.terms) == {"recon", "kl"}


@pytest.mark.parametrize("make", [lambda: MLPVAE(), lambda: ConvVAE()], ids=["mlp", "conv"])
def test_gradients_reach_the_encoder_through_the_reparametrisation(make, image_batch):
    model = make()
    model.zero_grad()
    out = model(image_batch)
    # Only the reconstruction term: the KL alone would also reach the encoder, without using z.
    from medvae.losses import bernoulli_nll

    bernoulli_nll(out.logits, image_batch).mean().backward()
    enc = [p for n, p in model.named_parameters() if "decode" not in n and "to_" not in n][0]
    heads = [p for n, p in model.named_parameters() if n.endswith(("to_logvar.weight", "logvar.weight"))]
    assert enc.grad is not None and enc.grad.abs().sum() > 0
    assert heads and heads[0].grad.abs().sum() > 0  # the variance head gets gradient only through sigma*eps


@pytest.mark.parametrize("make", [lambda: MLPVAE(), lambda: ConvVAE()], ids=["mlp", "conv"])
def test_one_adam_step_lowers_the_loss_on_a_fixed_batch(make, image_batch):
    model = make()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def loss():
        torch.manual_seed(5)  # same eps each time
        return model.loss({"image": image_batch}).loss

    before = loss()
    opt.zero_grad()
    before.backward()
    opt.step()
    assert loss().item() < before.item()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"hidden": ()}, "hidden"),
        ({"hidden": (0, 3)}, "hidden"),
        ({"latent_dim": 0}, "latent_dim"),
        ({"in_shape": (1, 0, 28)}, "in_shape"),
    ],
)
def test_mlp_config_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MLPVAEConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"spatial_dims": 4}, "spatial_dims"),
        ({"spatial_dims": 3, "in_shape": (1, 28, 28)}, "in_shape"),
        ({"channels": (8, 16), "strides": (2,)}, "same"),
        ({"latent_dim": -1}, "latent_dim"),
    ],
)
def test_conv_config_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ConvVAEConfig(**kwargs)


def test_registry_rebuilds_every_kind():
    for kind, (cls, config_cls) in REGISTRY.items():
        assert cls.kind == kind
        assert isinstance(build_model(kind, {}), cls)
    with pytest.raises(Exception, match="unknown model kind"):
        build_model("nope", {})
