"""The convolutional building blocks the U-Net-style models share (enhancer, segmenter, synthesis).

Each builder returns MONAI's or torch's own module, chosen through MONAI's blocks and layer factories:
``ResidualUnit`` for a residual block, a transposed ``Convolution`` (stride 2, 3×3) to climb a level,
``Conv``/``Pool`` for the 1×1 heads and max pooling. :func:`encoder` and :func:`decoder` lay out a U-Net's
levels (one block per level, stride 2 after the first; per level on the way up a transposed convolution
and a block merging the skip). A model's state-dict keys are therefore those of the MONAI blocks it
nests, as if it had built them itself. :func:`check_size` is the shape check of their inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor, nn

from medvae.errors import UsageError

#: ``block(in_channels, out_channels, strides=1)``: how :func:`encoder` and :func:`decoder` build a block
Block = Callable[..., nn.Module]


def monai_norm(norm: str) -> str | None:
    """MONAI's normalisation argument for a config's ``norm`` name: ``"NONE"`` is None (no layer)."""
    return None if norm == "NONE" else norm


def residual_unit(spatial_dims: int, in_channels: int, out_channels: int, strides: int = 1, *,
                  subunits: int = 2, norm: str | None = "INSTANCE", act: str = "LEAKYRELU") -> nn.Module:
    """MONAI's ``ResidualUnit``: ``subunits`` convolutions (3×3, the first with ``strides``), each with
    ``norm`` (passed to MONAI as it is; None for none) and ``act``, and a projected shortcut where the
    shape changes."""
    from monai.networks.blocks import ResidualUnit

    return ResidualUnit(spatial_dims, in_channels, out_channels, strides=strides, subunits=subunits,
                        norm=norm, act=act)


def up_convolution(spatial_dims: int, in_channels: int, out_channels: int, *, norm: str | None,
                   act: str = "LEAKYRELU") -> nn.Module:
    """MONAI's transposed ``Convolution`` (3×3, stride 2) with ``norm`` and ``act``: doubles the spatial size."""
    from monai.networks.blocks import Convolution

    return Convolution(spatial_dims, in_channels, out_channels, strides=2, kernel_size=3, is_transposed=True,
                       norm=norm, act=act)


def conv1x1(spatial_dims: int, in_channels: int, out_channels: int) -> nn.Module:
    """A 1×1 convolution (``nn.Conv2d`` or ``nn.Conv3d``, from MONAI's ``Conv`` factory), with bias."""
    from monai.networks.layers import Conv

    return Conv[Conv.CONV, spatial_dims](in_channels, out_channels, kernel_size=1)


def max_pool(spatial_dims: int, kernel_size: int = 2) -> nn.Module:
    """Max pooling (``nn.MaxPool2d`` or ``nn.MaxPool3d``, from MONAI's ``Pool`` factory)."""
    from monai.networks.layers import Pool

    return Pool[Pool.MAX, spatial_dims](kernel_size)


def encoder(block: Block, in_channels: int, channels: Sequence[int]) -> nn.ModuleList:
    """A U-Net's contracting path: ``block(in_channels, channels[0])``, then per further level
    ``block(channels[i - 1], channels[i], strides=2)``."""
    return nn.ModuleList([block(in_channels, channels[0])]
                         + [block(channels[i - 1], channels[i], strides=2) for i in range(1, len(channels))])


def decoder(spatial_dims: int, block: Block, channels: Sequence[int], *, norm: str | None,
            act: str = "LEAKYRELU") -> tuple[nn.ModuleList, nn.ModuleList]:
    """A U-Net's expanding path, deepest level first: ``(up, merge)``, where ``up[k]`` is an
    :func:`up_convolution` from ``channels[i]`` to ``channels[i - 1]`` and ``merge[k]`` a
    ``block(2 * channels[i - 1], channels[i - 1])`` on the upsampled features joined with the skip."""
    levels = range(len(channels) - 1, 0, -1)
    up = nn.ModuleList([up_convolution(spatial_dims, channels[i], channels[i - 1], norm=norm, act=act)
                        for i in levels])
    merge = nn.ModuleList([block(2 * channels[i - 1], channels[i - 1]) for i in levels])
    return up, merge


def check_size(x: Tensor, spatial_dims: int, multiple: int) -> None:
    """Raise :class:`UsageError` unless ``x`` is ``(B, C, *spatial)`` with sizes that are multiples of ``multiple``."""
    if x.ndim != spatial_dims + 2:
        raise UsageError(f"expected a (B, C, {spatial_dims} spatial sizes) tensor, got shape {tuple(x.shape)}", param="expected")
    if any(s % multiple for s in x.shape[2:]):
        raise UsageError(f"spatial sizes must be multiples of {multiple} (pad the image), got {tuple(x.shape[2:])}", param="spatial")


def with_condition_channels(x: Tensor, c: Tensor) -> Tensor:
    """``x`` ``(B, C, *spatial)`` with the condition ``c`` ``(B, K)`` tiled over it as K more channels:
    how a conditional encoder or discriminator sees a class (``(B, C + K, *spatial)``)."""
    import torch

    maps = c.to(x.dtype)[(...,) + (None,) * (x.ndim - 2)].expand(-1, -1, *x.shape[2:])
    return torch.cat([x, maps], 1)
