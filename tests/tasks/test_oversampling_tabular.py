"""The tabular conditional VAE-GAN: ``train cvaegan --data table.csv --label COLUMN``, ``oversample`` on its model,
and the cross-validation of ``medvae.tasks.oversampling.tabular_eval``."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from medvae.errors import InputError, UsageError

MEANS = {"common": np.array([0.0, 0.0, 10.0]), "rare": np.array([3.0, -3.0, 14.0])}


def write_blobs(path, n_common: int = 240, n_rare: int = 40, seed: int = 0):
    """Two Gaussian blobs with distinct means, one per class, as a CSV (features a, b, c and a class column)."""
    rng = np.random.default_rng(seed)
    rows = [[*rng.normal(MEANS[name], 0.6), name] for name, n in (("common", n_common), ("rare", n_rare))
            for _ in range(n)]
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([["a", "b", "c", "kind"], *rows])
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from medvae.tasks.oversampling.tabular import train_tabular_cvaegan

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("tabular")
    data = write_blobs(root / "blobs.csv")
    out = root / "table.safetensors"
    result = train_tabular_cvaegan(data=str(data), label="kind", out=out, epochs=40, batch_size=32,
                                   progress=False, device="cpu", seed=0)
    return out, data, result


def test_training_writes_a_model_file_that_loads_with_its_table_metadata(trained):
    from medvae.checkpoint import load_model, read_model_info
    from medvae.models import TabularCVAEGAN

    out, _, result = trained
    model, info = load_model(out)
    assert isinstance(model, TabularCVAEGAN) and info.kind == "tabular_cvae_gan"
    pre = info.preprocessing
    assert pre["features"] == ["a", "b", "c"] and pre["label"] == "kind" and pre["classes"] == ["common", "rare"]
    assert len(pre["mean"]) == len(pre["std"]) == 3 and 10 < pre["mean"][2] < 14  # the raw units' mean
    assert info.training["class_counts"] == result.counts == {"common": 216, "rare": 36}  # 10 % held out
    assert info.training["command"].startswith("medvae train cvaegan --data blobs.csv --label kind")
    assert read_model_info(out).config["num_features"] == 3


def test_conditioning_draws_each_class_near_its_own_mean(trained):
    """Draws of a class lie nearer that class's mean than the other class's, for most rows, in raw units."""
    from medvae.checkpoint import load_model
    from medvae.tasks.oversampling.tabular import TableSampler

    model, info = load_model(trained[0])
    pre = info.preprocessing
    sampler = TableSampler(model, *(np.asarray(pre[k]) for k in ("mean", "std", "low", "high")))
    for index, name in enumerate(pre["classes"]):
        rows = sampler.draw(index, 200, seed=1)
        other = "rare" if name == "common" else "common"
        own = np.linalg.norm(rows - MEANS[name], axis=1)
        far = np.linalg.norm(rows - MEANS[other], axis=1)
        assert (own < far).mean() > 0.9, name
        assert np.linalg.norm(rows.mean(0) - MEANS[name]) < 1.0, name
    assert np.array_equal(sampler.draw(1, 5, seed=3), sampler.draw(1, 5, seed=3))
    same_z = model.generate(torch.zeros(1, model.latent_dim), model.one_hot(torch.tensor([0])))
    assert not torch.allclose(same_z, model.generate(torch.zeros(1, model.latent_dim),
                                                     model.one_hot(torch.tensor([1]))))


def test_oversample_writes_the_synthetic_rows_and_the_whole_table(trained, tmp_path):
    from medvae.tasks.oversampling.oversample import oversample

    model_path, data, _ = trained
    result = oversample(model_path, tmp_path / "o", class_name="rare", n=25, device="cpu", seed=2)
    with open(result.table, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["a", "b", "c", "kind", "synthetic"] and result.manifest is None
    assert len(rows) == 25 and {r["kind"] for r in rows} == {"rare"} and {r["synthetic"] for r in rows} == {"1"}
    first = [float(rows[0][c]) for c in "abc"]
    result = oversample(model_path, tmp_path / "o", balance=True, data=data, device="cpu", seed=2, overwrite=True)
    assert result.counts == {"rare": 216 - 36}
    with open(result.manifest, newline="") as f:
        table = list(csv.DictReader(f))
    real, synthetic = [r for r in table if r["synthetic"] == "0"], [r for r in table if r["synthetic"] == "1"]
    assert len(real) == 280 and len(synthetic) == 180 and table[:280] == real  # real rows first, all of them
    assert {r["kind"] for r in synthetic} == {"rare"} and [float(synthetic[0][c]) for c in "abc"] == first
    with open(result.table, newline="") as f:
        assert len(list(csv.DictReader(f))) == 180
    from medvae.errors import OutputExists

    with pytest.raises(OutputExists):
        oversample(model_path, tmp_path / "o", class_name="rare", n=3, device="cpu")
    with pytest.raises(UsageError, match="format is for images"):
        oversample(model_path, tmp_path / "p", class_name="rare", n=3, fmt="png", device="cpu")


def test_no_synthetic_row_reaches_a_test_fold_and_generators_see_training_rows_only(monkeypatch):
    """Row ids as a feature: every resampler is fed training rows only, every scored row is a real row of the
    untouched test fold, and the test folds cover the table once."""
    from medvae.tasks.oversampling import tabular, tabular_eval as E

    rng = np.random.default_rng(0)
    n = 120
    x = np.column_stack([np.arange(n, dtype=float), rng.normal(size=n), rng.normal(size=n)])
    y = (np.arange(n) % 10 == 0).astype(int)  # 12 minority rows
    x[y == 1, 1] += 3
    fed, trained_on, scored = [], [], []
    real_fit, real_classifier = tabular.fit_tabular, E.fit_classifier

    def spy_fit(rows, labels, k, **settings):
        fed.append(set(rows[:, 0].tolist()))
        return real_fit(rows, labels, k, **{**settings, "epochs": 1})

    class Scored:  # the classifier, noting the rows it is asked to score
        def __init__(self, rows, labels, weight, seed):
            trained_on.append(rows)
            self.classifier = real_classifier(rows, labels, weight, seed)
            self.classes_ = self.classifier.classes_

        def predict_proba(self, rows):
            scored.append(rows)
            return self.classifier.predict_proba(rows)

    monkeypatch.setattr(tabular, "fit_tabular", spy_fit)
    monkeypatch.setattr(E, "fit_classifier", Scored)
    results = E.evaluate_table(x, y, folds=4, seed=0, generator_steps=5)
    assert set(results) == set(E.METHODS) and all(len(r) == 4 for r in results.values())
    folds = E.fold_indices(y, 4, 0)
    tests = [set(test.tolist()) for _, test in folds]
    assert sorted(i for t in tests for i in t) == list(range(n))
    assert len(fed) == 4 and all(f.isdisjoint(t) for f, t in zip(fed, tests))  # the generator: training rows only
    assert len(scored) == len(trained_on) == 4 * len(E.METHODS)
    for i, (rows, used) in enumerate(zip(scored, trained_on)):
        test = x[folds[i // len(E.METHODS)][1]]
        assert np.array_equal(rows, test)  # the scored rows are the test fold itself, untouched
        assert not (used[:, None, :] == test[None, :, :]).all(axis=2).any()  # and none of them was trained on
    for method in ("random", "smote", "adasyn", "cvaegan"):
        made = E.resample(method, x[folds[0][0]], y[folds[0][0]], E.TableEvalConfig(generator_steps=5), 0)
        assert made.synthetic.sum() > 0 and np.array_equal(made.x[~made.synthetic], x[folds[0][0]])
        assert np.bincount(made.y[made.synthetic]).argmax() == 1  # the minority is what is added


def test_verdict_and_paired_test_say_what_happened():
    from medvae.tasks.oversampling.tabular_eval import compare, paired_p, verdict

    row = lambda a, f: {"minority_auprc": a, "macro_f1": f, "balanced_accuracy": 0, "minority_recall": 0}  # noqa: E731
    better = {"t": {"cvaegan": [row(0.6 + i / 100, 0.7) for i in range(8)],
                    "none": [row(0.5 + i / 200, 0.6 - i / 100) for i in range(8)]}}
    met, text = verdict(compare(better))
    assert met and text.startswith("MET") and "no method is significantly better" in text
    worse = {"t": {"cvaegan": [row(0.4, 0.5 + i / 100) for i in range(8)],
                   "smote": [row(0.6 + i / 100, 0.7) for i in range(8)]}}
    met, text = verdict(compare(worse))
    assert not met and "significantly worse than smote (minority_auprc), smote (macro_f1)" in text
    assert paired_p([1, 1], [1, 1]) == 1.0 and paired_p([0.1] * 3, [0.2] * 3) > 0.5


def test_bad_tables_are_one_line_errors_naming_the_problem(tmp_path):
    from medvae.tasks.oversampling.tabular import limit_rows, read_table

    good = write_blobs(tmp_path / "good.csv", 6, 3)
    with pytest.raises(UsageError, match="label 'colour': good.csv has no such column; its columns are a, b, c, kind"):
        read_table(good, "colour")
    with pytest.raises(UsageError, match="features: good.csv has no feature column 'z'"):
        read_table(good, "kind", ("a", "z"))
    with pytest.raises(UsageError, match="no such CSV file"):
        read_table(tmp_path / "missing.csv", "kind")
    text = tmp_path / "text.csv"
    text.write_text("a,site,kind\n1,north,x\n2,south,y\n")
    with pytest.raises(UsageError, match="column 'site' is not numeric \\(row 2: 'north'\\); give --features"):
        read_table(text, "kind")
    assert read_table(text, "kind", ("a",)).features.tolist() == [[1.0], [2.0]]
    one = tmp_path / "one.csv"
    one.write_text("a,kind\n1,x\n2,x\n")
    with pytest.raises(UsageError, match="found 1 class \\(x\\) in column 'kind'; a conditional model needs two"):
        read_table(one, "kind")
    gaps = tmp_path / "gaps.csv"
    gaps.write_text("a,kind\n1,x\n,y\n")
    with pytest.raises(InputError, match="row 3 has no value in column 'a'"):
        read_table(gaps, "kind")
    gaps.write_text("a,kind\n1,x\n2,\n")
    with pytest.raises(InputError, match="row 3 has no label"):
        read_table(gaps, "kind")
    gaps.write_text("a,kind\n1,x\ninf,y\n")
    with pytest.raises(InputError, match="row 3 has 'inf' in column 'a'; give finite numbers"):
        read_table(gaps, "kind")
    table = read_table(good, "kind")
    with pytest.raises(UsageError, match="class limit: no class 'fraud'; the classes are common, rare"):
        limit_rows(table, {"fraud": 2})
    with pytest.raises(UsageError, match="class_limit must be a positive integer, got 0"):
        limit_rows(table, {"rare": 0})
    assert np.bincount(limit_rows(table, {"rare": 2}).labels).tolist() == [6, 2]


@pytest.mark.parametrize("args, code, message", [
    (["--label", "colour"], 2, "--label 'colour': blobs.csv has no such column"),
    (["--label", "kind", "--class-limit", "fraud=3"], 2, "class limit: no class 'fraud'"),
    (["--label", "kind", "--class-limit", "rare=0"], 2, "class limit 'rare=0': give CLASS=N"),
    (["--label", "kind", "--size", "32"], 2, "--size is for images; a table (--label) takes --hidden"),
    (["--label", "kind", "--features", "a,site"], 2, "--features: blobs.csv has no feature column 'site'"),
])
def test_cli_train_cvaegan_on_a_table_refuses_with_one_line(tmp_path, args, code, message):
    from typer.testing import CliRunner

    from medvae_cli.main import app

    data = write_blobs(tmp_path / "blobs.csv", 10, 5)
    result = CliRunner().invoke(app, ["train", "cvaegan", "--data", str(data), "--out", str(tmp_path / "m.safetensors"),
                                      *args])
    lines = result.output.strip().splitlines()
    assert result.exit_code == code and len(lines) == 1 and message in lines[0], result.output
    assert not (tmp_path / "m.safetensors").exists()


def test_cli_trains_on_a_table_and_oversamples_it(tmp_path):
    from typer.testing import CliRunner

    from medvae_cli.main import app

    data = write_blobs(tmp_path / "blobs.csv", 60, 12)
    model = tmp_path / "m.safetensors"
    runner = CliRunner()
    result = runner.invoke(app, ["train", "cvaegan", "--data", str(data), "--label", "kind", "--epochs", "2",
                                 "--hidden", "16,16", "--out", str(model), "--device", "cpu", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "trained cvaegan on 65 rows (common 54, rare 11; 7 held out) for 2 epochs" in result.output
    result = runner.invoke(app, ["oversample", str(model), "--balance", "--data", str(data), "--out",
                                 str(tmp_path / "o"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "wrote 43 synthetic rows (rare 43)" in result.output and "manifest.csv (with the real rows)" in result.output
    with open(tmp_path / "o" / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 72 + 43 and sum(r["synthetic"] == "1" for r in rows) == 43
    result = runner.invoke(app, ["info", str(model)])
    assert result.exit_code == 0 and "tabular_cvae_gan" in result.output
    result = runner.invoke(app, ["generate", str(model), "--out", str(tmp_path / "g")])
    assert result.exit_code == 2 and "use 'medvae oversample MODEL --class NAME --n N'" in result.output
