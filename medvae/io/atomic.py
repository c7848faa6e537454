"""Write files so that a crash never leaves half of one: write a temporary sibling, then rename."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from medvae.errors import MedvaeError


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once, at import: os.umask can only be read by setting it


#: the longest file name most file systems allow, in bytes
NAME_MAX = 255
#: what ``tempfile`` adds to a prefix: eight random characters (letters, digits, ``_``; never a dot)
_RANDOM = r"[a-z0-9_]{8}"


class InProgress(MedvaeError):
    """Another live medvae run is writing ``path`` now (its temporary file is there): leave it to that run
    (a batch counts it apart; a command with one output fails with this line, exit code 1)."""

    def __init__(self, path) -> None:
        super().__init__(f"{path}: in progress by another run; left to it")
        self.path = path


def _parts(path: Path, kind: str) -> tuple[str, str]:
    """``(prefix, suffix)`` of the temporary names for ``path``: ``.STEM.PID.XXXXXXXX.part[SUFFIX]``, the stem cut so
    that the whole name fits in :data:`NAME_MAX` bytes wherever ``path``'s own name fits."""
    suffix = "" if kind == "folder" else "".join(path.suffixes[-2:]) if path.suffix == ".gz" else path.suffix
    stem = path.name[: len(path.name) - len(suffix)] if suffix else path.name
    end = f".part{suffix}"
    room = NAME_MAX - len(os.fsencode(f"..{os.getpid()}.{'x' * 8}{end}"))
    raw = os.fsencode(stem)
    if len(raw) > room:  # cut on bytes; a broken UTF-8 sequence stays as surrogate escapes
        stem = os.fsdecode(raw[:max(room, 1)])
    return f".{stem}.{os.getpid()}.", end


def _claim(path: Path, kind: str) -> tuple[str, str]:
    """Remove temporary files for ``path`` that medvae runs no longer alive left behind (a killed run), and raise
    :class:`InProgress` where a live one other than this process is writing it. Returns :func:`_parts`."""
    import re
    import shutil

    prefix, end = _parts(path, kind)
    own = prefix.rsplit(".", 2)[0] + "."  # ".STEM."
    pattern = re.compile(re.escape(own) + r"(\d+)\." + _RANDOM + re.escape(end) + r"(\.old)?")
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return prefix, end
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if not match:
            continue
        pid = int(match.group(1))
        if pid != os.getpid() and _alive(pid):
            raise InProgress(path)
        if pid != os.getpid():
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                Path(entry.path).unlink(missing_ok=True)
    return prefix, end


def _alive(pid: int) -> bool:
    """Whether a process ``pid`` runs (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # there, but another user's
    return True


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``, on error delete it.

    The temporary name (``.STEM.PID.XXXXXXXX.part.SUFFIX``) keeps ``path``'s suffix, so writers that choose a
    format from the extension (matplotlib, nibabel) still do the right thing, and fits wherever ``path`` fits.
    Temporary files of ``path`` that a killed run left are removed first; one a live run is writing raises
    :class:`InProgress`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix, end = _claim(path, "file")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=end)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it replaces ``path`` (the old folder, if any, is
    moved aside and then removed), on error it is deleted and ``path`` is left as it was. Named, cleaned and
    guarded as :func:`atomic_path` does for files."""
    import shutil

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix, end = _claim(path, "folder")
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=prefix, suffix=end))
    old = tmp.with_name(tmp.name + ".old")
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_UMASK)  # mkdtemp makes it private
        if path.exists():
            path.rename(old)
        tmp.rename(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def write_bytes(path: str | os.PathLike, payload: bytes) -> None:
    """Write ``payload`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(payload)


def write_json(path: str | os.PathLike, obj) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())
