import pytest
import torch

from medvae.data.datasets import TensorBatches
from medvae.errors import TrainingError, UsageError
from medvae.models import MLPVAE, MLPVAEConfig
from medvae.train import TrainConfig, fit, seed_everything


def _data(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    return TensorBatches({"image": (torch.rand(n, 1, 28, 28, generator=g) > 0.6).float(),
                          "label": torch.arange(n)})


def _train(epochs=2, seed=0, **kw):
    seed_everything(seed)
    model = MLPVAE(MLPVAEConfig(hidden=(32, 16)))
    record = fit(model, _data(), _data(32, 1), TrainConfig(epochs=epochs, batch_size=16, seed=seed,
                                                            progress=False, device="cpu", **kw))
    return model, record


def test_loss_goes_down_and_record_is_filled():
    _, record = _train(epochs=3)
    assert record.epochs == 3 and len(record.train_loss) == len(record.val_loss) == 3
    assert record.train_loss[-1] < record.train_loss[0]
    assert record.train_samples == 3 * 96 and record.samples_per_second > 0
    assert set(record.train_terms[0]) == {"recon", "kl"}


def test_same_seed_same_result_and_other_seed_differs():
    a, ra = _train(seed=3)
    b, rb = _train(seed=3)
    c, _ = _train(seed=4)
    for (k, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), k
    assert ra.train_loss == rb.train_loss
    assert not torch.equal(a.decoder[0].weight, c.decoder[0].weight)


def test_resume_continues_exactly_where_it_stopped(tmp_path):
    straight, rs = _train(epochs=3)
    state = tmp_path / "state.pt"
    _train(epochs=1, state_path=state)
    assert state.is_file()
    resumed, rr = _train(epochs=3, state_path=state, resume=True)
    assert rr.resumed_at_epoch == 1 and rr.epochs == 3 and len(rr.train_loss) == 3
    for pa, pb in zip(straight.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)
    assert rr.train_loss == rs.train_loss


def test_resume_needs_a_state_and_refuses_garbage(tmp_path):
    with pytest.raises(UsageError, match="no training state"):
        _train(epochs=2, state_path=tmp_path / "missing.pt", resume=True)
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(TrainingError, match="cannot resume"):
        _train(epochs=2, state_path=tmp_path / "junk.pt", resume=True)


def test_resume_from_an_incompatible_state_is_a_clear_error(tmp_path):
    state = tmp_path / "state.pt"
    seed_everything(0)
    fit(MLPVAE(MLPVAEConfig(hidden=(8,))), _data(), None,
        TrainConfig(epochs=1, batch_size=16, progress=False, device="cpu", state_path=state))
    with pytest.raises(TrainingError, match="cannot resume"):
        _train(epochs=2, state_path=state, resume=True)


def test_non_finite_loss_stops_with_a_clear_message():
    data = _data()
    data.tensors["image"][40] = float("nan")
    with pytest.raises(TrainingError, match=r"loss became nan at epoch 1, step \d+"):
        fit(MLPVAE(), data, None, TrainConfig(epochs=1, batch_size=16, progress=False, device="cpu"))


def test_map_style_dataset_goes_through_a_dataloader():
    data = _data(40)
    items = [{"image": data.tensors["image"][i]} for i in range(40)]
    model = MLPVAE(MLPVAEConfig(hidden=(16,)))
    record = fit(model, items, None, TrainConfig(epochs=1, batch_size=16, progress=False, device="cpu"))
    assert record.train_samples == 40


@pytest.mark.parametrize("kwargs, match", [({"epochs": 0}, "epochs"), ({"batch_size": -1}, "batch_size"),
                                           ({"lr": 0}, "lr"), ({"lr_schedule": "step"}, "lr_schedule")])
def test_config_errors(kwargs, match):
    with pytest.raises(UsageError, match=match):
        TrainConfig(**kwargs)


def test_resume_needs_a_state_path():
    with pytest.raises(UsageError, match="state_path"):
        fit(MLPVAE(), _data(), None, TrainConfig(epochs=1, resume=True, progress=False, device="cpu"))


def test_bad_device_name():
    with pytest.raises(UsageError, match="device"):
        fit(MLPVAE(), _data(), None, TrainConfig(epochs=1, device="tpu9", progress=False))


@pytest.mark.parametrize("n, world_size", [(10, 1), (10, 2), (11, 2), (7, 3), (1, 3), (2, 3)])
def test_tensor_batches_shard_evenly_and_cover_everything(n, world_size):
    data = TensorBatches({"image": torch.arange(n).float()})
    seen, counts = [], []
    for rank in range(world_size):
        g = torch.Generator().manual_seed(0)
        got = torch.cat([b["image"] for b in data.batches(3, shuffle=True, generator=g, rank=rank,
                                                          world_size=world_size)])
        seen.append(got)
        counts.append(len(got))
    assert len(set(counts)) == 1  # every rank takes the same number of samples (no DDP hang)
    assert set(torch.cat(seen).long().tolist()) == set(range(n))
