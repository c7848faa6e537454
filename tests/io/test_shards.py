"""Sharded batch runs (``--shard I/N``, or torchrun's RANK/WORLD_SIZE): disjoint shares whose union is the whole
folder, one merged table, and a clear word for a share with nothing in it."""

from __future__ import annotations

import csv
import shutil
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medvae.errors import UsageError
from medvae.io.batch import parse_shard, shard_inputs
from medvae.io.tables import merge_rows
from medvae_cli.main import app

FILM = Path(__file__).resolve().parents[2] / "sample_data" / "cxr" / "images" / "2168a917.png"


def five_films(tmp_path: Path) -> Path:
    """A folder ``in/`` of five copies of the sample film, ``f0.png`` .. ``f4.png``."""
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(5):
        shutil.copy(FILM, folder / f"f{i}.png")
    return folder


def invoke(*args, env=None):
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


def test_shares_are_disjoint_deterministic_and_cover_every_input():
    inputs = [Path(f"f{i:02d}.png") for i in range(11)]
    shares = [shard_inputs(inputs[::-1], f"{i}/3")[0] for i in (1, 2, 3)]
    assert sorted(p for s in shares for p in s) == inputs
    assert all(not set(a) & set(b) for a in shares for b in shares if a is not b)
    assert shard_inputs(inputs, "2/3") == (shares[1], (1, 3, 4, 11))
    for bad in ("0/2", "3/2", "a/b", "2"):
        with pytest.raises(UsageError, match="expected I/N"):
            parse_shard(bad)


def test_torchrun_gives_each_rank_its_share(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert parse_shard(None) == (1, 2)
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert parse_shard(None) is None


def test_two_shards_into_one_folder_convert_everything_once_and_merge_one_table(tmp_path):
    folder = five_films(tmp_path)
    out = tmp_path / "out"
    results = [invoke("segment", folder, out, "--shard", f"{i}/2", "--device", "cpu", "--no-progress")
               for i in (1, 2)]
    assert [r.exit_code for r in results] == [0, 0], [r.stderr for r in results]
    assert "note: shard 1/2: 3 of the 5 inputs" in results[0].stderr
    assert "segmented 2" in results[1].stdout
    assert sorted(p.name for p in out.glob("f?.png")) == [f"f{i}.png" for i in range(5)]
    with open(out / "lung_areas.csv", newline="") as f:
        assert sorted(Path(r["input"]).name for r in csv.DictReader(f)) == [f"f{i}.png" for i in range(5)]


def test_a_share_with_no_input_is_a_note_not_an_error(tmp_path):
    shutil.copy(FILM, tmp_path / "a.png")
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.move(tmp_path / "a.png", folder / "a.png")
    result = invoke("convert", folder, tmp_path / "out", "--format", "nii", "--shard", "2/2")
    assert result.exit_code == 0, result.stderr
    assert "shard 2/2: 0 of the 1 inputs" in result.stderr and not (tmp_path / "out").exists()


def test_concurrent_merges_lose_no_row(tmp_path):
    table = tmp_path / "t.csv"
    columns = ["input", "value"]

    def write(k):
        for j in range(10):
            merge_rows(table, columns, [[f"{k}-{j}", str(j)]])

    threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open(table, newline="") as f:
        assert len(list(csv.DictReader(f))) == 40


def test_torchrun_enhance_gives_each_rank_its_films_and_one_merged_table(tmp_path):
    import os
    import subprocess
    import sys

    folder = five_films(tmp_path)
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "medvae", "enhance", str(folder), str(out), "--no-progress"]
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "shard 1/2: 3 of the 5 inputs" in proc.stderr and "shard 2/2: 2 of the 5 inputs" in proc.stderr
    assert sorted(p.name for p in out.glob("f?.png")) == [f"f{i}.png" for i in range(5)]
    tables = list(out.glob("*.csv"))
    assert len(tables) == 1
    with open(tables[0], newline="") as f:
        assert sorted(Path(r["input"]).name for r in csv.DictReader(f)) == [f"f{i}.png" for i in range(5)]
    (out / "f3.png").unlink()  # as if the rank that wrote it had died first: a re-run does only what is missing
    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("enhanced 1,") == 1 and again.stderr.count("the output exists; skipped") == 4
    with open(tables[0], newline="") as f:
        assert sorted(Path(r["input"]).name for r in csv.DictReader(f)) == [f"f{i}.png" for i in range(5)]
