"""The per-input CSV tables batch commands write (``lung_areas.csv``, ``chest_check.csv``, ``scores.csv``).

One rule for all of them, :func:`merge_rows`: a table is keyed by its first column (the input); rows an earlier run
(or another shard of this one) wrote for other inputs are kept in their order, this run's rows replace those for
the same inputs and the rest follow. The read-merge-write holds an exclusive lock on ``.NAME.lock`` beside the table
(``fcntl.flock``; local file systems and NFS v4), so shards writing into one folder at once lose no row. File names
that are not UTF-8 are written as the bytes they are (surrogate escapes). The table appears whole or not at all.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``.NAME.lock`` beside ``path`` while inside (no lock where ``fcntl`` is missing)."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock; shards into one folder are then not safe
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def merge_rows(path: str | os.PathLike, columns: list[str], rows: list[list]) -> Path:
    """Write ``rows`` (lists in ``columns``' order, keyed by the first) into the table ``path`` (see the module)."""
    from medvae.io.atomic import atomic_path

    path = Path(path)
    new = {str(r[0]): list(r) for r in rows}
    with locked(path):
        table = []
        for old in _rows_of(path, columns):
            table.append(new.pop(old[0]) if old[0] in new else old)
        table += new.values()
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(columns)
        writer.writerows(table)
        with atomic_path(path) as tmp:
            Path(tmp).write_text(buffer.getvalue(), encoding="utf-8", errors="surrogateescape")
    return path


def _rows_of(path: Path, columns: list[str]) -> list[list[str]]:
    """The rows of an existing table with these ``columns`` (none if there is none, or its header differs)."""
    try:
        with open(path, newline="", encoding="utf-8", errors="surrogateescape") as f:
            rows = list(csv.reader(f))
    except (FileNotFoundError, IsADirectoryError, csv.Error):
        return []
    if not rows or rows[0] != columns:
        return []
    return [r for r in rows[1:] if len(r) == len(columns)]
