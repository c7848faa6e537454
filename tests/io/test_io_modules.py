"""``medvae.io.images`` gathers the image I/O from its modules: every name other code imports is there, and
is the very object the module that holds it defines."""

from __future__ import annotations

import pytest

import medvae.io.images as images
from medvae.errors import InputError
from medvae.io import formats, image, reading, writing


@pytest.mark.parametrize("name, home", [
    ("Image", image), ("SUFFIXES", formats), ("FORMAT_ALIASES", formats), ("DISPLAY_FORMATS", formats),
    ("format_from_suffix", formats), ("normalize_format", formats), ("sniff_format", formats),
    ("check_readable", formats), ("dicom_files_in", reading), ("read_image", reading), ("write_image", writing),
])
def test_images_exports_each_name_from_its_module(name, home):
    assert getattr(images, name) is getattr(home, name)
    assert name in images.__all__


def test_check_readable_agrees_with_the_name(tmp_path):
    png = tmp_path / "a.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(16))
    assert formats.check_readable(png) == "png"
    wrong = tmp_path / "a.nii"
    wrong.write_bytes(png.read_bytes())
    with pytest.raises(InputError, match="named as NIFTI but holds PNG data"):
        formats.check_readable(wrong)
