"""Model registry: from a model file's ``kind`` to the class and config that rebuild it."""

from __future__ import annotations

import dataclasses
from typing import Any

from medvae.errors import InputError
from medvae.models.base import VAE, LossOutput, VAEOutput
from medvae.models.conv_vae import ConvVAE, ConvVAEConfig
from medvae.models.cvae_gan import ConditionalVAEGAN, ConditionalVAEGANConfig
from medvae.models.digit_classifier import DigitClassifier, DigitClassifierConfig
from medvae.models.enhancer import EnhancerConfig, EnhancerModel
from medvae.models.mlp_vae import MLPVAE, MLPVAEConfig
from medvae.models.resunetpp import SegmenterConfig, SegmenterModel
from medvae.models.synthesis import SynthesisConfig, SynthesisModel
from medvae.models.tabular_cvae_gan import TabularCVAEGAN, TabularCVAEGANConfig
from medvae.models.vae_gan import VAEGAN, VAEGANConfig

REGISTRY: dict[str, tuple[type, type]] = {
    MLPVAE.kind: (MLPVAE, MLPVAEConfig),
    ConvVAE.kind: (ConvVAE, ConvVAEConfig),
    VAEGAN.kind: (VAEGAN, VAEGANConfig),
    ConditionalVAEGAN.kind: (ConditionalVAEGAN, ConditionalVAEGANConfig),
    TabularCVAEGAN.kind: (TabularCVAEGAN, TabularCVAEGANConfig),
    SynthesisModel.kind: (SynthesisModel, SynthesisConfig),
    DigitClassifier.kind: (DigitClassifier, DigitClassifierConfig),
    EnhancerModel.kind: (EnhancerModel, EnhancerConfig),
    SegmenterModel.kind: (SegmenterModel, SegmenterConfig),
}


def build_model(kind: str, config: dict[str, Any]):
    """Instantiate the registered model ``kind`` from a config dict (as stored in a model file)."""
    if kind not in REGISTRY:
        raise InputError(f"unknown model kind {kind!r}; this medvae knows {', '.join(sorted(REGISTRY))}")
    cls, config_cls = REGISTRY[kind]
    names = {f.name for f in dataclasses.fields(config_cls)}
    return cls(config_cls(**{k: v for k, v in config.items() if k in names}))


__all__ = ["REGISTRY", "build_model", "VAE", "VAEOutput", "LossOutput", "MLPVAE", "MLPVAEConfig", "ConvVAE", "ConvVAEConfig",
           "VAEGAN", "VAEGANConfig", "ConditionalVAEGAN", "ConditionalVAEGANConfig", "TabularCVAEGAN",
           "TabularCVAEGANConfig",
           "SynthesisModel", "SynthesisConfig", "EnhancerModel", "EnhancerConfig", "SegmenterModel", "SegmenterConfig"]
