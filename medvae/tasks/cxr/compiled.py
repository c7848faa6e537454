"""The enhancer's forward pass compiled by ``torch.compile``, or run as it is where it cannot be compiled.

``torch.compile`` (TorchInductor) fuses the model's inference into fewer, larger kernels: on this project's
CPUs it runs the enhancer about 1.7x faster than eager channels-last convolutions. It has two costs a caller
must weigh: the first call compiles (tens of seconds on 2 cores the first time on a machine; a few seconds
once the kernels are in TorchInductor's on-disk cache), and it needs a C++ compiler on the CPU (Triton on
CUDA) and a Python that TorchDynamo supports. Where compiling fails, :class:`Compiled` says so once and runs
the function as it is, with the same results.
"""

from __future__ import annotations

from typing import Callable

from medvae.errors import first_line


class Compiled:
    """``fn`` compiled on its first call, or ``fn`` itself where compiling fails.

    A failure of TorchDynamo or of the compiler backend (no C++ compiler, an unsupported Python) makes every
    call from then on run ``fn`` eagerly, and ``on_fallback`` is called once with a one-line reason. An error
    of ``fn`` itself (a wrong shape, running out of memory) is raised as eager ``fn`` raises it: when a compiled
    call fails, ``fn`` runs eagerly on the same arguments, and only if that succeeds was it the compiler.

    ``dynamic=None`` (the default of ``torch.compile``): the first shape compiles a static graph; a second
    shape recompiles once with symbolic sizes, so a folder of films of many sizes does not compile per size.

    Attributes:
        compiled: True once a call ran compiled, False once compiling failed, None before the first call.
    """

    def __init__(self, fn: Callable, on_fallback: Callable[[str], None] | None = None, **compile_kwargs) -> None:
        self.fn = fn
        self.on_fallback = on_fallback
        self.compile_kwargs = compile_kwargs
        self.compiled: bool | None = None
        self._compiled_fn: Callable | None = None

    def __call__(self, *args, **kwargs):
        if self.compiled is False:
            return self.fn(*args, **kwargs)
        import torch

        try:
            if self._compiled_fn is None:
                self._compiled_fn = torch.compile(self.fn, **self.compile_kwargs)
            out = self._compiled_fn(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - told apart below: eager fn raises its own errors again
            out = self.fn(*args, **kwargs)  # fn's own error propagates from here, as eager would raise it
            self.compiled = False
            if self.on_fallback is not None:
                self.on_fallback(f"torch.compile failed, running eagerly instead: {first_line(error)[:200]}")
            return out
        self.compiled = True
        return out
