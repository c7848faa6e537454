"""Make sample_data/cxr: a few real chest radiographs with their lung masks, reduced, with their patients.

    python scripts/make_sample_cxr.py --source ../shared/data/cxr-lungs [--size 256]

The source is the shared lung set (images/, masks/, index.csv: COVID-19 image data collection films, CC BY 3.0
or 4.0, with V7 Labs masks, CC BY 4.0). A fixed choice of films (two patients with two films each, so that tests
can check that a patient's films stay together, and four patients with one) is reduced so the longer side is
``--size`` pixels (anti-aliased; masks by nearest neighbour) and written as 8-bit PNGs with an index.csv of
image, patient and licence. Everything is written to a temporary folder first and swapped in at the end.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "sample_data" / "cxr"
#: two films each of two patients, one each of four others (names as in the shared set's index.csv)
PER_PATIENT = {2: 2, 1: 4}
COLUMNS = ("image", "patientid", "view", "image_license", "source_url", "doi")


def choose(rows: list[dict]) -> list[dict]:
    """The films: the first patients (by id) with at least two PA/AP films, then single films of others."""
    by_patient: dict[str, list[dict]] = {}
    for row in sorted(rows, key=lambda r: (r["patientid"], r["image"])):
        by_patient.setdefault(row["patientid"], []).append(row)
    chosen, used = [], set()
    for count, patients in sorted(PER_PATIENT.items(), reverse=True):
        for pid, films in by_patient.items():
            if patients and pid not in used and len(films) >= count:
                chosen += films[:count]
                used.add(pid)
                patients -= 1
    return chosen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True, help="the shared lung set (images/, masks/, index.csv)")
    parser.add_argument("--size", type=int, default=256, help="longer side of the reduced films (pixels)")
    args = parser.parse_args()
    try:
        import numpy as np
        from PIL import Image
        from skimage.transform import resize
    except ImportError as e:  # before touching any file
        print(f"error: needs numpy, Pillow and scikit-image ({e})", file=sys.stderr)
        return 2
    from medvae.io.atomic import atomic_folder

    index = args.source / "index.csv"
    if not index.is_file():
        print(f"error: {index} not found; give --source the shared lung set's folder", file=sys.stderr)
        return 2
    with open(index, newline="") as f:
        rows = choose(list(csv.DictReader(f)))
    with atomic_folder(ROOT) as tmp:  # written aside and swapped in: a failure leaves the old set
        (tmp / "images").mkdir()
        (tmp / "masks").mkdir()
        for row in rows:
            name = Path(row["image"]).stem + ".png"
            image = np.asarray(Image.open(args.source / row["image"]).convert("L"), dtype=np.float64)
            mask = np.asarray(Image.open(args.source / row["mask"]).convert("L")) > 127
            factor = max(image.shape) / args.size
            shape = tuple(max(1, round(n / factor)) for n in image.shape)
            small = resize(image, shape, order=1, anti_aliasing=True, preserve_range=True)
            small_mask = resize(mask.astype(np.float64), shape, order=1, anti_aliasing=True) >= 0.5
            Image.fromarray(np.clip(np.round(small), 0, 255).astype(np.uint8)).save(tmp / "images" / name)
            Image.fromarray((small_mask * 255).astype(np.uint8)).save(tmp / "masks" / name)
            row["image"] = f"images/{name}"
        with open(tmp / "index.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    print(f"wrote {len(rows)} films of {len({r['patientid'] for r in rows})} patients to {ROOT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
