"""``medvae info`` and one-file ``medvae convert`` start at once: they import neither torch nor MONAI.

Importing MONAI takes about 10 s and torch about 4 s on a small machine, while pydicom, nibabel, Pillow and
numpy answer these commands in well under a second. Like the ``--help`` tests in ``test_cli.py``, each check
runs the commands in a fresh interpreter and looks at ``sys.modules`` after every one of them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data"
HEAVY = ("torch", "monai")

# Run each command through the CLI in one interpreter; after each, name the heavy modules it imported.
RUNNER = """
import json, sys
from typer.testing import CliRunner
from medvae_cli.main import app

runner = CliRunner()
for args in json.loads(sys.argv[1]):
    result = runner.invoke(app, args)
    assert result.exit_code == 0, (args, result.output)
    heavy = [m for m in {heavy!r} if m in sys.modules]
    assert not heavy, f"medvae {{' '.join(args)}} imported {{heavy}}"
"""


def run_without_heavy_imports(*commands: list) -> None:
    code = RUNNER.format(heavy=HEAVY)
    args = json.dumps([[str(a) for a in c] for c in commands])
    done = subprocess.run([sys.executable, "-c", code, args], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]


def test_info_on_images_imports_neither_torch_nor_monai(tmp_path):
    npy, tiff, jpeg = tmp_path / "a.npy", tmp_path / "a.tif", tmp_path / "a.jpg"
    np.save(npy, np.arange(12, dtype=np.int16).reshape(3, 4))
    PILImage.fromarray(np.arange(12, dtype=np.uint16).reshape(3, 4) * 1000).save(tiff)
    PILImage.fromarray(np.arange(12, dtype=np.uint8).reshape(3, 4) * 20).save(jpeg)
    run_without_heavy_imports(
        ["info", SAMPLE / "dicom" / "chest_cr.dcm"],
        ["info", SAMPLE / "dicom" / "chest_cr_j2k.dcm"],  # JPEG 2000: pydicom's own decoders
        ["info", SAMPLE / "dicom" / "ct_series"],
        ["info", "--json", SAMPLE / "nifti" / "mni152_t1_4mm.nii.gz"],
        ["info", SAMPLE / "png" / "extremity_16bit.png"],
        ["info", npy], ["info", tiff], ["info", jpeg],
    )


def test_info_on_a_model_file_imports_neither_torch_nor_monai():
    run_without_heavy_imports(["info", ROOT / "medvae" / "pretrained" / "segmenter.safetensors"],
                              ["info", "--json", ROOT / "medvae" / "pretrained" / "enhancer.safetensors"])


def test_converting_one_file_imports_neither_torch_nor_monai(tmp_path):
    run_without_heavy_imports(
        ["convert", SAMPLE / "dicom" / "chest_cr.dcm", tmp_path / "chest.png"],
        ["convert", SAMPLE / "dicom" / "chest_cr.dcm", tmp_path / "chest.dcm"],
        ["convert", "--series", SAMPLE / "dicom" / "ct_series", tmp_path / "ct.nii.gz"],
        ["convert", SAMPLE / "nifti" / "mni152_t1_4mm.nii.gz", tmp_path / "t1.npy"],
        ["convert", SAMPLE / "png" / "chest_8bit.png", tmp_path / "chest.tif"],
        ["convert", tmp_path / "t1.npy", tmp_path / "t1.nii.gz"],
    )
    assert all((tmp_path / name).exists() for name in ("chest.png", "chest.dcm", "ct.nii.gz", "t1.npy", "chest.tif",
                                                      "t1.nii.gz"))


def test_the_cli_loads_rich_help_formatting_only_to_print_help():
    code = ("import sys; from medvae_cli.main import app; "
            "print(sorted(m for m in ('typer.rich_utils', 'rich.markdown') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr[-2000:]
