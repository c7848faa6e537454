"""The chest X-ray enhancer (VAE-U-Net) and the lung segmenter (ResUNet++): shapes, configs, learning,
determinism and the model file round trip."""

from __future__ import annotations

import pytest
import torch

from medvae.checkpoint import load_model, save_model
from medvae.errors import UsageError
from medvae.models import REGISTRY, EnhancerConfig, EnhancerModel, SegmenterConfig, SegmenterModel


def _disk(size: int = 32, dims: int = 2) -> torch.Tensor:
    """A centred disk (ball) mask ``(1, 1, *[size] * dims)``, 0/1 float."""
    grid = torch.stack(torch.meshgrid(*[torch.linspace(-1, 1, size)] * dims, indexing="ij"))
    return (grid.square().sum(0) < 0.4).float()[None, None]


def _train(model, batch, steps: int = 30, lr: float = 3e-3) -> tuple[float, float]:
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        out = model.loss(batch)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.loss.item())
    return losses[0], min(losses[-5:])


@pytest.mark.parametrize("dims,size", [(2, 32), (3, 16)])
def test_output_shapes_and_terms(dims, size):
    torch.manual_seed(0)
    x = torch.rand(2, 1, *[size] * dims)
    enhancer = EnhancerModel(EnhancerConfig(spatial_dims=dims))
    out = enhancer(x)
    assert out.image.shape == x.shape
    assert out.mu.shape == out.logvar.shape == (2, 8, *[size // 8] * dims)
    terms = enhancer.loss({"image": x, "target": x.clamp(0.1, 0.9)}).terms
    assert set(terms) == {"l1", "ssim", "kl"} and all(torch.isfinite(t) for t in terms.values())
    segmenter = SegmenterModel(SegmenterConfig(spatial_dims=dims, out_channels=2))
    assert segmenter(x).shape == (2, 2, *[size] * dims)
    label = (torch.rand(2, 2, *[size] * dims) > 0.5).float()
    seg = segmenter.loss({"image": x, "label": label})
    assert set(seg.terms) == {"dice", "bce"} and torch.isfinite(seg.loss)
    assert enhancer.multiple == segmenter.multiple == 8


@pytest.mark.parametrize("bad, word", [
    (dict(spatial_dims=1), "spatial_dims"), (dict(in_channels=0), "in_channels"), (dict(channels=(8,)), "channels"),
    (dict(channels=(8, 0)), "channels"), (dict(channels=(8, 2.5)), "channels"),
    (dict(latent_channels=0), "latent_channels"), (dict(num_res_units=-1), "num_res_units"),
    (dict(norm="layer"), "norm"), (dict(beta=-1), "beta"), (dict(beta=float("nan")), "beta"),
    (dict(ssim_weight=-0.1), "ssim_weight"),
])
def test_enhancer_config_errors_name_the_parameter(bad, word):
    with pytest.raises(UsageError, match=word):
        EnhancerConfig(**bad)


@pytest.mark.parametrize("bad, word", [
    (dict(spatial_dims=4), "spatial_dims"), (dict(in_channels=0), "in_channels"),
    (dict(out_channels=0), "out_channels"), (dict(channels=()), "channels"), (dict(channels=(16, -1)), "channels"),
    (dict(bridge_channels=-2), "bridge_channels"), (dict(aspp_dilations=()), "aspp_dilations"),
    (dict(aspp_dilations=(1, 0)), "aspp_dilations"), (dict(se_reduction=0), "se_reduction"),
    (dict(norm="group"), "norm"), (dict(dice_weight=-1), "dice_weight"), (dict(bce_weight=float("inf")), "bce_weight"),
    (dict(dice_weight=0, bce_weight=0), "both be 0"),
])
def test_segmenter_config_errors_name_the_parameter(bad, word):
    with pytest.raises(UsageError, match=word):
        SegmenterConfig(**bad)


def test_sizes_must_be_multiples():
    model = EnhancerModel(EnhancerConfig(channels=(4, 8, 16)))
    assert model.multiple == 4
    with pytest.raises(UsageError, match="multiples of 4"):
        model.enhance(torch.rand(1, 1, 32, 30))
    with pytest.raises(UsageError, match="multiples of 8"):
        SegmenterModel().predict(torch.rand(1, 1, 20, 32))
    with pytest.raises(UsageError, match="spatial"):
        SegmenterModel()(torch.rand(1, 32, 32))


@pytest.mark.parametrize("norm", ["INSTANCE", "BATCH"])
def test_enhance_is_deterministic_in_range_and_keeps_the_shape(norm):
    torch.manual_seed(0)
    model = EnhancerModel(EnhancerConfig(norm=norm))
    for p in model.head.parameters():  # as if trained: not the identity it starts as
        torch.nn.init.normal_(p, std=0.5)
    model.train()
    for shape in [(1, 1, 32, 32), (2, 1, 48, 64), (1, 1, 24, 40)]:
        x = torch.rand(shape)
        first = model.enhance(x)
        assert first.shape == x.shape and 0 <= first.min() and first.max() <= 1
        assert torch.equal(first, model.enhance(x)) and not torch.equal(first, x)
    assert model.training  # enhance() leaves the mode as it found it
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.inference_mode():
        again = model.enhance(torch.rand(1, 1, 16, 16))
    assert again.shape == (1, 1, 16, 16)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())  # batch norm's statistics too


def test_kl_is_nonnegative_and_zero_at_the_prior():
    torch.manual_seed(1)
    model = EnhancerModel(EnhancerConfig(channels=(8, 16)))
    for _ in range(3):
        x = torch.rand(2, 1, 16, 16)
        assert model.loss({"image": x, "target": x}).terms["kl"] >= 0
    for p in model.to_posterior.parameters():
        torch.nn.init.zeros_(p)  # mu = 0, logvar = 0: q is N(0, I)
    assert model.loss({"image": x, "target": x}).terms["kl"] == 0


def test_enhancer_learns_to_denoise():
    torch.manual_seed(0)
    clean = (0.2 + 0.6 * _disk(32)).repeat(4, 1, 1, 1)
    clean = clean * torch.linspace(0.7, 1.0, 32)  # a gradient across, so it is not a binary image
    noisy = (clean + 0.1 * torch.randn_like(clean)).clamp(0, 1)
    model = EnhancerModel(EnhancerConfig(channels=(16, 32, 64)))
    before = (noisy - clean).abs().mean()
    first, last = _train(model, {"image": noisy, "target": clean})
    assert last < 0.3 * first, (first, last)  # about 0.06 over seeds 0-5
    after = (model.enhance(noisy) - clean).abs().mean()
    assert after < 0.5 * before, (before.item(), after.item())  # about 0.1: far better than doing nothing


def test_segmenter_learns_a_disk_and_predicts_probabilities():
    torch.manual_seed(0)
    label = _disk(32).repeat(4, 1, 1, 1)
    image = (0.3 + 0.4 * label + 0.1 * torch.randn_like(label)).clamp(0, 1)
    model = SegmenterModel(SegmenterConfig(channels=(8, 16, 32)))
    first, last = _train(model, {"image": image, "label": label}, lr=1e-2)
    assert last < 0.6 * first, (first, last)  # 0.18-0.44 over seeds 0-5
    prob = model.predict(image)
    assert prob.shape == label.shape and 0 <= prob.min() and prob.max() <= 1
    dice = 2 * ((prob > 0.5) * label).sum() / ((prob > 0.5).sum() + label.sum())
    assert dice > 0.8, dice  # 0.93-0.98 over seeds 0-5


@pytest.mark.parametrize("cls,config", [(EnhancerModel, EnhancerConfig(channels=(8, 16, 32))),
                                        (EnhancerModel, EnhancerConfig(channels=(8, 16, 32), norm="batch")),
                                        (SegmenterModel, SegmenterConfig(channels=(8, 16, 32), out_channels=2))])
def test_model_file_round_trip(tmp_path, cls, config):
    torch.manual_seed(0)
    model = cls(config)
    assert REGISTRY[cls.kind] == (cls, type(config))
    model.train()
    with torch.no_grad():
        for _ in range(2):  # move batch norm's running statistics away from their initial values
            model(torch.rand(2, 1, 32, 32))
    path = save_model(tmp_path / "m.safetensors", model)
    loaded, info = load_model(path)
    assert info.kind == cls.kind and type(loaded) is cls and loaded.config == model.config
    x = torch.rand(1, 1, 32, 32)
    model.eval()
    apply = "enhance" if cls is EnhancerModel else "predict"
    assert torch.equal(getattr(model, apply)(x), getattr(loaded, apply)(x))


def test_parameter_counts_are_small():
    for model in (EnhancerModel(), SegmenterModel()):
        n = sum(p.numel() for p in model.parameters())
        print(f"{model.kind}: {n:,} parameters at the default config")
        assert n < 2_500_000
