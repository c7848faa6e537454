"""Lung segmentation with ResUNet++ (Jha et al. 2019), built from MONAI blocks.

The layout follows the paper (and its authors' Keras code)::

    stem (residual unit, channels[0]) -> SE
    residual unit, stride 2 (channels[1]) -> SE   ... one per level, down to channels[-1]
    ASPP bridge (bridge_channels; dilations 1, 6, 12, 18)
    per level, deepest first: attention gate (the pooled skip guides the decoder features) -> upsample
        -> concatenate the skip -> residual unit (channels of the level below)
    ASPP (channels[0]) -> 1×1 convolution -> logits

Blocks: ``ResidualUnit`` (two convolutions, a shortcut projection where the shape changes),
``ChannelSELayer`` (squeeze-and-excitation, reduction 8), ``SimpleASPP`` (its four dilated branches are
concatenated and mixed by a 1×1 convolution) and the Attention U-Net's ``AttentionBlock``. That block
normalises with batch norm whatever ``norm`` says (MONAI hard-codes it); it is used as the paper does: its
gate ``g`` is the skip max-pooled to the decoder's resolution and it weights the decoder features ``x``.

Outputs are independent sigmoids per channel (multi-label), so overlapping structures such as the JSRT
lungs, heart and clavicles can share pixels. Loss: ``dice_weight * Dice + bce_weight * BCE`` on the logits.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medvae.errors import UsageError
from medvae.models.base import LossOutput, global_sum
from medvae.models.blocks import check_size, conv1x1, encoder, max_pool, monai_norm, residual_unit
from medvae.models.unet_config import check_norm, check_weights


@dataclass
class SegmenterConfig:
    """Args:
    spatial_dims: 2 (films) or 3 (volumes).
    in_channels: image channels.
    out_channels: structures segmented, one sigmoid each.
    channels: feature channels per level; the input is halved ``len(channels) - 1`` times, so spatial
        sizes must be multiples of :attr:`multiple` (``2 ** (len(channels) - 1)``).
    bridge_channels: channels of the ASPP bridge; 0 means twice ``channels[-1]`` (the paper's 256).
    aspp_dilations: one ASPP branch (3×3 convolution) per dilation.
    se_reduction: squeeze-and-excitation reduction ratio (capped at the channel count).
    norm: ``"BATCH"`` (the paper's), ``"INSTANCE"`` or ``"NONE"``.
    dice_weight, bce_weight: weights of the soft Dice loss (over the batch) and binary cross-entropy.
    """

    spatial_dims: int = 2
    in_channels: int = 1
    out_channels: int = 1
    channels: tuple[int, ...] = (16, 32, 64, 128)
    bridge_channels: int = 0
    aspp_dilations: tuple[int, ...] = (1, 6, 12, 18)
    se_reduction: int = 8
    norm: str = "BATCH"
    dice_weight: float = 1.0
    bce_weight: float = 1.0

    def __post_init__(self) -> None:
        self.channels, self.aspp_dilations = tuple(self.channels), tuple(self.aspp_dilations)
        self.norm = str(self.norm).upper()
        if self.spatial_dims not in (2, 3):
            raise UsageError(f"spatial_dims must be 2 or 3, got {self.spatial_dims}", param="spatial_dims")
        if self.in_channels < 1 or self.out_channels < 1:
            raise UsageError(f"in_channels and out_channels must be at least 1, got {self.in_channels} and "
                             f"{self.out_channels}", param="in_channels")
        if len(self.channels) < 2 or any(int(c) != c or c < 1 for c in self.channels):
            raise UsageError(f"channels must list at least 2 positive integers, got {self.channels}", param="channels")
        if self.bridge_channels < 0:
            raise UsageError(f"bridge_channels must be 0 (twice the last channels) or more, got {self.bridge_channels}", param="bridge_channels")
        if not self.aspp_dilations or any(int(d) != d or d < 1 for d in self.aspp_dilations):
            raise UsageError(f"aspp_dilations must list positive integers, got {self.aspp_dilations}", param="aspp_dilations")
        if self.se_reduction < 1:
            raise UsageError(f"se_reduction must be at least 1, got {self.se_reduction}", param="se_reduction")
        check_norm(self.norm)
        check_weights(self, "dice_weight", "bce_weight")
        if self.dice_weight == self.bce_weight == 0:
            raise UsageError("dice_weight and bce_weight cannot both be 0", param="dice_weight")

    @property
    def multiple(self) -> int:
        """Spatial sizes must be multiples of this."""
        return 2 ** (len(self.channels) - 1)


class SegmenterModel(nn.Module):
    """ResUNet++ from an image ``(B, in_channels, *spatial)`` to logits ``(B, out_channels, *spatial)``.

    Batches are ``{"image": (B, in_channels, *spatial) in [0, 1], "label": (B, out_channels, *spatial) 0/1}``.

    Args:
        config: levels, ASPP, squeeze-and-excitation and loss weights; see :class:`SegmenterConfig`.
    """

    kind = "segmenter"

    def __init__(self, config: SegmenterConfig | None = None) -> None:
        from monai.networks.blocks import ChannelSELayer, SimpleASPP
        from monai.networks.nets.attentionunet import AttentionBlock

        super().__init__()
        self.config = c = config or SegmenterConfig()
        ch, sd, norm = c.channels, c.spatial_dims, monai_norm(c.norm)
        n = len(c.aspp_dilations)
        res = partial(residual_unit, sd, subunits=2, norm=norm, act="RELU")

        def aspp(cin: int, cout: int) -> tuple[nn.Module, int]:  # SimpleASPP gives n * (cout // n) channels
            k = max(1, cout // n)
            return SimpleASPP(sd, cin, k, kernel_sizes=(3,) * n, dilations=c.aspp_dilations, norm_type=norm,
                              acti_type="RELU"), n * k

        self.down = encoder(res, c.in_channels, ch)
        self.se = nn.ModuleList([ChannelSELayer(sd, k, r=min(c.se_reduction, k)) for k in ch])
        self.bridge, width = aspp(ch[-1], c.bridge_channels or 2 * ch[-1])
        self.pool = max_pool(sd, 2)
        self.gates, self.merge = nn.ModuleList(), nn.ModuleList()
        for j in range(len(ch) - 2, -1, -1):  # skip levels, deepest first; the decoder output has ch[j + 1]
            self.gates.append(AttentionBlock(sd, f_int=ch[j], f_g=ch[j], f_l=width))
            self.merge.append(res(width + ch[j], ch[j + 1]))
            width = ch[j + 1]
        self.out_aspp, width = aspp(width, ch[0])
        self.head = conv1x1(sd, width, c.out_channels)

    @property
    def multiple(self) -> int:
        """Spatial sizes must be multiples of this."""
        return self.config.multiple

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(B, out_channels, *spatial)`` for ``x`` ``(B, in_channels, *spatial)``."""
        check_size(x, self.config.spatial_dims, self.multiple)
        skips = []
        h = x
        for block, se in zip(self.down, self.se):  # (B, ch[i], *spatial / 2**i)
            h = se(block(h))
            skips.append(h)
        h = self.bridge(h)  # (B, bridge, *bottleneck)
        for gate, merge, skip in zip(self.gates, self.merge, reversed(skips[:-1])):
            h = gate(self.pool(skip), h)  # the decoder features, weighted by attention from the skip
            h = F.interpolate(h, scale_factor=2, mode="nearest")  # (B, width, *skip's spatial)
            h = merge(torch.cat([h, skip], dim=1))  # (B, ch[j + 1], *skip's spatial)
        return self.head(self.out_aspp(h))

    @torch.no_grad()
    def predict(self, x: Tensor) -> Tensor:
        """Probabilities ``(B, out_channels, *spatial)`` in [0, 1] (eval-mode normalisation)."""
        was_training = self.training
        self.eval()
        try:
            return torch.sigmoid(self(x))
        finally:
            self.train(was_training)

    @staticmethod
    def dice(logits: Tensor, label: Tensor) -> Tensor:
        """MONAI's ``DiceLoss(sigmoid=True, batch=True)``: overlap and sizes summed over the batch and the pixels,
        per channel, then averaged; under ``torchrun`` summed over the global batch (``global_sum``)."""
        p, dims = torch.sigmoid(logits.float()), [0, *range(2, logits.ndim)]
        overlap, size = global_sum(torch.stack([(p * label).sum(dims), p.sum(dims) + label.sum(dims)]))
        return (1 - (2 * overlap + 1e-5) / (size + 1e-5)).mean()

    def loss(self, batch: dict[str, Tensor]) -> LossOutput:
        logits, label = self(batch["image"]), batch["label"].to(batch["image"].dtype)
        dice = self.dice(logits, label)
        bce = F.binary_cross_entropy_with_logits(logits, label)
        total = self.config.dice_weight * dice + self.config.bce_weight * bce
        return LossOutput(total, {"dice": dice.detach(), "bce": bce.detach()})
