"""One module per job. Plain functions a notebook can call; the CLI is a thin layer over them.

``from medvae.tasks import train_segment`` (and every name below) works; each is imported on first use, so
importing this package, or one task module, loads neither torch, MONAI nor the other tasks.
"""

from __future__ import annotations

import importlib

_HOME = {
    "convert": "convert", "describe": "info", "format_description": "info",
    "MnistDemoConfig": "demo", "MnistDemoResult": "demo", "run_mnist_demo": "demo",
    "phantom_brain": "phantom", "phantom_cxr": "phantom",
    "GenerativeTrainConfig": "generative.train", "train_generative": "generative.train",
    "generate": "generative.generate", "evaluate_generative": "generative.evaluate",
    "SynthesisTrainConfig": "synthesis.train", "train_synthesis": "synthesis.train",
    "synthesize": "synthesis.synthesize", "evaluate_synthesis": "synthesis.evaluate",
    "EnhanceTrainConfig": "cxr.train_enhance", "train_enhance": "cxr.train_enhance", "enhance": "cxr.enhance",
    "evaluate_enhance": "cxr.evaluate_enhance", "SegmentTrainConfig": "cxr.train_segment",
    "train_segment": "cxr.train_segment", "segment": "cxr.segment", "evaluate_segment": "cxr.evaluate_segment",
}


def __getattr__(name: str):
    if name in _HOME:
        return getattr(importlib.import_module(f"medvae.tasks.{_HOME[name]}"), name)
    raise AttributeError(f"module 'medvae.tasks' has no attribute {name!r}")


__all__ = list(_HOME)
