"""The class-conditional VAE-GAN, ``medvae oversample`` and ``evaluate oversampling``."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from medvae.errors import InputError, UsageError
from medvae.models import ConditionalVAEGAN, ConditionalVAEGANConfig


def small_config(spatial_dims: int, **kw) -> ConditionalVAEGANConfig:
    return ConditionalVAEGANConfig(spatial_dims=spatial_dims, in_shape=(1,) + (16,) * spatial_dims, channels=(8, 16),
                                   strides=(2, 2), latent_dim=4, num_classes=3, adv_warmup_epochs=0, **kw)


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_model_trains_and_draws_each_class_in_2d_and_3d(spatial_dims):
    model = ConditionalVAEGAN(small_config(spatial_dims)).train()
    batch = {"image": torch.rand(4, 1, *(16,) * spatial_dims), "label": torch.tensor([0, 1, 2, 1])}
    out = model.loss(batch)
    out.loss.backward()
    assert {"recon", "kl", "adv", "feature"} <= set(out.terms)
    assert torch.isfinite(model.discriminator_loss(batch).loss)
    draws = model.eval().draw(torch.tensor([0, 2]), generator=torch.Generator().manual_seed(0))
    assert draws.shape == (2, 1, *(16,) * spatial_dims) and 0 <= draws.min() and draws.max() <= 1
    again = model.draw(torch.tensor([0, 2]), generator=torch.Generator().manual_seed(0))
    assert torch.equal(draws, again)


def test_model_refuses_bad_classes_and_conditions():
    with pytest.raises(UsageError, match="num_classes must be an integer of 2 or more"):
        ConditionalVAEGANConfig(num_classes=1)
    model = ConditionalVAEGAN(small_config(2))
    with pytest.raises(ValueError, match="class indices must be in 0..2, got 0..3"):
        model.one_hot(torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="takes a condition of size 3, got none"):
        model.decode(torch.zeros(1, 4))
    with pytest.raises(ValueError, match="takes a condition of size 3, got one of size 2"):
        model.encode(torch.zeros(1, 1, 16, 16), torch.zeros(1, 2))


def write_digit_folders(root, per_class: int = 150, digits=(0, 1)):
    """Real MNIST digits of the embedded sample as PNGs, one folder per class."""
    from medvae.io.images import Image, write_image
    from medvae.tasks.generative.classifier import mnist_tensors

    x, y = mnist_tensors("train")
    for d in digits:
        folder = root / f"digit{d}"
        folder.mkdir(parents=True)
        for i, img in enumerate(x[y == d][:per_class]):
            write_image(Image(array=(img[0].numpy() * 255).astype(np.uint8), format="png", bits=8),
                        folder / f"{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small conditional VAE-GAN trained on real 0s and 1s (class folders), and its folder."""
    from medvae.tasks.oversampling.train import train_cvaegan

    root = tmp_path_factory.mktemp("cvaegan")
    data = write_digit_folders(root / "data")
    out = root / "cvae.safetensors"
    train_cvaegan(data=str(data), out=out, size=28, channels=(16, 32), latent_dim=2, epochs=10, batch_size=32,
                  progress=False, device="cpu", normalize="minmax", seed=0)
    return out, data


def test_conditioning_changes_what_is_drawn(trained):
    """A classifier medvae trains on the real images recognises the asked class in most draws."""
    from medvae.checkpoint import load_model
    from medvae.data.classes import load_labelled
    from medvae.tasks.oversampling.evaluate import OversamplingEvalConfig, predict, train_classifier

    model_path, data = trained
    model, info = load_model(model_path)
    assert info.preprocessing["classes"] == ["digit0", "digit1"]
    assert info.training["class_counts"] == {"digit0": 135, "digit1": 135}
    real = load_labelled(data, 28, normalize="minmax")
    net = train_classifier(real.images, real.labels, 2, OversamplingEvalConfig(classifier_epochs=2), seed=0)
    for k in (0, 1):
        draws = model.draw(torch.full((50,), k), generator=torch.Generator().manual_seed(k))
        recognised = (predict(net, draws).argmax(1) == k).float().mean().item()
        assert recognised >= 0.75, (k, recognised)  # 0.96 and 0.84 when written


def test_oversample_writes_the_class_and_a_manifest_that_matches(trained, tmp_path):
    from medvae.tasks.oversampling.oversample import oversample

    model_path, data = trained
    result = oversample(model_path, tmp_path / "o", class_name="digit1", n=7, device="cpu", data=data)
    rows = list(csv.DictReader(open(result.manifest)))
    synthetic = [r for r in rows if r["synthetic"] == "1"]
    assert len(synthetic) == 7 and {r["class"] for r in synthetic} == {"digit1"}
    assert sorted((tmp_path / "o" / r["file"]).resolve() for r in synthetic) == sorted(p.resolve() for p in result.files)
    assert all((tmp_path / "o" / r["file"]).is_file() for r in rows)  # the real ones too (relative paths)
    assert sum(r["synthetic"] == "0" for r in rows) == 300
    from medvae.io.images import read_image

    assert read_image(result.files[0]).array.shape[:2] == (28, 28)
    from medvae.errors import OutputExists

    with pytest.raises(OutputExists):
        oversample(model_path, tmp_path / "o", class_name="digit1", n=7, device="cpu")


def test_oversample_balance_tops_up_to_the_largest_class(trained, tmp_path):
    from medvae.checkpoint import read_model_info
    from medvae.tasks.oversampling.oversample import plan

    info = read_model_info(trained[0])
    info.training["class_counts"] = {"digit0": 135, "digit1": 20}
    assert plan(info, None, None, True) == {"digit1": 115}
    with pytest.raises(UsageError, match="not one of the model's classes: digit0, digit1"):
        plan(info, "cat", 3, False)
    with pytest.raises(UsageError, match="--class NAME with --n N, or --balance"):
        plan(info, "digit0", 3, True)
    with pytest.raises(UsageError, match="give --n N"):
        plan(info, "digit0", None, False)


def test_generate_refuses_a_conditional_model_and_names_oversample(trained, tmp_path):
    from medvae.tasks.generative.generate import generate

    with pytest.raises(UsageError, match="use 'medvae oversample cvae.safetensors --class NAME --n N'"):
        generate(trained[0], tmp_path / "g", device="cpu")


def test_labelled_data_errors_are_one_line(tmp_path):
    from medvae.data.classes import class_files, parse_class_limits

    (tmp_path / "one" / "a").mkdir(parents=True)
    (tmp_path / "one" / "a" / "x.png").write_bytes(b"")
    with pytest.raises(UsageError, match="found 1 class \\(a\\); a conditional model needs two or more"):
        class_files(tmp_path / "one")
    (tmp_path / "one" / "b").mkdir()
    with pytest.raises(InputError, match="the class folder 'b' holds no image"):
        class_files(tmp_path / "one")
    table = tmp_path / "t.csv"
    table.write_text("file,colour\nx.png,red\n")
    with pytest.raises(UsageError, match="needs a file column .* and a label column"):
        class_files(table)
    table.write_text("file,label\none/a/x.png,\n")
    with pytest.raises(InputError, match="row 2 has no label"):
        class_files(table)
    table.write_text("file,label\nmissing.png,cat\n")
    with pytest.raises(InputError, match="row 2 names 'missing.png', which is not a file"):
        class_files(table)
    with pytest.raises(UsageError, match="no such folder or CSV file"):
        class_files(tmp_path / "nowhere")
    assert parse_class_limits("8=4, 3=20") == {"8": 4, "3": 20}
    with pytest.raises(UsageError, match="give CLASS=N"):
        parse_class_limits("8=0")


def test_cli_train_cvaegan_with_one_class_exits_2_with_one_line(tmp_path):
    from typer.testing import CliRunner

    from medvae_cli.main import app

    (tmp_path / "d" / "only").mkdir(parents=True)
    (tmp_path / "d" / "only" / "x.png").write_bytes(b"")
    result = CliRunner().invoke(app, ["train", "cvaegan", "--data", str(tmp_path / "d"), "--out",
                                      str(tmp_path / "m.safetensors")])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "a conditional model needs two or more" in lines[0]


def test_no_synthetic_image_reaches_a_validation_or_test_split(monkeypatch):
    """Every sampler's images go into training only: a sentinel value drawn by the sampler is never scored."""
    from medvae.tasks.oversampling import evaluate as E
    from medvae.tasks.oversampling import samplers as S

    sentinel = 0.123
    trained_on, scored = [], []

    def fake_draw(sampler, images, labels, minority, count, seed, models):
        return torch.full((count, *images.shape[1:]), sentinel)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            scored.append(x)
            return torch.zeros(len(x), 10)

    def fake_train(images, labels, k, config, seed, weights=None):
        trained_on.append(images)
        return Net()

    monkeypatch.setattr(S, "draw", fake_draw)
    monkeypatch.setattr(S, "fit_vae", lambda *a, **k: None)
    monkeypatch.setattr(S, "fit_cvaegan", lambda *a, **k: None)
    monkeypatch.setattr(E, "train_classifier", fake_train)
    report = E.evaluate_oversampling(seeds=2, progress=False, ratios=(1.0,))
    assert len(report.results["cvaegan ×1"]) == 2 and len(report.results["random ×balance"]) == 2
    assert sum(bool((x == sentinel).all(dim=(1, 2, 3)).any()) for x in trained_on) == 2 * 10  # 5 samplers x 2
    assert not any(bool((x == sentinel).all(dim=(1, 2, 3)).any()) for x in scored)


def test_mnist_split_is_imbalanced_as_asked_and_disjoint():
    from medvae.tasks.oversampling.evaluate import mnist_split

    split = mnist_split(minority=8, count=4, seed=0)
    counts = torch.bincount(split.train[1], minlength=10)
    assert counts[8] == 4 and (counts[torch.arange(10) != 8] == 400).all()
    assert torch.bincount(split.test[1], minlength=10).tolist() == [50] * 10
    val_counts = torch.bincount(split.val[1], minlength=10)
    assert val_counts[8] == 1 and val_counts[0] == 50
    flat = lambda t: {tuple(v) for v in t.flatten(1).numpy().round(4).tolist()}  # noqa: E731
    assert not flat(split.val[0]) & flat(split.test[0])


def test_verdict_reports_a_miss_with_its_closest_rival():
    from medvae.tasks.oversampling.evaluate import OversamplingEvalConfig, OversamplingEvaluation, verdict

    row = lambda a, f: {"balanced_accuracy": 0, "macro_f1": f, "minority_recall": 0, "minority_auprc": a}  # noqa: E731
    report = OversamplingEvaluation(OversamplingEvalConfig(), [str(d) for d in range(10)], {})
    report.results = {"none": [row(0.5, 0.5), row(0.61, 0.5), row(0.53, 0.52)],
                      "cvaegan ×1": [row(0.7, 0.6), row(0.8, 0.62), row(0.75, 0.61)]}
    met, text = verdict(report)
    assert met and text.startswith("MET")
    report.results["tuned threshold"] = [row(0.5, 0.7), row(0.6, 0.7), row(0.55, 0.71)]
    met, text = verdict(report)
    assert not met and "macro_f1 -0.0933 against tuned threshold" in text
    from medvae.tasks.oversampling.evaluate import paired_p

    assert paired_p([0.7, 0.8], [0.5, 0.6]) == 0.0 and paired_p([0.5, 0.6], [0.7, 0.8]) == 1.0  # a constant gap
