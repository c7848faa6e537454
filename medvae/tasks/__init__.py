"""One module per job. Plain functions a notebook can call; the CLI is a thin layer over them.

Importing this package does not import torch or MONAI: each task imports them when it runs.
"""

from medvae.tasks.demo import MnistDemoConfig, MnistDemoResult, run_mnist_demo
from medvae.tasks.info import describe, format_description

__all__ = ["MnistDemoConfig", "MnistDemoResult", "run_mnist_demo", "describe", "format_description"]
