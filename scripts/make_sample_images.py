"""Make sample_data/dicom, sample_data/nifti and sample_data/png from real files, made small.

Run once (``python scripts/make_sample_images.py``; needs ``pip install pydicom-data nilearn``); the
outputs are committed. Everything is written to a temporary folder first and swapped in at the end, so a
failure leaves sample_data/ as it was; missing packages are reported before any file is touched. Sources:

* ``pydicom-data`` (MIT): ``RG1_UNCR.dcm`` (a real PA chest CR, MONOCHROME1, 15 bits) and ``RG3_UNCR.dcm``
  (a real extremity CR, MONOCHROME1, 10 bits), each reduced 8x by block averaging. The header is kept
  (including RG1's real-world quirk, PixelSpacing ``0\\0``); Rows/Columns follow the new size. The chest is
  also saved JPEG 2000 lossless, to exercise a compressed transfer syntax.
* ``pydicom``'s own test files (MIT): ``dicomdirtests/98892001/CT5N``, a real 5-slice CT series of
  16x16 images whose file order is not the spatial order, copied unchanged with their extension-less names.
* ``nilearn`` (BSD; the template (c) 1993-2009 Louis Collins, McConnell Brain Imaging Centre, free to use
  with this notice): the MNI152 2009 T1 template, resampled to 4 mm and stored as int16.
* PNGs: the reduced chest through ``medvae convert`` (8-bit, DICOM window) and the extremity as a 16-bit
  PNG of its own 10-bit values.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "sample_data"


def pydicom_data(name: str) -> Path:
    import data_store  # the pydicom-data package

    return Path(data_store.__file__).parent / "data" / name


def reduced_cr(name: str, factor: int = 8):
    import numpy as np
    import pydicom
    from skimage.transform import downscale_local_mean

    ds = pydicom.dcmread(pydicom_data(name))
    pixels = ds.pixel_array.astype(np.float64)
    rows, cols = (n // factor * factor for n in pixels.shape)
    small = np.round(downscale_local_mean(pixels[:rows, :cols], (factor, factor))).astype(np.uint16)
    ds.Rows, ds.Columns = small.shape
    ds.PixelData = small.tobytes()
    ds.ImageComments = f"reduced {factor}x by block averaging for medvae sample_data"
    return ds


NEEDS = {"pydicom": "pydicom", "data_store": "pydicom-data", "nibabel": "nibabel", "nilearn": "nilearn",
         "skimage": "scikit-image", "numpy": "numpy"}
FOLDERS = ("dicom", "nifti", "png", "brain")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    missing = [pip for module, pip in NEEDS.items() if importlib.util.find_spec(module) is None]
    if missing:  # before touching any file
        print(f"error: needs {', '.join(missing)} (pip install {' '.join(missing)})", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix=".images-", dir=ROOT))
    try:
        make_images(tmp)
        make_brain_templates(tmp)
        for name in FOLDERS:  # swap in, folder by folder, once everything is made
            if (ROOT / name).exists():
                shutil.rmtree(ROOT / name)
            (tmp / name).rename(ROOT / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for name in FOLDERS:
        for path in sorted((ROOT / name).rglob("*")):
            if path.is_file():
                print(f"{path.relative_to(ROOT)}: {path.stat().st_size // 1024} KiB")
    return 0


def make_images(root: Path) -> None:
    """root/dicom, root/nifti and root/png (see the module docstring)."""
    import numpy as np
    import pydicom
    from pydicom.uid import JPEG2000Lossless

    from medvae.io.images import Image, write_image
    from medvae.tasks.convert import convert

    dicom, nifti, png = root / "dicom", root / "nifti", root / "png"
    for folder in (dicom, nifti, png):
        folder.mkdir(parents=True)

    chest = reduced_cr("RG1_UNCR.dcm")
    chest.save_as(dicom / "chest_cr.dcm", enforce_file_format=True)
    chest.compress(JPEG2000Lossless)
    chest.save_as(dicom / "chest_cr_j2k.dcm", enforce_file_format=True)
    extremity = reduced_cr("RG3_UNCR.dcm")
    extremity.save_as(dicom / "extremity_cr.dcm", enforce_file_format=True)

    series = Path(pydicom.__file__).parent / "data" / "test_files" / "dicomdirtests" / "98892001" / "CT5N"
    shutil.copytree(series, dicom / "ct_series")

    import nibabel as nib
    import nilearn.datasets
    from nilearn.image import resample_img

    template = Path(nilearn.datasets.__file__).parent / "data" / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
    t1 = resample_img(nib.load(template), target_affine=np.diag([4.0, 4.0, 4.0]) @ np.eye(3),
                      interpolation="continuous", force_resample=True, copy_header=True)
    array = np.round(np.clip(np.asanyarray(t1.dataobj), 0, None)).astype(np.int16)
    write_image(Image(array=array, affine=t1.affine, format="nifti", spacing_known=True),
                nifti / "mni152_t1_4mm.nii.gz")

    convert(dicom / "chest_cr.dcm", png / "chest_8bit.png", progress=False)
    extremity_values = pydicom.dcmread(dicom / "extremity_cr.dcm").pixel_array
    inverted = (2**10 - 1 - extremity_values).astype(np.uint16)  # MONOCHROME1 → bright means dense
    write_image(Image(array=inverted.T, format="png", bits=16), png / "extremity_16bit.png")


def make_brain_templates(root: Path) -> None:
    """root/brain/ (sample_data/brain/ once swapped in): the MNI152 2009c T1 and grey/white-matter probability maps at 2 mm (uint8).

    The source for ``medvae phantom brain``, so that it runs without nilearn installed.
    """
    import nibabel as nib
    import nilearn.datasets
    import numpy as np
    from nilearn.image import resample_img

    from medvae.io.images import Image, write_image

    folder = root / "brain"
    folder.mkdir(parents=True)
    data = Path(nilearn.datasets.__file__).parent / "data"
    for name, source in (("t1", "t1"), ("gm", "gm"), ("wm", "wm")):
        img = nib.load(data / f"mni_icbm152_{source}_tal_nlin_sym_09a_converted.nii.gz")
        small = resample_img(img, target_affine=np.diag([2.0, 2.0, 2.0]), interpolation="continuous",
                             force_resample=True, copy_header=True)
        array = np.clip(np.round(np.asanyarray(small.dataobj)), 0, 255).astype(np.uint8)
        write_image(Image(array=array, affine=small.affine, format="nifti", spacing_known=True),
                    folder / f"mni152_{name}_2mm.nii.gz")


if __name__ == "__main__":
    sys.exit(main())
