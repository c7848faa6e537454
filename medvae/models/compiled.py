"""A function compiled by ``torch.compile`` that falls back to running eagerly where it cannot be compiled.

``torch.compile`` (TorchInductor) fuses a model's inference into fewer, larger kernels: on this project's CPUs
it runs the enhancer about 1.7x faster than eager channels-last convolutions. It has two costs a caller
must weigh: the first call compiles (tens of seconds on 2 cores the first time on a machine; a few seconds
once the kernels are in TorchInductor's on-disk cache), and it needs a C++ compiler on the CPU (Triton on
CUDA). Where compiling fails, :class:`Compiled` says so once and runs the function as it is, with the same
results.
"""

from __future__ import annotations

import warnings
from typing import Callable


class Compiled:
    """``fn`` compiled on its first call, or ``fn`` itself where compiling fails (a warning says why, once).

    ``dynamic=None`` (the default of ``torch.compile``): the first shape compiles a static graph; a second
    shape recompiles once with symbolic sizes, so a folder of films of many sizes does not compile per size.

    Attributes:
        compiled: True once a call ran compiled, False once compiling failed, None before the first call.
    """

    def __init__(self, fn: Callable, **compile_kwargs) -> None:
        self.fn = fn
        self.compile_kwargs = compile_kwargs
        self.compiled: bool | None = None
        self._compiled_fn: Callable | None = None

    def __call__(self, *args, **kwargs):
        if self.compiled is False:
            return self.fn(*args, **kwargs)
        import torch

        if self._compiled_fn is None:
            self._compiled_fn = torch.compile(self.fn, **self.compile_kwargs)
        try:
            out = self._compiled_fn(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - only compiler failures fall back; see _is_compile_failure
            if not _is_compile_failure(error):
                raise
            self.compiled = False
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
            warnings.warn(f"torch.compile failed, running eagerly instead: {first_line[:200]}", RuntimeWarning,
                          stacklevel=2)
            return self.fn(*args, **kwargs)
        self.compiled = True
        return out


def _is_compile_failure(error: BaseException) -> bool:
    """True for errors raised by TorchDynamo or a compiler backend (a missing or broken C++ compiler among
    them), not for errors of the function itself (a wrong shape, running out of memory)."""
    from torch._dynamo.exc import BackendCompilerFailed, TorchDynamoException

    return isinstance(error, (BackendCompilerFailed, TorchDynamoException))
