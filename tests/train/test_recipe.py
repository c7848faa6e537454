"""The one training recipe: config routing, the existing-model rule, resume checks, previews and TensorBoard,
the model and dataset contracts."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from medvae.data.datasets import TensorBatches
from medvae.errors import OutputExists, UsageError
from medvae.models import MLPVAE, MLPVAEConfig
from medvae.train import TrainConfig, fit
from medvae.train.config import train_defaults
from medvae.train.recipe import Recipe, changed_options, configure, plain_config


@dataclass
class TaskConfig:
    out: Path = Path("m.safetensors")
    width: int = 8
    train: TrainConfig = train_defaults(epochs=3, batch_size=16)


def _data(n=48):
    g = torch.Generator().manual_seed(0)
    return TensorBatches({"image": (torch.rand(n, 1, 28, 28, generator=g) > 0.6).float()})


def test_configure_routes_loop_fields_into_train_and_keeps_task_defaults():
    config = configure(TaskConfig, width=4, epochs=5, device="cpu")
    assert config.width == 4 and config.train.epochs == 5 and config.train.device == "cpu"
    assert config.train.batch_size == 16  # the task's own default, not TrainConfig's 64
    again = configure(TaskConfig, config, lr=0.5)
    assert again.train.epochs == 5 and again.train.lr == 0.5 and config.train.lr == 1e-3
    with pytest.raises(UsageError, match="epochs"):
        configure(TaskConfig, epochs=0)
    with pytest.raises(TypeError):
        configure(TaskConfig, nonsense=1)


def test_recorded_config_and_command_are_flat_and_leave_out_how_it_was_watched(tmp_path):
    config = configure(TaskConfig, out=tmp_path / "m.safetensors", epochs=7, progress=False, tensorboard=tmp_path)
    plain = plain_config(config)
    assert plain["epochs"] == 7 and plain["out"] == "m.safetensors" and "train" not in plain
    assert configure(TaskConfig, **plain).train.epochs == 7  # a model file's record rebuilds the config
    assert changed_options(config, TaskConfig(), ("out",)) == ["--epochs 7"]


def _recipe_run(tmp_path, **overrides):
    config = configure(TaskConfig, out=tmp_path / "m.safetensors", progress=False, device="cpu", **overrides)
    recipe = Recipe(config, config.out)
    saves = []

    def save(model, record, final):
        saves.append((record.epochs, final))
        config.out.write_bytes(b"model")

    result = recipe.fit(MLPVAE(MLPVAEConfig(hidden=(16,))), _data(), None, save,
                        previews=lambda m: {"grey": np.full((4, 6), 0.5), "colour": np.zeros((4, 6, 3))})
    return result, saves


def test_recipe_saves_every_epoch_and_once_at_the_end_and_writes_previews(tmp_path):
    result, saves = _recipe_run(tmp_path)
    assert saves == [(1, False), (2, False), (3, False), (3, True)]
    assert result["epochs"] == 3 and result["wall_seconds"] > 0
    assert (tmp_path / "m.state.pt").is_file()
    from PIL import Image

    assert Image.open(tmp_path / "m.grey.png").size == (6, 4)
    assert Image.open(tmp_path / "m.colour.png").mode == "RGB"


def test_an_existing_model_is_skipped_unless_overwrite_or_resume(tmp_path):
    _recipe_run(tmp_path)
    with pytest.raises(OutputExists, match="--overwrite") as e:
        _recipe_run(tmp_path)
    assert e.value.exit_code == 0
    _, saves = _recipe_run(tmp_path, overwrite=True)
    assert saves[0] == (1, False)
    _, saves = _recipe_run(tmp_path, resume=True, epochs=4)
    assert saves == [(4, False), (4, True)]  # epochs 1-3 came from the state file


def test_resume_without_a_state_file_is_refused_before_any_work(tmp_path):
    config = configure(TaskConfig, out=tmp_path / "m.safetensors", resume=True)
    with pytest.raises(UsageError, match="no training state"):
        Recipe(config, config.out)
    assert not list(tmp_path.iterdir())


def test_model_path_must_be_a_safetensors_file(tmp_path):
    with pytest.raises(UsageError, match=".safetensors"):
        Recipe(TaskConfig(), tmp_path / "m.pt")


def test_tensorboard_gets_losses_and_preview_images(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _recipe_run(tmp_path, tensorboard=tmp_path / "tb", previews=False)
    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"images": 0}).Reload()
    assert [e.step for e in events.Scalars("loss/train")] == [1, 2, 3]
    assert {"train/recon", "train/kl", "speed/samples_per_second"} <= set(events.Tags()["scalars"])
    assert set(events.Tags()["images"]) == {"grey", "colour"} and len(events.Images("grey")) == 3
    assert not (tmp_path / "m.grey.png").exists()  # previews off: no PNG files, TensorBoard still has them


def test_fit_refuses_a_module_without_a_loss():
    with pytest.raises(UsageError, match="no loss"):
        fit(nn.Linear(2, 2), _data(), None, TrainConfig(epochs=1, progress=False, device="cpu"))


class _EpochItems(torch.utils.data.Dataset):
    """A map-style dataset that records the epochs it is told (the EpochAware contract)."""

    def __init__(self):
        self.epochs = []
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epochs.append(epoch)
        self.epoch = epoch

    def __len__(self):
        return 8

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(self.epoch * 100 + i)
        return {"image": (torch.rand(1, 28, 28, generator=g) > 0.5).float()}


def test_an_epoch_aware_dataset_is_told_each_epoch_also_after_a_resume(tmp_path):
    state = tmp_path / "s.pt"
    data = _EpochItems()
    fit(MLPVAE(MLPVAEConfig(hidden=(16,))), data, None,
        TrainConfig(epochs=2, batch_size=4, progress=False, device="cpu", state_path=state))
    assert data.epochs == [0, 1]
    resumed = _EpochItems()
    fit(MLPVAE(MLPVAEConfig(hidden=(16,))), resumed, None,
        TrainConfig(epochs=4, batch_size=4, progress=False, device="cpu", state_path=state, resume=True))
    assert resumed.epochs == [2, 3]
