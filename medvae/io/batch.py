"""The batch runner every batch command uses (convert, enhance, segment, synthesize, ...).

One input (a file, a folder of files, a DICOM series folder) at a time, into an output tree that mirrors
the input tree:

* recursive discovery of image files (DICOM files are recognised by content, whatever their names);
* outputs that already exist (a file, or a series folder medvae wrote) are skipped unless ``overwrite``,
  and listed in the report (:meth:`BatchReport.skip_notes` words each as a note); each output is written
  under a temporary name and renamed, so a crash leaves no half file;
* a bad input does not stop the run: its error is recorded and the next input is processed;
* the output folder may not be, or lie inside, the input folder: medvae never writes into its inputs;
* sharding (:func:`shard_inputs`): with ``shard=(i, n)``, or under ``torchrun`` (its ``RANK`` and ``WORLD_SIZE``),
  a run takes every n-th input of the sorted list starting at the i-th, so n runs on one or several machines
  (a shared file system) split a folder without overlap; each writes its outputs as one run would.

The caller gives a ``process(src, dst)`` function that reads ``src``, writes ``dst`` and returns
``(path written, notes)``; the runner
returns a :class:`BatchReport` with what was done, skipped and failed, and why.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from medvae.io.images import SUFFIXES, format_from_suffix, sniff_format
from medvae.errors import InputError, OutputExists, UsageError, first_line
from medvae.io.atomic import InProgress

IMAGE_SUFFIXES = tuple(s for suffixes in SUFFIXES.values() for s in suffixes)


@dataclass
class BatchReport:
    """What a batch run did. ``failed`` holds (input, reason) pairs; ``notes`` (input, note) pairs; ``ignored``
    (entry, reason) pairs for what the tree walk passed over (:func:`discover`)."""

    done: list[tuple[Path, Path]] = field(default_factory=list)
    skipped: list[tuple[Path, Path]] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    notes: list[tuple[Path, str]] = field(default_factory=list)
    ignored: list[tuple[Path, str]] = field(default_factory=list)
    busy: list[tuple[Path, Path]] = field(default_factory=list)  # (input, output) another live run is writing
    shard: tuple[int, int, int, int] | None = None  # (i, n, inputs of this shard, inputs in all), i from 0
    errors: list[tuple[Path, BaseException]] = field(default_factory=list)  # each failure's exception (--debug)

    @property
    def exit_code(self) -> int:
        """0 when every input worked (or was already done), 1 when any failed."""
        return 1 if self.failed else 0

    def record(self, src: Path, output: Path, error: Exception) -> None:
        """File an input whose processing raised ``error``: skipped where another run wrote its output first or
        is writing it now (runs into one folder at once), else failed, with the reason."""
        if isinstance(error, OutputExists):
            self.skipped.append((src, Path(error.path)))
        elif isinstance(error, InProgress):
            self.busy.append((src, Path(error.path)))
        else:
            self.failed.append((src, _reason(error, src)))
            self.errors.append((src, error))

    def skip_notes(self) -> list[str]:
        """One line per output that existed and was skipped, worded as :class:`medvae.errors.OutputExists`
        words it for commands with one output, so every command says the same."""
        return [str(OutputExists(output)) for _, output in self.skipped]

    def summary(self, verb: str = "converted") -> str:
        """A few lines for people: counts, then each failed input and why."""
        parts = [f"{verb} {len(self.done)}"]
        if self.skipped:
            parts.append(f"skipped {len(self.skipped)} already done (--overwrite redoes them)")
        if self.busy:
            parts.append(f"left {len(self.busy)} to another run writing them now")
        parts.append(f"{len(self.failed)} failed" + (":" if self.failed else ""))
        lines = [", ".join(parts)]
        lines += [f"  {path}: {reason}" for path, reason in self.failed]
        return "\n".join(lines)


def parse_shard(shard) -> tuple[int, int] | None:
    """``"2/4"`` (the second of four shares, as people count) or ``(1, 4)`` (from 0) -> ``(1, 4)``; None: the
    share ``torchrun`` gives this process (``RANK`` of ``WORLD_SIZE``), or None outside it.

    Raises:
        UsageError: not ``I/N`` with 1 <= I <= N.
    """
    if shard is None:
        world = int(os.environ.get("WORLD_SIZE", "1") or 1)
        return (int(os.environ.get("RANK", "0") or 0), world) if world > 1 else None
    if isinstance(shard, tuple):
        return shard
    try:
        i, n = (int(v) for v in str(shard).split("/"))
    except ValueError:
        i = n = 0
    if not 1 <= i <= n:
        raise UsageError(f"shard {shard!r}: expected I/N with 1 <= I <= N, such as 1/2 and 2/2 for two runs",
                         param="shard")
    return i - 1, n


def shard_inputs(inputs: list, shard) -> tuple[list, tuple[int, int, int, int] | None]:
    """This shard's inputs (every n-th of the sorted ``inputs`` from the i-th) and ``(i, n, count, total)``."""
    share = parse_shard(shard)
    if share is None:
        return inputs, None
    i, n = share
    mine = sorted(inputs)[i::n]
    return mine, (i, n, len(mine), len(inputs))


def strip_suffix(name: str) -> str:
    """``scan.nii.gz`` → ``scan``; ``IM0001`` → ``IM0001``; ``a.b.png`` → ``a.b``."""
    lower = name.lower()
    for suffix in sorted(IMAGE_SUFFIXES, key=len, reverse=True):
        if lower.endswith(suffix):
            return name[: len(name) - len(suffix)]
    return name


def is_image_file(path: Path) -> bool:
    """Whether ``path`` is worth trying: an image suffix, or DICOM content under any other name."""
    if path.name.startswith(".") or path.name.upper() == "DICOMDIR":
        return False
    if format_from_suffix(path) is not None:
        return True
    try:
        return path.stat().st_size > 132 and sniff_format(path) == "dicom"
    except OSError:
        return False


def discover(root: str | os.PathLike, *, series: bool = False,
             ignored: list[tuple[Path, str]] | None = None) -> list[Path]:
    """The inputs under ``root``: image files found recursively, sorted.

    Folders reached through a symbolic link are walked like any other, once: a link to a folder already walked
    (a loop back to an ancestor, or a second link to the same folder) is not followed again. Entries that are
    not inputs although they look like some are listed in ``ignored`` as ``(path, reason)`` when it is given:
    broken links, links already walked, FIFOs, sockets and devices, and folders that cannot be listed. Hidden
    files (``.name``) and ``DICOMDIR`` are left out without a word.

    Args:
        root: a file or folder.
        series: treat each folder holding DICOM files as one input (a series read as a volume) instead
            of reading its files one by one.
        ignored: a list to append the entries that were passed over, with why.
    """
    root = Path(root)
    if not root.exists():
        raise InputError(f"{root}: no such file or folder")
    if root.is_file():
        return [root]
    files = sorted(_walk(root, [] if ignored is None else ignored))
    if not series:
        return files
    units: list[Path] = []
    for path in files:
        if format_from_suffix(path) in (None, "dicom"):
            if path.parent not in units:
                units.append(path.parent)
        else:
            units.append(path)
    return sorted(units)


def _walk(root: Path, ignored: list[tuple[Path, str]]) -> list[Path]:
    """The image files under ``root`` (see :func:`discover`), following each linked folder once."""
    files: list[Path] = []
    walked: set[Path] = set()
    folders = [root]
    while folders:
        folder = folders.pop()
        real = folder.resolve()
        if real in walked:
            ignored.append((folder, "a link to a folder already walked (a loop, or a second link to it); "
                                    "not followed again"))
            continue
        walked.add(real)
        try:
            entries = list(os.scandir(folder))
        except OSError as e:
            ignored.append((folder, f"the folder cannot be listed ({e.strerror or type(e).__name__})"))
            continue
        for entry in entries:
            path = Path(entry.path)
            try:
                if entry.is_dir():
                    folders.append(path)
                elif entry.is_file():
                    if is_image_file(path):
                        files.append(path)
                elif not entry.name.startswith("."):
                    ignored.append((path, _not_a_file(path, entry)))
            except OSError as e:
                ignored.append((path, f"cannot be read ({e.strerror or type(e).__name__})"))
    return files


def _not_a_file(path: Path, entry: os.DirEntry) -> str:
    """Why an entry that is neither a file nor a folder is passed over."""
    import stat

    if entry.is_symlink() and not path.exists():
        return "a broken link: what it points to does not exist"
    mode = path.stat().st_mode
    kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")
    return f"{kind}, not a file medvae reads"


def output_for(src: Path, in_root: Path, out_root: Path, suffix: str) -> Path:
    """Where ``src``'s output goes: the same relative place under ``out_root``, with ``suffix``."""
    if src == in_root:
        name = in_root.name if src.is_dir() else strip_suffix(src.name)
        return out_root / (name + suffix)
    rel = src.relative_to(in_root)
    return out_root / rel.parent / (strip_suffix(rel.name) + suffix)


def check_output_location(in_root: Path, out_root: Path) -> None:
    """Refuse an output folder that is, or lies inside, the input folder."""
    if in_root.is_dir():
        inside = out_root.resolve() == in_root.resolve() or in_root.resolve() in out_root.resolve().parents
        if inside:
            raise UsageError(f"output {out_root} is inside the input folder {in_root}; medvae never writes "
                             "into its inputs: choose an output folder elsewhere", param="output")


def run_batch(inputs: list[Path], in_root: Path, out_root: Path,
              process: Callable[[Path, Path], tuple[Path, list[str]] | Future],
              *, suffix: str | Callable[[Path], str], overwrite: bool = False, progress: bool = True, single_output: Path | None = None,
              desc: str = "converting", ignored: list[tuple[Path, str]] = (),
              shard: tuple[int, int, int, int] | None = None) -> BatchReport:
    """Run ``process(src, dst)`` over ``inputs``, carrying on past failures.

    Args:
        inputs: files or series folders (from :func:`discover`).
        in_root: the folder the inputs were found in (or the single input file).
        out_root: the output folder mirroring ``in_root``.
        process: reads ``src``, writes ``dst`` (atomically) and returns the path it wrote (a DICOM volume
            goes to a folder) and notes worth telling the user; or a ``concurrent.futures.Future`` of
            those, so that writing one output overlaps with the next input (at most one is unfinished;
            its failure is reported for its own input).
        suffix: the output suffix (``".png"``, ``".nii.gz"``, ...), or a function giving each input's
            (to keep every input's own format).
        overwrite: redo outputs that already exist.
        progress: show a progress bar.
        single_output: for a single input file, the exact output path (instead of mirroring).
        ignored: what :func:`discover` passed over, kept in the report.
        shard: what :func:`shard_inputs` said of ``inputs`` (this shard's already), kept in the report.
    """
    check_output_location(in_root, out_root)
    if not inputs and shard is None:
        raise InputError(f"{in_root}: no image files found (looked for DICOM, NIfTI, PNG, TIFF, JPEG, .npy)")
    report = BatchReport(ignored=list(ignored), shard=shard)
    claimed: dict[Path, Path] = {}
    bar = inputs
    if progress and len(inputs) > 1:  # tqdm (and the asyncio it brings) only where a bar is shown
        from tqdm.auto import tqdm

        bar = tqdm(inputs, desc=desc, unit="file", leave=False)
    pending: list[tuple[Path, Path, Future]] = []

    def settle(keep: int) -> None:  # wait for the oldest unfinished outputs (see ``process`` above)
        while len(pending) > keep:
            src, key, future = pending.pop(0)
            try:
                written, notes = future.result()
            except Exception as e:
                report.record(src, key, e)
                del claimed[key]
                continue
            report.done.append((src, written))
            report.notes += [(src, note) for note in notes]

    sources = {p.resolve() for p in inputs}
    for src in bar:
        dst = single_output or output_for(src, in_root, out_root, suffix(src) if callable(suffix) else suffix)
        key = dst.with_suffix("") if dst.suffix == ".dcm" else dst
        if (dst.resolve() in sources or key.resolve() in sources) and src == in_root:  # one input: bad usage
            raise UsageError(f"output {out_root}: the output {dst} would be the input itself; medvae never "
                             "overwrites an input: choose an output elsewhere", param="output")
        if dst.resolve() in sources or key.resolve() in sources:
            report.failed.append((src, f"its output {dst} is an input; medvae never overwrites an input: "
                                       "choose an output folder outside the inputs"))
            continue
        if key in claimed:
            report.failed.append((src, f"its output {dst} would overwrite the output of {claimed[key]}; "
                                       "rename one of them"))
            continue
        claimed[key] = src
        done_before = dst if dst.exists() else key if dst.suffix == ".dcm" and _is_medvae_series(key) else None
        if done_before is not None and not overwrite:
            report.skipped.append((src, done_before))
            continue
        try:
            result = process(src, dst)
        except KeyboardInterrupt:
            raise
        except Exception as e:  # carry on: one bad file must not stop the batch
            report.record(src, key, e)
            del claimed[key]  # it wrote nothing, so its name is free for another input
            continue
        if isinstance(result, Future):
            pending.append((src, key, result))
            settle(keep=1)
            continue
        written, notes = result
        report.done.append((src, written))
        report.notes += [(src, note) for note in notes]
    settle(keep=0)
    return report


def _is_medvae_series(folder: Path) -> bool:
    from medvae.io.dicom import is_medvae_series

    return is_medvae_series(folder)


def _reason(error: Exception, src: Path) -> str:
    """One line saying why ``src`` failed, without repeating its path."""
    text = first_line(error)
    for prefix in (f"{src}: ", f"{src.name}: "):
        if text.startswith(prefix):
            return text[len(prefix):]
    from medvae.errors import MedvaeError

    return text if isinstance(error, MedvaeError) else f"{type(error).__name__}: {text}"
