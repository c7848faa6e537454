"""One module per job. Plain functions a notebook can call; the CLI is a thin layer over them.

Importing this package does not import torch or MONAI: each task imports them when it runs.
"""

from medvae.tasks.convert import convert
from medvae.tasks.demo import MnistDemoConfig, MnistDemoResult, run_mnist_demo
from medvae.tasks.generative.evaluate import evaluate_generative
from medvae.tasks.generative.generate import generate
from medvae.tasks.info import describe, format_description
from medvae.tasks.cxr.enhance import enhance
from medvae.tasks.cxr.evaluate_enhance import evaluate_enhance
from medvae.tasks.cxr.evaluate_segment import evaluate_segment
from medvae.tasks.phantom import phantom_brain, phantom_cxr
from medvae.tasks.cxr.segment import segment
from medvae.tasks.synthesis.evaluate import evaluate_synthesis
from medvae.tasks.synthesis.synthesize import synthesize
from medvae.tasks.cxr.train_enhance import EnhanceTrainConfig, train_enhance
from medvae.tasks.generative.train import GenerativeTrainConfig, train_generative
from medvae.tasks.cxr.train_segment import SegmentTrainConfig, train_segment
from medvae.tasks.synthesis.train import SynthesisTrainConfig, train_synthesis

__all__ = ["MnistDemoConfig", "MnistDemoResult", "run_mnist_demo", "describe", "format_description", "convert",
           "GenerativeTrainConfig", "train_generative", "generate", "evaluate_generative",
           "phantom_brain", "SynthesisTrainConfig", "train_synthesis", "synthesize", "evaluate_synthesis",
           "phantom_cxr", "EnhanceTrainConfig", "train_enhance", "enhance", "evaluate_enhance",
           "SegmentTrainConfig", "train_segment", "segment", "evaluate_segment"]
