"""Data: reading and writing images, the pipelines that feed models, and batch processing.

- ``io``: read/write DICOM, NIfTI, PNG/TIFF/JPEG and .npy as :class:`~medvae.data.io.Image` (array + geometry
  + headers); ``dicom_reader``: MONAI's DICOM reader with rescale, MONOCHROME1, colour and series order;
  ``dicom``: derived DICOM writing.
- ``intensity``: intensity windows (percentile, DICOM window/VOI LUT); ``transforms``: MONAI pipelines and
  their inverses.
- ``batch``: the runner every batch command uses; ``atomic``: write-then-rename.
- ``mnist``, ``datasets``: MNIST IDX files and in-memory datasets.
"""
