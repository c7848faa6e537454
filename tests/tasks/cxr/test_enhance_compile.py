"""medvae enhance --compile: the compiled enhancer gives the eager one's output, and falls back where it cannot
compile."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from medvae.models.compiled import Compiled
from medvae.models.enhancer import EnhancerConfig, EnhancerModel
from medvae.tasks.cxr.enhance import enhance_array, inference_forward


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


def test_compiled_enhancement_matches_eager_on_two_sizes(net):
    rng = np.random.default_rng(0)
    images = [rng.random((40, 56)).astype(np.float32), rng.random((72, 64)).astype(np.float32)]
    forward = Compiled(inference_forward(net))
    for image in images:  # the second size recompiles (or reuses a graph with symbolic sizes)
        eager = enhance_array(net, image, tile=256)
        compiled = enhance_array(net, image, tile=256, forward=forward)
        assert compiled.shape == image.shape
        assert np.abs(compiled - eager).max() < 1e-5
    assert forward.compiled is True


def test_a_machine_without_a_cxx_compiler_falls_back_to_eager_once_with_a_warning(net, monkeypatch):
    import torch._inductor.config as inductor

    monkeypatch.setattr(inductor.cpp, "cxx", ("/nonexistent/c++",))  # as on a machine without a compiler
    monkeypatch.setattr(inductor, "fx_graph_cache", False)  # no kernels from an earlier compile
    torch._dynamo.reset()
    image = np.random.default_rng(1).random((32, 32)).astype(np.float32)
    forward = Compiled(inference_forward(net))
    with pytest.warns(RuntimeWarning, match="torch.compile failed, running eagerly"):
        first = enhance_array(net, image, tile=256, forward=forward)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning, no second try
        second = enhance_array(net, image, tile=256, forward=forward)
    assert forward.compiled is False
    eager = enhance_array(net, image, tile=256)
    assert np.array_equal(first, eager) and np.array_equal(second, eager)


def test_errors_of_the_function_itself_are_not_swallowed(monkeypatch):
    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: fn)  # "compiled" = the function itself

    def bad(x):
        raise ValueError("wrong shape")

    with pytest.raises(ValueError, match="wrong shape"):
        Compiled(bad)(torch.zeros(1))
