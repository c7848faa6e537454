"""Files only: read and write DICOM, NIfTI, PNG/TIFF/JPEG and .npy with their geometry.

- ``images``: :class:`~medvae.io.images.Image` (array + geometry + headers), ``read_image``, ``write_image``;
- ``dicom_reader``: the DICOM reader (pydicom) with rescale, MONOCHROME1, colour and series order;
- ``dicom``: derived DICOM writing; ``dicom_seg``: DICOM Segmentation objects (highdicom);
- ``atomic``: write under a temporary name, then rename; ``batch``: the runner every batch command uses.

Imports nothing of medvae but :mod:`medvae.errors` (a test keeps it so), and neither torch nor MONAI:
reading and writing need pydicom, nibabel, Pillow and numpy only (``tests/test_fast_start.py``).
"""
