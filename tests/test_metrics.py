import torch

from medvae.metrics import importance_sampled_nll, negative_elbo
from medvae.models import MLPVAE, MLPVAEConfig


def _partly_trained(image_batch):
    model = MLPVAE(MLPVAEConfig(hidden=(64,), latent_dim=2))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(30):
        opt.zero_grad()
        model.loss({"image": image_batch}).loss.backward()
        opt.step()
    return model.eval()


def _mean_over_copies(values, copies):
    return values.view(copies, -1).mean(0)


def test_importance_sampled_nll_is_below_the_negative_elbo(image_batch):
    model = _partly_trained(image_batch)
    neg_elbo = _mean_over_copies(negative_elbo(model, image_batch.repeat(1000, 1, 1, 1))["neg_elbo"], 1000)
    nll = importance_sampled_nll(model, image_batch, k=1000)
    assert nll.shape == (8,)
    # IWAE bound >= ELBO for every image, strictly on average for a posterior that is not exact.
    assert torch.all(nll <= neg_elbo + 0.05)
    assert nll.mean() < neg_elbo.mean() - 0.01


def test_importance_sampled_nll_with_one_sample_is_the_elbo_on_average(image_batch):
    model = _partly_trained(image_batch)
    copies = image_batch.repeat(2000, 1, 1, 1)  # 2000 independent draws per image, in one pass
    neg_elbo = negative_elbo(model, copies)["neg_elbo"].mean()
    one = importance_sampled_nll(model, copies, k=1).mean()
    torch.testing.assert_close(one, neg_elbo, rtol=2e-3, atol=0.2)


def test_importance_sampled_nll_is_the_burda_estimate_written_out(image_batch):
    import math

    from medvae.losses import bernoulli_nll, log_normal, log_standard_normal

    model, k = _partly_trained(image_batch), 50
    torch.manual_seed(3)
    fast = importance_sampled_nll(model, image_batch, k=k)
    torch.manual_seed(3)
    mu, logvar = model.encode(image_batch)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(k, *mu.shape)
    target = image_batch.expand(k, *image_batch.shape).reshape(-1, *image_batch.shape[1:])
    log_w = -bernoulli_nll(model.decode(z.reshape(-1, mu.shape[1])), target).view(k, -1) \
        + log_standard_normal(z) - log_normal(z, mu, logvar)
    torch.testing.assert_close(fast, -(torch.logsumexp(log_w, 0) - math.log(k)), rtol=1e-5, atol=1e-3)


def test_negative_elbo_terms_add_up(image_batch):
    model = MLPVAE()
    t = negative_elbo(model, image_batch, samples=3)
    torch.testing.assert_close(t["neg_elbo"], t["recon"] + t["kl"])
    assert torch.all(t["kl"] >= 0)


def test_decoding_in_smaller_pieces_keeps_the_draws_and_the_estimate(image_batch):
    model = _partly_trained(image_batch)
    estimates = []
    for rows in (100, 300, 10_000):  # one image per decode, three, all eight at once
        torch.manual_seed(3)
        estimates.append(importance_sampled_nll(model, image_batch, k=100, chunk=1000, decode_rows=rows))
    for other in estimates[1:]:
        torch.testing.assert_close(other, estimates[0], rtol=1e-5, atol=1e-4)  # float round-off only
    torch.manual_seed(4)  # other draws give another estimate: the comparison above is not vacuous
    assert (importance_sampled_nll(model, image_batch, k=100, chunk=1000) - estimates[0]).abs().max() > 1e-3
