"""Overlap reading and writing with compute in a batch: read ahead and write behind, in threads.

Reading (pydicom, PIL) and writing (zlib, file I/O) release the GIL for much of their time, and torch
releases it while it computes, so on a few cores a batch is faster when the next image is read and the
last one written while the model runs. Memory stays flat: at most ``lookahead`` images are read ahead
and one result waits to be written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def pipelined(inputs: list[Path], read: Callable, compute: Callable, write: Callable, *,
              lookahead: int = 1) -> Iterator[Callable[[Path, Path], Future]]:
    """A ``process(src, dst)`` for :func:`medvae.io.batch.run_batch` that returns a write future.

    Args:
        inputs: the batch's inputs in the order the runner visits them (for reading ahead).
        read: ``src -> image``, run in a reader thread.
        compute: ``image -> result``, run in the caller's thread.
        write: ``(src, dst, image, result) -> (path written, notes)``, run in a writer thread.
        lookahead: how many inputs to read ahead of the one being computed.
    """
    order = {src: i for i, src in enumerate(inputs)}
    reads: dict[Path, Future] = {}
    with ThreadPoolExecutor(1, thread_name_prefix="medvae-read") as reader, \
            ThreadPoolExecutor(1, thread_name_prefix="medvae-write") as writer:

        def process(src: Path, dst: Path) -> Future:
            i = order[src]
            for ahead in inputs[i:i + 1 + lookahead]:
                if ahead not in reads:
                    reads[ahead] = reader.submit(read, ahead)
            future = reads.pop(src)
            for stale in [p for p in reads if order[p] < i]:  # inputs the runner skipped
                reads.pop(stale).cancel()
            image = future.result()
            result = compute(image)
            return writer.submit(write, src, dst, image, result)

        try:
            yield process
        finally:
            for future in reads.values():
                future.cancel()
