"""medvae enhance --compile: the compiled enhancer gives the eager one's output, falls back where it cannot
compile, and leaves errors of the model itself as they are."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from medvae.models.enhancer import EnhancerConfig, EnhancerModel
from medvae.tasks.cxr.compiled import Compiled
from medvae.tasks.cxr.enhance import enhance_array, inference_forward


def _cxx_compiler() -> bool:
    """Whether TorchInductor finds the C++ compiler it compiles CPU kernels with."""
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler

        return shutil.which(get_cpp_compiler()) is not None
    except Exception:  # noqa: BLE001 - no compiler, or an inductor without this helper
        return False


@pytest.fixture()
def net():
    torch.manual_seed(0)
    model = EnhancerModel(EnhancerConfig(channels=(4, 8), latent_channels=2, norm="BATCH"))
    torch.nn.init.normal_(model.head.weight, std=0.1)  # not the identity it starts as
    return model.eval()


def test_inference_forward_is_what_enhance_computes(net):
    x = torch.rand(2, 1, 32, 48)
    with torch.inference_mode():
        assert torch.equal(inference_forward(net)(x), net.enhance(x))


@pytest.mark.skipif(not _cxx_compiler(), reason="no C++ compiler for TorchInductor (the fallback is tested below)")
def test_compiled_enhancement_matches_eager_on_two_sizes(net):
    rng = np.random.default_rng(0)
    images = [rng.random((40, 56)).astype(np.float32), rng.random((72, 64)).astype(np.float32)]
    forward = Compiled(inference_forward(net), fullgraph=True)  # one graph: a graph break would raise here
    for image in images:  # the second size recompiles (or reuses a graph with symbolic sizes)
        eager = enhance_array(net, image, tile=256)
        compiled = enhance_array(net, image, tile=256, forward=forward)
        assert compiled.shape == image.shape
        assert np.abs(compiled - eager).max() < 1e-5
    assert forward.compiled is True


def test_a_machine_without_a_cxx_compiler_falls_back_to_eager_once_with_a_note(net, monkeypatch):
    import torch._inductor.config as inductor

    monkeypatch.setattr(inductor.cpp, "cxx", ("/nonexistent/c++",))  # as on a machine without a compiler
    monkeypatch.setattr(inductor, "fx_graph_cache", False)  # no kernels from an earlier compile
    torch._dynamo.reset()
    notes = []
    image = np.random.default_rng(1).random((32, 32)).astype(np.float32)
    forward = Compiled(inference_forward(net), on_fallback=notes.append)
    first = enhance_array(net, image, tile=256, forward=forward)
    second = enhance_array(net, image, tile=256, forward=forward)  # no second try, no second note
    assert forward.compiled is False
    assert len(notes) == 1 and notes[0].startswith("torch.compile failed, running eagerly instead: ")
    eager = enhance_array(net, image, tile=256)
    assert np.array_equal(first, eager) and np.array_equal(second, eager)


def test_a_failing_torch_compile_call_falls_back_too(net, monkeypatch):
    def unsupported(fn, **kwargs):  # what torch.compile raises on a Python that TorchDynamo does not support
        raise RuntimeError("torch.compile is not supported on this Python")

    monkeypatch.setattr(torch, "compile", unsupported)
    notes = []
    image = np.random.default_rng(2).random((32, 32)).astype(np.float32)
    forward = Compiled(inference_forward(net), on_fallback=notes.append)
    assert np.array_equal(enhance_array(net, image, tile=256, forward=forward), enhance_array(net, image, tile=256))
    assert forward.compiled is False and notes == ["torch.compile failed, running eagerly instead: torch.compile is "
                                                   "not supported on this Python"]


def test_an_error_of_the_model_itself_is_raised_not_taken_for_a_compiler_failure():
    conv = torch.nn.Conv2d(3, 4, 3)
    notes = []
    forward = Compiled(conv, on_fallback=notes.append, backend="eager")  # no C++ compiler needed
    with pytest.raises(RuntimeError, match="channels"):
        forward(torch.zeros(1, 2, 8, 8))  # 2 channels for a 3-channel convolution
    assert notes == [] and forward.compiled is None
    assert forward(torch.zeros(1, 3, 8, 8)).shape == (1, 4, 6, 6) and forward.compiled is True
