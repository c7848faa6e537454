"""Issue 17, the model-file part: every bad model file is one line naming the file, exit code 1, on every
command that loads a model, and nothing is built or allocated from a file before it passes
:mod:`medvae.model_checks` (malformed metadata, configs the model classes refuse, non-finite weights,
pickles, configs that would take terabytes)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from medvae.checkpoint import load_model, read_model_info, save_model
from medvae.errors import InputError, UsageError
from medvae.models import MLPVAE, MLPVAEConfig, SegmenterConfig, SegmenterModel
from medvae_cli.main import app

runner = CliRunner()
FILM = Path(__file__).resolve().parents[2] / "sample_data" / "cxr" / "images" / "2168a917.png"


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    """A tiny MLP VAE on 28x28 images (what the MNIST demo writes), with a training record."""
    path = tmp_path_factory.mktemp("good") / "m.safetensors"
    return save_model(path, MLPVAE(MLPVAEConfig(hidden=(8,), latent_dim=2)),
                      preprocessing={"pipeline": "mnist"}, training={"epochs": 1, "train_loss": [1.5]})


@pytest.fixture(scope="module")
def segmenter(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("seg") / "s.safetensors"
    return save_model(path, SegmenterModel(SegmenterConfig(channels=(4, 8))),
                      preprocessing={"pipeline": "segment", "size": 64, "multiple": 2})


def corrupt(src: Path, dst: Path, tensors: dict | None = None, fields: dict | None = None, **metadata: str) -> Path:
    """A copy of model file ``src`` with some metadata replaced (``fields``: of its config), or other tensors."""
    with safe_open(str(src), framework="pt") as f:
        meta = dict(f.metadata())
    if fields is not None:
        meta["config"] = json.dumps({**json.loads(meta["config"]), **fields})
    meta.update(metadata)
    save_file(tensors if tensors is not None else load_file(str(src)), str(dst), metadata=meta)
    return dst


def run(*args) -> tuple[int, str]:
    """Run the CLI; return the exit code and stderr, after checking it is one ``error:`` line and no warning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = runner.invoke(app, [str(a) for a in args])
    assert not caught, [str(w.message) for w in caught]
    assert "Traceback" not in result.stdout + result.stderr
    if result.exit_code:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return result.exit_code, result.stderr.strip()


# --- 1. metadata that is JSON but not an object, or a field of the wrong type -------------------------------

@pytest.mark.parametrize("value", ["[1, 2, 3]", "null", '"vae"', "5", "{", "[" * 5000])
@pytest.mark.parametrize("key", ["config", "preprocessing", "training"])
def test_metadata_that_is_not_a_json_object_is_one_line_on_info_and_generate(good, tmp_path, key, value):
    bad = corrupt(good, tmp_path / "bad.safetensors", **{key: value})
    for args in (["info", bad], ["generate", bad, "--n", "2", "--out", tmp_path / "out"]):
        code, err = run(*args)
        assert code == 1, err
        assert err.startswith(f"error: {bad}: not a valid medvae model file (its {key} metadata is not "), err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("key, value, field", [
    ("training", {"train_loss": ["low"]}, "train_loss"),
    ("training", {"history": 5}, "history"),
    ("training", {"test_images": {"a": 1}}, "test_images"),
    ("preprocessing", {"size": "big"}, "size"),
    ("preprocessing", {"spacing": [1, -2]}, "spacing"),
    ("preprocessing", {"chest_check": {"ranges": {"confidence": 1}}}, "chest_check.ranges"),
])
def test_a_field_medvae_reads_with_the_wrong_type_is_one_line(good, tmp_path, key, value, field):
    bad = corrupt(good, tmp_path / "bad.safetensors", **{key: json.dumps(value)})
    code, err = run("info", bad)
    assert code == 1 and f"not a valid medvae model file (its {key}'s {field} must be" in err, err
    with pytest.raises(InputError, match="not a valid medvae model file"):
        load_model(bad)


def test_every_command_that_loads_a_model_refuses_malformed_metadata(segmenter, tmp_path):
    bad = corrupt(segmenter, tmp_path / "bad.safetensors", config="[1, 2, 3]")
    commands = [["segment", FILM, tmp_path / "seg", "--model", bad], ["enhance", FILM, tmp_path / "enh", "--model", bad],
                ["synthesize", bad, FILM, tmp_path / "syn"], ["evaluate", "enhance", bad],
                ["evaluate", "chest-check", bad], ["evaluate", "generative", bad], ["score", bad, FILM, tmp_path / "sc"],
                ["evaluate", "anomaly", bad, "--data", "mnist", "--anomaly-digit", "3"], ["info", bad],
                ["generate", bad, "--out", tmp_path / "gen"],
                ["train", "enhance", "--data", FILM, "--init", bad, "--out", tmp_path / "e.safetensors"]]
    for args in commands:
        code, err = run(*args)
        assert code == 1 and f"{bad}: not a valid medvae model file" in err, (args, code, err)


# --- 3. a config the model class refuses is the file's fault ------------------------------------------------

def test_a_config_the_model_refuses_is_a_failed_input_naming_the_file_not_an_option(good, segmenter, tmp_path):
    bad = corrupt(good, tmp_path / "neg.safetensors", fields={"latent_dim": -5})
    code, err = run("generate", bad, "--n", "2", "--out", tmp_path / "out")
    assert code == 1, err
    assert err == (f"error: {bad}: not a valid medvae model file (its config's latent_dim must be a positive "
                   "integer, got -5)")
    with pytest.raises(InputError) as caught:
        load_model(bad)
    assert not isinstance(caught.value, UsageError)
    odd = corrupt(segmenter, tmp_path / "odd.safetensors", fields={"channels": [4, -8]})
    code, err = run("segment", FILM, tmp_path / "seg", "--model", odd)
    assert code == 1 and "its config's channels must" in err and "--channels" not in err, err
    typed = corrupt(good, tmp_path / "typed.safetensors", fields={"latent_dim": "two"})
    with pytest.raises(InputError, match="its config cannot build a mlp_vae model: TypeError"):
        load_model(typed)


def test_a_config_that_disagrees_with_the_tensors_is_refused_before_building(good, tmp_path):
    bad = corrupt(good, tmp_path / "bad.safetensors", fields={"latent_dim": 3})
    with pytest.raises(InputError, match="its weights do not match its config: .* tensors differ"):
        load_model(bad)


# --- 7. non-finite weights, pickles, files that are not safetensors -----------------------------------------

@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_model_with_non_finite_weights_is_refused_before_it_writes_anything(good, tmp_path, value):
    tensors = load_file(str(good))
    name = next(k for k, v in tensors.items() if v.is_floating_point())
    tensors[name] = tensors[name].clone()
    tensors[name].view(-1)[0] = value
    bad = corrupt(good, tmp_path / "bad.safetensors", tensors=tensors)
    code, err = run("generate", bad, "--n", "2", "--out", tmp_path / "out")
    assert code == 1, err
    assert err == (f"error: {bad}: not a valid medvae model file (1 of its {len(tensors)} tensors holds "
                   "non-finite values, NaN or infinity)")
    assert not (tmp_path / "out").exists()


def test_a_pickle_or_other_file_is_not_a_safetensors_model_file_with_no_torch_warning(good, tmp_path):
    pickle = tmp_path / "model.pt"
    torch.save(load_file(str(good)), pickle)
    named = tmp_path / "pickle.safetensors"
    named.write_bytes(pickle.read_bytes())
    legacy = tmp_path / "legacy.pt"
    torch.save({"w": torch.zeros(2)}, legacy, _use_new_zipfile_serialization=False)
    for path in (pickle, named, legacy):
        for args in (["generate", path, "--n", "1", "--out", tmp_path / "out"],
                     ["train", "enhance", "--data", FILM, "--init", path, "--out", tmp_path / "e.safetensors"]):
            code, err = run(*args)
            assert code == 1 and err == (f"error: {path}: not a safetensors model file (it is a pickle, as "
                                         "torch.save writes; medvae never loads pickles)"), err
    png = tmp_path / "film.safetensors"
    png.write_bytes(FILM.read_bytes())
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[:-100])
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    for path, why in ((png, ""), (cut, " (its tensors run past the end of the file: is it cut short?)"),
                      (empty, " (it is empty)")):
        code, err = run("generate", path, "--n", "1", "--out", tmp_path / "out")
        assert code == 1 and err == f"error: {path}: not a safetensors model file{why}", err
        if path is not png:  # info describes a PNG by its content, whatever its name
            code, err = run("info", path)
            assert code == 1 and str(path) in err, err


# --- 13. configs that would take terabytes are refused before anything is allocated ------------------------

@pytest.mark.parametrize("change, what", [
    (dict(fields={"latent_dim": 10**9}), "the mlp_vae model its config describes would take"),
    (dict(fields={"hidden": [10**6]}), "the mlp_vae model its config describes would take"),
    (dict(fields={"in_shape": [1, 10**6, 10**6]}), "the mlp_vae model its config describes would take"),
])
def test_a_config_that_would_take_terabytes_is_refused_at_once(good, tmp_path, change, what):
    bad = corrupt(good, tmp_path / "big.safetensors", **change)
    code, err = run("generate", bad, "--n", "1", "--out", tmp_path / "out")
    assert code == 1 and what in err and "iB, above the limit of 4 GiB; set MEDVAE_MAX_MODEL_BYTES" in err, err


def test_a_segmenter_with_absurd_channels_or_size_is_refused_at_once(segmenter, tmp_path):
    wide = corrupt(segmenter, tmp_path / "wide.safetensors", fields={"channels": [10**6, 10**6]})
    big = corrupt(segmenter, tmp_path / "big.safetensors",
                  preprocessing=json.dumps({"pipeline": "segment", "size": 10**6, "multiple": 2}))
    for path, what in ((wide, "the segmenter model its config describes"),
                       (big, "one image at its preprocessing's size of 1000000 x 1000000")):
        code, err = run("segment", FILM, tmp_path / "seg", "--model", path)
        assert code == 1 and f"{path}: not a valid medvae model file ({what} would take" in err, err


def test_a_repeated_block_beyond_the_files_tensors_is_refused_before_building(segmenter, tmp_path):
    deep = corrupt(segmenter, tmp_path / "deep.safetensors", fields={"channels": [4] * 10**6})
    with pytest.raises(InputError, match=r"its config's channels does not fit its \d+ tensors"):
        load_model(deep)


def test_the_memory_limit_is_set_by_medvae_max_model_bytes(good, tmp_path, monkeypatch):
    model, _ = load_model(good)  # well under the default
    monkeypatch.setenv("MEDVAE_MAX_MODEL_BYTES", "1K")
    code, err = run("generate", good, "--n", "1", "--out", tmp_path / "out")
    assert code == 1 and "above the limit of 1 KiB; set MEDVAE_MAX_MODEL_BYTES" in err, err
    monkeypatch.setenv("MEDVAE_MAX_MODEL_BYTES", "lots")
    code, err = run("generate", good, "--n", "1", "--out", tmp_path / "out")
    assert code == 2 and "MEDVAE_MAX_MODEL_BYTES must be a number of bytes" in err, err
    monkeypatch.setenv("MEDVAE_MAX_MODEL_BYTES", "64M")
    code, err = run("generate", good, "--n", "2", "--out", tmp_path / "out")
    assert code == 0, err
    assert len(list((tmp_path / "out").glob("sample_*.png"))) == 2


def test_a_good_model_file_still_loads_and_describes_itself(good):
    model, info = load_model(good)
    assert info.kind == "mlp_vae" and info.n_tensors == len(model.state_dict())
    assert read_model_info(good).n_parameters == sum(v.numel() for v in model.state_dict().values())
    code, err = run("info", good)
    assert code == 0, err
