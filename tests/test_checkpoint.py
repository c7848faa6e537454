import json

import pytest
import torch
from safetensors.torch import save_file

from medvae.checkpoint import load_model, read_model_info, save_model
from medvae.errors import InputError
from medvae.models import ConvVAE, ConvVAEConfig, MLPVAE, MLPVAEConfig


@pytest.mark.parametrize(
    "model",
    [MLPVAE(MLPVAEConfig(hidden=(32, 16), latent_dim=3)), ConvVAE(ConvVAEConfig(channels=(4, 8), latent_dim=2))],
    ids=["mlp", "conv"],
)
def test_round_trip_rebuilds_the_same_model(tmp_path, model, image_batch):
    path = save_model(tmp_path / "m.safetensors", model, preprocessing={"pipeline": "mnist"},
                      training={"epochs": 3, "train_loss": [3.0, 2.0, 1.0]})
    loaded, info = load_model(path)
    assert type(loaded) is type(model) and loaded.config == model.config
    assert info.kind == model.kind and info.training["epochs"] == 3 and info.preprocessing == {"pipeline": "mnist"}
    assert info.n_parameters == sum(p.numel() for p in model.parameters()) + sum(
        b.numel() for b in model.buffers())
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode(image_batch), model.encode(image_batch), rtol=0, atol=0)
        z = torch.randn(4, model.latent_dim)
        torch.testing.assert_close(loaded.decode(z), model.decode(z), rtol=0, atol=0)


def test_file_is_plain_safetensors_with_string_metadata(tmp_path):
    path = save_model(tmp_path / "m.safetensors", MLPVAE())
    raw = path.read_bytes()
    header = json.loads(raw[8 : 8 + int.from_bytes(raw[:8], "little")])
    meta = header["__metadata__"]
    assert meta["format"] == "medvae-model" and meta["kind"] == "mlp_vae" and meta["medvae_version"]
    assert json.loads(meta["config"])["hidden"] == [256, 128]
    assert not list(tmp_path.glob(".*part*"))  # no temporary left behind


def test_not_a_model(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"this is not a model")
    with pytest.raises(InputError, match="junk.safetensors: not a safetensors model file"):
        read_model_info(junk)
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(plain))
    with pytest.raises(InputError, match="not a medvae model"):
        load_model(plain)
    with pytest.raises(InputError, match="no such file"):
        read_model_info(tmp_path / "missing.safetensors")


def test_weights_that_do_not_fit_the_config(tmp_path):
    path = save_model(tmp_path / "m.safetensors", MLPVAE())
    raw = bytearray(path.read_bytes())
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    meta = header["__metadata__"]
    meta["config"] = json.dumps({"hidden": [64, 32], "latent_dim": 2, "in_shape": [1, 28, 28]})
    new = json.dumps(header).encode()
    new += b" " * (-len(new) % 8)
    (tmp_path / "bad.safetensors").write_bytes(len(new).to_bytes(8, "little") + new + raw[8 + n :])
    with pytest.raises(InputError, match="weights do not match"):
        load_model(tmp_path / "bad.safetensors")
