"""Batch enhancement speed: ``medvae enhance`` beside a naive loop, and its peak memory for 10 vs 50 images.

    python benchmarks/enhance.py [--images 20] [--size 1024] [--model M] [--memory 10,50] [--rounds 3]

Makes ``--images`` chest phantoms as ``--size``² 16-bit DICOM (``medvae phantom cxr --format dcm``), then in
this one process times, in alternating rounds (the order reversed every other round),

* the naive loop: for each file, read it, map it to [0, 1], run the whole image through the model in one
  forward pass under ``torch.no_grad()``, map back, write a DICOM; one at a time;
* ``medvae.tasks.cxr.enhance.enhance`` on the folder (reads ahead and writes behind in threads, inference mode,
  channels-last convolutions, tiles above 1024 pixels, the chest check on every film);
* the same with ``compile`` (``medvae enhance --compile``): each round forgets the compiled graphs
  (``torch._dynamo.reset()``) and compiles again, as each command does, so its time includes compiling
  from TorchInductor's on-disk cache; the first round's time, with the cache the machine had (empty on a
  fresh machine, or with ``TORCHINDUCTOR_CACHE_DIR`` pointing at an empty folder), is printed on its own,

and prints the median images per second and the ratio to the naive loop. Peak memory (max RSS) is measured
in a fresh process per count (``--memory``), enhancing the first N images, to show it does not grow with the
number of images.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def naive(model, paths: list[Path], out: Path) -> None:
    import torch

    from medvae.io.images import read_image, write_image
    from medvae.data.intensity import from_unit, to_unit

    out.mkdir(parents=True, exist_ok=True)
    for path in paths:
        image = read_image(path)
        unit, low, high = to_unit(image.array)
        with torch.no_grad():
            y = model.enhance(torch.from_numpy(unit)[None, None])[0, 0].numpy()
        write_image(image.with_array(from_unit(y, low, high, image.array.dtype)), out / path.name, operation="enhance")


def peak_memory(model: Path, folder: Path, n: int) -> float:
    """Max RSS in MiB of a fresh process that enhances the first ``n`` images of ``folder``."""
    code = f"""
import resource, shutil, sys, tempfile
from pathlib import Path
from medvae.tasks.cxr.enhance import enhance
src = Path(tempfile.mkdtemp()); out = Path(tempfile.mkdtemp()) / "out"
for p in sorted(Path({str(folder)!r}).glob("*.dcm"))[:{n}]:
    (src / p.name).symlink_to(p)
report = enhance(src, out, model={str(model)!r}, progress=False)
assert len(report.done) == {n}, report.summary()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--model", type=Path, default=None, help="an enhancer (default: the shipped one)")
    parser.add_argument("--memory", default="10,50", help="image counts for the peak-memory check ('' to skip)")
    parser.add_argument("--out", type=Path, default=None, help="keep the images here (default: a temp folder)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the median is reported")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True,
                        help="also time medvae enhance --compile")
    args = parser.parse_args()

    import torch

    from medvae.phantoms.cxr import write_cxr_phantoms
    from medvae.pretrained import packaged_model
    from medvae.tasks.cxr.enhance import EnhanceOptions, enhance
    from medvae.checkpoint import load_model_of_kind

    model_path = args.model or packaged_model("enhancer")
    counts = [int(c) for c in args.memory.split(",") if c.strip()]
    folder = args.out or Path(tempfile.mkdtemp(prefix="medvae-enhance-bench-"))
    images = folder / "images"
    needed = max([args.images, *counts])
    if len(list(images.glob("*.dcm"))) < needed:
        write_cxr_phantoms(needed, folder, size=args.size, fmt="dcm", overwrite=True, progress=False)
    paths = sorted(images.glob("*.dcm"))[: args.images]
    timed = folder / "timed"
    timed.mkdir(exist_ok=True)
    for p in paths:
        if not (timed / p.name).exists():
            (timed / p.name).symlink_to(p.resolve())

    model, _ = load_model_of_kind(model_path, "enhancer")
    naive(model, paths[:1], folder / "warmup")  # first-call costs (oneDNN kernels, imports) out of both

    def run_naive():
        net, _ = load_model_of_kind(model_path, "enhancer")  # a fresh copy: enhance() switches memory format
        naive(net, paths, folder / "naive")

    def run_medvae(compile: bool):
        if compile:  # forget the compiled graphs: each round compiles again from the on-disk cache
            torch._dynamo.reset()
        options = EnhanceOptions(compile=compile)
        report = enhance(timed, folder / "medvae", model=model_path, options=options, overwrite=True, progress=False)
        assert len(report.done) == len(paths), report.summary()

    methods = {"naive loop": run_naive, "medvae enhance": lambda: run_medvae(False)}
    if args.compile:
        methods["medvae enhance --compile"] = lambda: run_medvae(True)
    times: dict[str, list[float]] = {name: [] for name in methods}
    for r in range(args.rounds):
        for name in (list(methods) if r % 2 == 0 else list(reversed(methods))):
            started = time.perf_counter()
            methods[name]()
            times[name].append(time.perf_counter() - started)
            print(f"round {r + 1} {name}: {times[name][-1]:.1f} s", file=sys.stderr)

    median = {name: statistics.median(t) for name, t in times.items()}
    result = {"images": len(paths), "size": args.size, "threads": torch.get_num_threads(), "rounds": args.rounds,
              "seconds": times, "images_per_s": {n: len(paths) / t for n, t in median.items()},
              "speedup": {n: median["naive loop"] / t for n, t in median.items()}, "peak_rss_mb": {}}
    if args.compile:
        first, rest = times["medvae enhance --compile"][0], times["medvae enhance --compile"][1:]
        result["first_compiled_round_s"] = first
    for n in counts:
        result["peak_rss_mb"][n] = peak_memory(model_path, images, n)
    print(f"{len(paths)} DICOM images {args.size}x{args.size} (16-bit), torch threads {result['threads']}, "
          f"median of {args.rounds} alternating rounds")
    print("| method | images/s | ratio |\n|---|---:|---:|")
    for name in methods:
        print(f"| {name} | {result['images_per_s'][name]:.3f} | {result['speedup'][name]:.2f} |")
    if args.compile:
        others = f"; the others {', '.join(f'{t:.1f}' for t in rest)} s" if rest else ""
        print(f"\nfirst --compile round (its compile with the on-disk cache as found): {first:.1f} s{others}")
    if counts:
        print("\n| images | peak RSS MiB (medvae enhance) |\n|---:|---:|")
        for n, mb in result["peak_rss_mb"].items():
            print(f"| {n} | {mb:.0f} |")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
