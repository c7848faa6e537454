"""A folder written aside and swapped in: a failure leaves the old one as it was and nothing behind."""

import pytest

from medvae.io.atomic import atomic_folder


def test_a_new_folder_replaces_the_old_one_whole(tmp_path):
    out = tmp_path / "set"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    with atomic_folder(out) as tmp:
        (tmp / "new.txt").write_text("new")
        assert not (out / "new.txt").exists()  # nothing appears before the swap
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]


def test_a_failure_keeps_the_old_folder_and_leaves_nothing(tmp_path):
    out = tmp_path / "set"
    out.mkdir()
    (out / "kept.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_folder(out) as tmp:
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("interrupted")
    assert [p.name for p in out.iterdir()] == ["kept.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]
