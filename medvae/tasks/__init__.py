"""One module per job. Plain functions a notebook can call; the CLI is a thin layer over them.

Importing this package does not import torch or MONAI: each task imports them when it runs.
"""

from medvae.tasks.convert import convert
from medvae.tasks.demo import MnistDemoConfig, MnistDemoResult, run_mnist_demo
from medvae.tasks.evaluate_generative import evaluate_generative
from medvae.tasks.generate import generate
from medvae.tasks.info import describe, format_description
from medvae.tasks.phantom import phantom_brain
from medvae.tasks.evaluate_synthesis import evaluate_synthesis
from medvae.tasks.synthesize import synthesize
from medvae.tasks.train_generative import GenerativeTrainConfig, train_generative
from medvae.tasks.train_synthesis import SynthesisTrainConfig, train_synthesis

__all__ = ["MnistDemoConfig", "MnistDemoResult", "run_mnist_demo", "describe", "format_description", "convert",
           "GenerativeTrainConfig", "train_generative", "generate", "evaluate_generative",
           "phantom_brain", "SynthesisTrainConfig", "train_synthesis", "synthesize", "evaluate_synthesis"]
