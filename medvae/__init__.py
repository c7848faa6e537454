"""medvae: variational autoencoders for medical imaging.

Importing this package is cheap: torch and MONAI are imported by the submodules that need them,
so the command line can answer ``--help`` without loading them.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
