"""The parts the models share: the U-Net block builders (2-D and 3-D), the config checks, the warm-up ramp,
and the shipped weights loading into the models those parts build."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from torch import nn

from medvae.checkpoint import load_model
from medvae.errors import UsageError
from medvae.models import VAEGAN, ConvVAE, ConvVAEConfig, SynthesisConfig, SynthesisModel, VAEGANConfig
from medvae.models.blocks import (check_size, conv1x1, decoder, encoder, max_pool, monai_norm, residual_unit,
                                  up_convolution)
from medvae.models.unet_config import NORMS, UNetConfig, check_norm, check_weights
from medvae.models.warmup import warmup
from medvae.pretrained import packaged_model


# ---------------------------------------------------------------- blocks
@pytest.mark.parametrize("dims", [2, 3])
def test_block_builders_give_monai_blocks_of_the_right_shape(dims):
    from monai.networks.blocks import Convolution, ResidualUnit

    x = torch.rand(2, 3, *[8] * dims)
    unit = residual_unit(dims, 3, 5, strides=2, subunits=3, norm="INSTANCE", act="RELU")
    assert isinstance(unit, ResidualUnit) and len(unit.conv) == 3
    assert unit(x).shape == (2, 5, *[4] * dims)
    up = up_convolution(dims, 5, 3, norm=None)
    assert isinstance(up, Convolution) and up(unit(x)).shape == x.shape
    head = conv1x1(dims, 3, 1)
    assert type(head) is (nn.Conv2d, nn.Conv3d)[dims - 2] and head.kernel_size == (1,) * dims
    assert type(max_pool(dims)) is (nn.MaxPool2d, nn.MaxPool3d)[dims - 2]
    assert max_pool(dims)(x).shape == (2, 3, *[4] * dims)


@pytest.mark.parametrize("dims", [2, 3])
def test_encoder_and_decoder_lay_out_the_levels(dims):
    torch.manual_seed(0)
    channels = (4, 8, 16)
    res = partial(residual_unit, dims, subunits=2, norm=monai_norm("NONE"))
    down = encoder(res, 1, channels)
    up, merge = decoder(dims, res, channels, norm=None)
    assert len(down) == 3 and len(up) == len(merge) == 2
    h, feats = torch.rand(1, 1, *[8] * dims), []
    for block in down:
        h = block(h)
        feats.append(h)
    assert [f.shape[1:] for f in feats] == [(c, *[8 // 2**i] * dims) for i, c in enumerate(channels)]
    for u, m, skip in zip(up, merge, reversed(feats[:-1])):
        h = m(torch.cat([u(h), skip], dim=1))
    assert h.shape == (1, channels[0], *[8] * dims)
    # the keys of MONAI's blocks, as the shipped weights have them
    assert "0.conv.unit0.conv.weight" in down.state_dict() and "1.residual.weight" in down.state_dict()
    assert list(up.state_dict()) == ["0.conv.weight", "0.conv.bias", "1.conv.weight", "1.conv.bias"]


def test_norm_names_and_size_checks():
    assert monai_norm("NONE") is None and monai_norm("BATCH") == "BATCH"
    assert NORMS == ("BATCH", "INSTANCE", "NONE")
    check_norm("INSTANCE")
    with pytest.raises(UsageError, match="norm must be one of BATCH, INSTANCE, NONE, got 'LAYER'"):
        check_norm("LAYER")
    check_size(torch.zeros(1, 1, 16, 8), 2, 8)
    with pytest.raises(UsageError, match="multiples of 8"):
        check_size(torch.zeros(1, 1, 16, 12), 2, 8)
    with pytest.raises(UsageError, match="3 spatial sizes"):
        check_size(torch.zeros(1, 1, 16, 16), 3, 8)


def test_unet_config_and_weight_checks():
    assert UNetConfig().multiple == 8 and UNetConfig(channels=(4, 8)).multiple == 2
    good = SynthesisConfig()
    check_weights(good, "beta", "adv_weight")
    good.beta = float("inf")
    with pytest.raises(UsageError, match="beta must be a finite number, 0 or more, got inf"):
        check_weights(good, "adv_weight", "beta")


# ---------------------------------------------------------------- the warm-up ramp
def test_warmup_ramps_linearly_to_one():
    assert [warmup(e, 4) for e in range(6)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    assert [warmup(e, 0) for e in range(3)] == [1.0, 1.0, 1.0]
    assert warmup(3, -1) == 1.0 and warmup(1, 3) == 1 / 3


@pytest.mark.parametrize("epochs", [0, 1, 3])
def test_every_ramp_in_the_models_is_the_warmup(epochs):
    small = dict(in_shape=(1, 8, 8), channels=(4,), strides=(2,))
    vae = ConvVAE(ConvVAEConfig(beta=0.5, kl_warmup_epochs=epochs, **small))
    gan = VAEGAN(VAEGANConfig(beta=0.5, kl_warmup_epochs=epochs, adv_warmup_epochs=epochs, **small))
    synthesis = SynthesisModel(SynthesisConfig(channels=(4, 8), adv_warmup_epochs=epochs))
    for epoch in range(5):
        if epoch:
            for model in (vae, gan, synthesis):
                model.set_epoch(epoch)
        kl = 0.5 if epochs <= 0 else 0.5 * min(1.0, (epoch + 1) / epochs)  # the KL weight is one epoch ahead
        adv = 1.0 if epochs <= 0 else min(1.0, epoch / epochs)  # the adversarial terms start at 0
        assert vae.kl_weight == gan.generator.kl_weight == kl == 0.5 * warmup(epoch + 1, epochs)
        assert gan.adv_scale == synthesis.adv_scale == adv == warmup(epoch, epochs)


# ---------------------------------------------------------------- the shipped weights fit the built models
@pytest.mark.parametrize("kind", ["enhancer", "segmenter"])
def test_shipped_weights_load_strictly(kind):
    model, info = load_model(packaged_model(kind))  # load_state_dict(strict=True): every key matches
    assert info.kind == kind and not model.training


@pytest.mark.parametrize("shape", [(4, 1, 16, 16), (2, 2, 8, 8, 8)])
def test_the_segmenters_dice_is_monais_batch_dice(shape):
    from monai.losses import DiceLoss

    from medvae.models.resunetpp import SegmenterModel

    generator = torch.Generator().manual_seed(0)
    logits, label = torch.randn(shape, generator=generator), (torch.rand(shape, generator=generator) > 0.5).float()
    assert torch.allclose(SegmenterModel.dice(logits, label), DiceLoss(sigmoid=True, batch=True)(logits, label))
