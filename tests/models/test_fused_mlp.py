import pytest
import torch

from medvae.models import MLPVAE, MLPVAEConfig
from medvae.models.base import VAE


def _grads(model, x, fused: bool, low: bool = False):
    model.zero_grad(set_to_none=True)
    torch.manual_seed(7)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=low):
        out = model.loss({"image": x}) if fused else VAE.loss(model, {"image": x})
    out.loss.backward()
    return out, {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("config", [MLPVAEConfig(), MLPVAEConfig(in_shape=(2, 5, 3), hidden=(17,), latent_dim=3),
                                    MLPVAEConfig(hidden=(64, 32, 16), latent_dim=4)], ids=["demo", "one-hidden", "deep"])
def test_hand_written_backward_matches_autograd(config, image_batch):
    torch.manual_seed(0)
    model = MLPVAE(config).double().float()  # plain float32 model
    x = torch.rand(8, *config.in_shape)
    ref_out, ref = _grads(model, x, fused=False)
    out, got = _grads(model, x, fused=True)
    torch.testing.assert_close(out.loss, ref_out.loss, rtol=1e-5, atol=1e-4)  # same value, same noise draws
    torch.testing.assert_close(out.terms["kl"], ref_out.terms["kl"], rtol=1e-5, atol=1e-5)
    for name in ref:
        torch.testing.assert_close(got[name], ref[name], rtol=1e-4, atol=1e-5, msg=name)


def test_bf16_matmuls_stay_close_to_float32(image_batch):
    model = MLPVAE()
    _, ref = _grads(model, image_batch, fused=True)
    _, low = _grads(model, image_batch, fused=True, low=True)
    for name in ref:
        err = (low[name] - ref[name]).norm() / ref[name].norm().clamp_min(1e-12)
        assert err < 0.05, (name, err.item())


def test_gradients_accumulate_and_eval_uses_autograd(image_batch):
    model = MLPVAE()
    model.zero_grad(set_to_none=True)
    torch.manual_seed(1)
    model.loss({"image": image_batch}).loss.backward()
    once = model.decoder[0].weight.grad.clone()
    torch.manual_seed(1)
    model.loss({"image": image_batch}).loss.backward()
    torch.testing.assert_close(model.decoder[0].weight.grad, 2 * once)
    out = model.loss({"image": image_batch})
    assert not out.terms["recon"].requires_grad and not out.terms["kl"].requires_grad
    model.eval()
    assert model.loss({"image": image_batch}).loss.grad_fn.name() != "FusedMLPVAELossBackward"
