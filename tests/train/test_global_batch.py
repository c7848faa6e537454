"""One process's share of a global batch: its noise rows, and batch norm outside a process group."""

from __future__ import annotations

import torch
from torch import nn

from medvae.models.base import global_batch, global_sum, standard_normal, standard_normal_like
from medvae.train.sync_norm import sync_batch_norms


def test_each_rank_draws_its_rows_of_the_global_batchs_noise():
    torch.manual_seed(5)
    whole = torch.randn(8, 3)
    shares = []
    for rank in (0, 1):
        torch.manual_seed(5)
        with global_batch(rank, 2):
            shares.append(standard_normal((4, 3)))
    assert torch.equal(shares[0], whole[0::2]) and torch.equal(shares[1], whole[1::2])
    torch.manual_seed(5)
    assert torch.equal(standard_normal_like(whole), whole)  # one process: a plain draw
    assert global_sum(whole) is whole  # and nothing to sum over


def test_global_batch_norm_is_plain_batch_norm_outside_a_process_group():
    torch.manual_seed(0)
    plain = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4))
    synced = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4))
    synced.load_state_dict(plain.state_dict())
    weight = synced[1].weight
    assert sync_batch_norms(synced) == 1 and sync_batch_norms(synced) == 0  # once; the same parameters
    assert synced[1].weight is weight and isinstance(synced[1], nn.BatchNorm2d)
    x = torch.randn(4, 1, 8, 8)
    assert torch.equal(plain(x), synced(x))
    assert torch.equal(plain[1].running_var, synced[1].running_var)
    assert synced.state_dict().keys() == plain.state_dict().keys()
