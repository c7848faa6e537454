"""Chest radiographs paired with lung masks, from the public lung data sets' own folder layouts.

:func:`lung_pairs` finds the layout from the folder it is given:

* **plain**: ``images`` and ``masks`` folders, each mask named like its image (any image suffix, and
  ``NAME_mask.png`` too); for example the chest phantoms' ``images/`` and ``masks/`` (a folder holding
  those two may be given alone).
* **Montgomery County**: ``CXR_png/MCUCXR_0001_0.png`` with ``ManualMask/leftMask/MCUCXR_0001_0.png`` and
  ``ManualMask/rightMask/MCUCXR_0001_0.png`` (the two lungs in separate files).
* **Shenzhen**: ``CXR_png/CHNCXR_0001_0.png`` with ``mask/CHNCXR_0001_0_mask.png`` (or ``masks/``): the
  community masks cover only some of the images; the others are skipped and counted.
* **JSRT + SCR**: JSRT's raw ``.IMG`` films anywhere under the folder, with SCR's
  ``masks/left lung/JPCLN001.gif`` and ``masks/right lung/JPCLN001.gif`` anywhere under it too
  (``scr/masks/...``, ``fold1/masks/...``, ``fold2/masks/...``); SCR masks are 1024 x 1024, half the
  films' resolution, and :func:`load_lung_mask` resizes them.

Each pair lists its mask files (two for Montgomery and SCR, one otherwise); :func:`load_lung_mask` reads
them as one binary mask (their union) at the image's shape. :func:`read_lung_image` reads any of the
images, JSRT's headerless ``.IMG`` included (:func:`read_jsrt_img`).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medvae.errors import InputError, UsageError, first_line

logger = logging.getLogger(__name__)

#: files taken as images, and as masks (masks also come as GIF and BMP, which only Pillow reads here)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".dcm", ".dicom", ".nii", ".nii.gz", ".npy", ".img")
MASK_SUFFIXES = (".png", ".gif", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff", ".dcm", ".nii", ".nii.gz", ".npy")
#: JSRT: 2048 x 2048 films with 0.175 mm pixels (a 358.4 mm field)
JSRT_SIZE, JSRT_SPACING_MM = 2048, 0.175
LAYOUTS = ("plain: --images DIR --masks DIR with each mask named like its image (or NAME_mask), or a folder "
           "holding images/ and masks/; Montgomery: CXR_png/ with ManualMask/leftMask/ and ManualMask/rightMask/; "
           "Shenzhen: CXR_png/ with mask/ (or masks/) holding NAME_mask.png; JSRT + SCR: .IMG files with SCR's "
           "masks/left lung/ and masks/right lung/ GIFs")


@dataclass
class LungPair:
    """An image and the mask files of its lungs (one file, or one per lung)."""

    image: Path
    masks: list[Path]


class LungPairs(list):
    """The pairs :func:`lung_pairs` found (a list of :class:`LungPair`), with how it found them.

    Attributes:
        layout: ``"plain"``, ``"montgomery"``, ``"shenzhen"`` or ``"jsrt"``.
        skipped: images left out because they have no mask (Shenzhen only).
    """

    def __init__(self, pairs=(), layout: str = "plain", skipped: list[Path] | None = None):
        super().__init__(pairs)
        self.layout = layout
        self.skipped = list(skipped or [])


# ---------------------------------------------------------------------------------------------- reading
def read_jsrt_img(path: str | os.PathLike):
    """Read a JSRT ``.IMG`` film as a :class:`medvae.io.images.Image`, bright = dense.

    JSRT files have no header: 2048 x 2048 pixels of 12-bit unsigned big-endian values, where a higher
    value is a darker (less dense) point, as film density goes. They are inverted (``4095 - value``) so
    that bright means dense, as medvae's images always do. Any square file of ``2 * n * n`` bytes is read
    the same way (a test fixture, or a film resampled to another size keeping the format); its pixel
    spacing is then scaled so that the field stays JSRT's 358.4 mm (``0.175 * 2048 / n``), which is
    0.175 mm for the real 2048 x 2048 films.

    Raises:
        InputError: the byte count is not that of a square 16-bit image, or values exceed 12 bits.
    """
    from medvae.io.images import Image

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    size = path.stat().st_size
    n = math.isqrt(size // 2)
    if size == 0 or size != 2 * n * n:
        raise InputError(f"{path}: {size} bytes is not a square 16-bit raw image; a JSRT .IMG film is "
                         f"{JSRT_SIZE} x {JSRT_SIZE} pixels, {2 * JSRT_SIZE**2} bytes")
    raw = np.fromfile(path, dtype=">u2").reshape(n, n)  # (rows, columns)
    top = int(raw.max())
    if top > 4095:
        raise InputError(f"{path}: values up to {top} do not fit 12 bits; not a JSRT .IMG film")
    spacing = JSRT_SPACING_MM * JSRT_SIZE / n
    affine = np.diag([spacing, spacing, 1.0, 1.0])
    array = np.ascontiguousarray((4095 - raw).T.astype(np.uint16))  # medvae's (x, y) order
    return Image(array=array, affine=affine, format="jsrt", path=path, spacing_known=True,
                 photometric="MONOCHROME1", bits=12, value_range=(0.0, 4095.0),
                 notes=["JSRT raw 12-bit film values inverted to bright = dense"])


def read_lung_image(path: str | os.PathLike):
    """Read a radiograph of any of the layouts: JSRT ``.IMG`` with :func:`read_jsrt_img`, the rest with
    :func:`medvae.io.images.read_image`."""
    from medvae.io.images import read_image

    path = Path(path)
    return read_jsrt_img(path) if path.suffix.lower() == ".img" else read_image(path)


def _read_mask(path: Path) -> np.ndarray:
    """A mask file as a boolean (x, y) array (nonzero = inside)."""
    if path.suffix.lower() in (".gif", ".bmp"):
        from PIL import Image as PILImage

        try:
            with PILImage.open(path) as img:
                array = np.asarray(img.convert("L")).T
        except Exception as e:
            raise InputError(f"{path}: cannot read this mask ({first_line(e)})") from e
    else:
        from medvae.io.images import read_image

        array = read_image(path).array
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim != 2:
        raise InputError(f"{path}: a mask must be a 2-D image, this one has shape {array.shape}")
    return array > 0


def _resize_nearest(mask: np.ndarray, shape: tuple[int, int], path: Path) -> np.ndarray:
    (mx, my), (sx, sy) = mask.shape, shape
    if abs(mx / my - sx / sy) > 0.02 * (sx / sy):
        raise InputError(f"{path}: the mask is {mx} x {my} pixels but its image is {sx} x {sy}; "
                         "they do not have the same shape")
    ix = np.minimum(((np.arange(sx) + 0.5) * mx / sx).astype(int), mx - 1)
    iy = np.minimum(((np.arange(sy) + 0.5) * my / sy).astype(int), my - 1)
    return mask[np.ix_(ix, iy)]


def load_lung_mask(pair: LungPair, shape: tuple[int, ...]) -> np.ndarray:
    """The pair's lungs as one mask: uint8, 1 inside either lung, 0 elsewhere, shape ``shape`` (x, y).

    Each mask file is read (PNG, DICOM, ... with :func:`medvae.io.images.read_image`; GIF and BMP with
    Pillow), thresholded at > 0, resized with nearest neighbour to ``shape`` where it differs (SCR's masks
    are half the JSRT films' size), and the files are joined (Montgomery and SCR give each lung its own).
    """
    shape = tuple(int(v) for v in shape[:2])
    out = np.zeros(shape, dtype=bool)
    for path in pair.masks:
        mask = _read_mask(Path(path))
        if mask.shape != shape:
            mask = _resize_nearest(mask, shape, Path(path))
        out |= mask
    return out.astype(np.uint8)


# ---------------------------------------------------------------------------------------------- layouts
def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz",):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _files(folder: Path, suffixes: tuple[str, ...], recursive: bool = False) -> list[Path]:
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in found if p.is_file() and not p.name.startswith(".")
                  and any(p.name.lower().endswith(s) for s in suffixes))


def _mask_index(folders: list[Path]) -> dict[str, list[Path]]:
    """Mask files by lower-case stem, ``_mask`` dropped: ``{"chncxr_0001_0": [.../CHNCXR_0001_0_mask.png]}``."""
    index: dict[str, list[Path]] = {}
    for folder in folders:
        for path in _files(folder, MASK_SUFFIXES):
            key = _stem(path).lower()
            key = key[: -len("_mask")] if key.endswith("_mask") else key
            index.setdefault(key, []).append(path)
    return index


def _mask_for(image: Path, index: dict[str, list[Path]], where: Path) -> Path | None:
    found = index.get(_stem(image).lower(), [])
    if len(found) > 1:
        raise InputError(f"{image}: {len(found)} masks match it in {where} ({', '.join(p.name for p in found)}); "
                         "keep one")
    return found[0] if found else None


def _require_images(images: list[Path], folder: Path, what: str) -> None:
    if not images:
        raise InputError(f"{folder}: holds no {what}")


def _plain(images: Path, masks: Path) -> LungPairs:
    files = _files(images, IMAGE_SUFFIXES)
    _require_images(files, images, "image files (" + ", ".join(IMAGE_SUFFIXES) + ")")
    index = _mask_index([masks])
    pairs = []
    for image in files:
        mask = _mask_for(image, index, masks)
        if mask is None:
            raise InputError(f"{image}: no mask for it in {masks} (expected {_stem(image)}.png or "
                             f"{_stem(image)}_mask.png)")
        pairs.append(LungPair(image, [mask]))
    return LungPairs(pairs, "plain")


def _two_sided(images: Path, sides: list[tuple[str, Path]], layout: str, suffixes=IMAGE_SUFFIXES) -> LungPairs:
    """Images with one mask file per lung (Montgomery, SCR)."""
    files = _files(images, suffixes, recursive=layout == "jsrt")
    _require_images(files, images, "JSRT .IMG files" if layout == "jsrt" else "image files")
    indexes = [(name, folders, _mask_index(folders)) for name, folders in sides]
    pairs = []
    for image in files:
        masks = []
        for name, folders, index in indexes:
            mask = _mask_for(image, index, folders[0])
            if mask is None:
                raise InputError(f"{image}: no {name} lung mask for it in "
                                 f"{' or '.join(str(f) for f in folders)}")
            masks.append(mask)
        pairs.append(LungPair(image, masks))
    return LungPairs(pairs, layout)


def _shenzhen(images: Path, masks: Path) -> LungPairs:
    files = _files(images, IMAGE_SUFFIXES)
    _require_images(files, images, "image files")
    index = _mask_index([masks])
    pairs, skipped = [], []
    for image in files:
        mask = _mask_for(image, index, masks)
        if mask is None:
            skipped.append(image)
        else:
            pairs.append(LungPair(image, [mask]))
    if not pairs:
        raise InputError(f"{masks}: no mask matches an image in {images} (expected NAME_mask.png for NAME.png)")
    if skipped:
        logger.warning("%s: %d of %d images have no lung mask in %s and are skipped", images, len(skipped),
                       len(files), masks)
    return LungPairs(pairs, "shenzhen", skipped)


def _scr_mask_roots(folder: Path) -> list[Path]:
    """Folders under ``folder`` (or itself) that hold SCR's ``left lung/`` and ``right lung/``."""
    roots = []
    candidates = [folder, *(d for d in folder.rglob("*") if d.is_dir())]
    for d in candidates:
        subs = {c.name.lower(): c for c in d.iterdir() if c.is_dir()} if d.is_dir() else {}
        if "left lung" in subs and "right lung" in subs:
            roots.append(d)
    return sorted(roots)


def _jsrt(images: Path, scr: list[Path]) -> LungPairs:
    def side(name):
        return [next(c for c in root.iterdir() if c.is_dir() and c.name.lower() == f"{name} lung") for root in scr]

    return _two_sided(images, [("right", side("right")), ("left", side("left"))], "jsrt", (".img",))


def _subdir(folder: Path, *names: str) -> Path | None:
    """The first of ``names`` that is a folder inside ``folder`` (names compared case-insensitively)."""
    if not folder.is_dir():
        return None
    found = {c.name.lower(): c for c in folder.iterdir() if c.is_dir()}
    for name in names:
        if name.lower() in found:
            return found[name.lower()]
    return None


def lung_pairs(images: str | os.PathLike, masks: str | os.PathLike | None = None) -> LungPairs:
    """Pair each radiograph with its lung mask file(s), in whichever public layout ``images`` holds.

    Args:
        images: the data set's folder (Montgomery, Shenzhen or JSRT + SCR root, or a folder holding
            ``images/`` and ``masks/``), or the folder of images when ``masks`` is given.
        masks: the folder of masks named like the images (plain layout); also accepted: Montgomery's
            ``ManualMask`` folder (``leftMask/``, ``rightMask/``) or SCR's folder (``masks/left lung/``, ...).

    Returns:
        a :class:`LungPairs` list of :class:`LungPair`, sorted by image file; ``.layout`` names the layout
        found and ``.skipped`` the Shenzhen images without a mask (a warning is logged with their count).

    Raises:
        InputError: a folder is missing, matches no layout (the message lists the layouts), or an image
            has no mask (plain, Montgomery and JSRT layouts; the message names it).
    """
    images = Path(images)
    if not images.is_dir():
        raise UsageError(f"images {images}: " + ("no such folder" if not images.exists() else "not a folder"),
                         param="images")
    if masks is not None:
        masks = Path(masks)
        if not masks.is_dir():
            raise UsageError(f"masks {masks}: " + ("no such folder" if not masks.exists() else "not a folder"),
                             param="masks")
        left, right = _subdir(masks, "leftMask"), _subdir(masks, "rightMask")
        if left and right:
            source = _subdir(images, "CXR_png") or images
            return _two_sided(source, [("right", [right]), ("left", [left])], "montgomery")
        scr = _scr_mask_roots(masks)
        if scr and _files(images, (".img",), recursive=True):
            return _jsrt(images, scr)
        return _plain(images, masks)

    cxr = _subdir(images, "CXR_png")
    manual = _subdir(images, "ManualMask")
    if cxr and manual:
        left, right = _subdir(manual, "leftMask"), _subdir(manual, "rightMask")
        if not (left and right):
            raise InputError(f"{manual}: a Montgomery ManualMask folder needs leftMask/ and rightMask/")
        return _two_sided(cxr, [("right", [right]), ("left", [left])], "montgomery")
    shenzhen_masks = _subdir(images, "mask", "masks")
    if cxr and shenzhen_masks:
        return _shenzhen(cxr, shenzhen_masks)
    plain_images = _subdir(images, "images")
    if plain_images and shenzhen_masks:
        return _plain(plain_images, shenzhen_masks)
    if _files(images, (".img",), recursive=True):
        scr = _scr_mask_roots(images)
        if scr:
            return _jsrt(images, scr)
        raise InputError(f"{images}: holds JSRT .IMG files but no SCR masks (masks/left lung/ and "
                         "masks/right lung/ under it); pass the SCR folder as the masks folder")
    raise InputError(f"{images}: not a lung data set layout medvae knows; expected one of: {LAYOUTS}")

