"""Embedded synthetic H&E-like benchmark, written in the native raw layout of a real dataset.

`write_synthetic_raw(card, out_dir)` reads `card["synthetic"] = {style, num_images, height,
width, seed}` and writes CoNSeP-, GlaS- or BCSS-style raw files, so the demo goes through the
same convert -> validate -> zarr path as real data. The images and labels themselves come from
`densebench.data.tissue`; this module is the one home of the raw layouts and their files.

Determinism: per-image generators are seeded with (seed, index), so the same card gives
byte-identical files. PNG/BMP files carry no time stamp; for .mat files the 116-byte text header
(where scipy writes the creation time) is overwritten with a fixed text, so .mat files are
byte-identical too.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np

from densebench.atomic import atomic_output
from densebench.data.tissue import bcss_image, consep_image, glas_image

MAT_HEADER = b"MATLAB 5.0 MAT-file, Platform: densebench synthetic, Created on: fixed"
STYLES = ("consep", "glas", "bcss")


# ---- deterministic files ---------------------------------------------------------------------


def _image_rng(seed: int, index: int) -> np.random.Generator:
    """Independent generator for image `index` of a dataset seeded with `seed`."""
    return np.random.default_rng([int(seed), int(index)])


def _save_png(array: np.ndarray, path: Path) -> None:
    """Write an array as PNG (no time-dependent metadata)."""
    from PIL import Image

    Image.fromarray(array).save(path, format="PNG")


def _save_bmp(array: np.ndarray, path: Path) -> None:
    """Write an array as BMP (RGB: 24-bit; 2-D uint8: 8-bit grayscale)."""
    from PIL import Image

    Image.fromarray(array).save(path, format="BMP")


def _save_mat(variables: dict[str, np.ndarray], path: Path) -> None:
    """Write a .mat file whose header text is fixed (scipy would write the creation time)."""
    from scipy.io import savemat

    buf = io.BytesIO()
    savemat(buf, variables, do_compression=True)
    data = bytearray(buf.getvalue())
    data[:116] = MAT_HEADER.ljust(116, b" ")
    path.write_bytes(bytes(data))


def _split_counts(n: int) -> tuple[int, int]:
    """(train, test) image counts: about two thirds train, at least one of each when n >= 2."""
    n_train = min(max(round(2 * n / 3), 1), max(n - 1, 1))
    return n_train, n - n_train


# ---- style "consep": nuclei -------------------------------------------------------------------


def _consep_mat(inst: np.ndarray, types: list[int]) -> dict[str, np.ndarray]:
    """CoNSeP .mat variables for an instance map and per-instance types."""
    n = len(types)
    lut = np.array([0, *types], np.int32)
    yy, xx = np.indices(inst.shape)
    counts = np.bincount(inst.ravel(), minlength=n + 1)[1:]
    cx = np.bincount(inst.ravel(), xx.ravel(), minlength=n + 1)[1:] / counts
    cy = np.bincount(inst.ravel(), yy.ravel(), minlength=n + 1)[1:] / counts
    return {
        "inst_map": inst.astype(np.int32),
        "type_map": lut[inst],
        "inst_type": np.asarray(types, np.float64).reshape(n, 1),
        "inst_centroid": np.stack([cx, cy], axis=1).reshape(n, 2),
    }


def _write_consep(spec: dict, classes: list[str], out: Path) -> None:
    """CoNSeP layout: {Train,Test}/{Images,Labels}, plus patients.csv (3 images per patient)."""
    class_ids = _class_ids(classes, ("inflammatory", "epithelial", "spindle"), "consep")
    n_train, _ = _split_counts(spec["num_images"])
    rows = []
    for i in range(spec["num_images"]):
        folder, prefix, k = (
            ("Train", "train", i + 1) if i < n_train else ("Test", "test", i - n_train + 1)
        )
        rgb, inst, types = consep_image(
            _image_rng(spec["seed"], i), spec["height"], spec["width"], class_ids
        )
        (out / folder / "Images").mkdir(parents=True, exist_ok=True)
        (out / folder / "Labels").mkdir(parents=True, exist_ok=True)
        _save_png(rgb, out / folder / "Images" / f"{prefix}_{k}.png")
        _save_mat(_consep_mat(inst, types), out / folder / "Labels" / f"{prefix}_{k}.mat")
        rows.append((f"{prefix}_{k}", f"patient_{i // 3 + 1:02d}"))
    _write_csv(out / "patients.csv", ["stem", "patient_id"], rows)


# ---- style "glas": glands --------------------------------------------------------------------


def _write_glas(spec: dict, classes: list[str], out: Path) -> None:
    """GlaS layout: Warwick_QU_Dataset/{train,testA,testB}_<k>.bmp + _anno.bmp + Grade.csv."""
    _class_ids(classes, ("benign_gland", "tumour_gland"), "glas")
    n = spec["num_images"]
    n_train, n_test = _split_counts(n)
    n_test_b = n_test // 3
    root = out / "Warwick_QU_Dataset"
    root.mkdir(parents=True)
    rows = []
    for i in range(n):
        if i < n_train:
            name = f"train_{i + 1}"
        elif i < n - n_test_b:
            name = f"testA_{i - n_train + 1}"
        else:
            name = f"testB_{i - (n - n_test_b) + 1}"
        patient = i // 3 + 1
        malignant = patient % 2 == 0
        rgb, anno = glas_image(
            _image_rng(spec["seed"], i), spec["height"], spec["width"], malignant
        )
        _save_bmp(rgb, root / f"{name}.bmp")
        _save_bmp(anno, root / f"{name}_anno.bmp")
        grade = " malignant" if malignant else " benign"
        detail = [
            " healthy",
            " adenomatous",
            " moderately differentiated",
            " poorly differentiated",
        ]
        rows.append((name, str(patient), grade, detail[2 * malignant + i % 2]))
    header = ["name", " patient ID", " grade (GlaS)", " grade (Sirinukunwattana et al. 2015)"]
    _write_csv(root / "Grade.csv", header, rows)


# ---- style "bcss": tissue regions ------------------------------------------------------------


SITES = ("OL", "LL", "E2", "EW", "GM", "S3", "A2", "AR", "BH", "C8", "A8", "A1", "E9", "D8")


def _write_bcss(spec: dict, classes: list[str], out: Path) -> None:
    """BCSS layout: rgbs_colorNormalized/, masks/ (same names), meta/gtruth_codes.tsv."""
    for sub in ("rgbs_colorNormalized", "masks", "meta"):
        (out / sub).mkdir(parents=True)
    names = np.random.default_rng([int(spec["seed"]), 1 << 20])
    alphabet = np.array(list("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"))
    cases: list[str] = []
    for i in range(spec["num_images"]):
        if i % 2 == 0:  # two ROIs per TCGA case
            while (
                case := f"TCGA-{SITES[(i // 2) % len(SITES)]}-{''.join(names.choice(alphabet, 4))}"
            ) in cases:
                pass
            cases.append(case)
        rng = _image_rng(spec["seed"], i)
        rgb, mask = bcss_image(rng, spec["height"], spec["width"], classes, forced=i % len(classes))
        x, y = int(names.integers(10_000, 90_000)), int(names.integers(10_000, 90_000))
        name = f"{cases[-1]}-DX1_xmin{x}_ymin{y}_MPP-0.2500.png"
        _save_png(rgb, out / "rgbs_colorNormalized" / name)
        _save_png(mask, out / "masks" / name)
    rows = [(label, str(code)) for code, label in enumerate(classes)]
    _write_csv(out / "meta" / "gtruth_codes.tsv", ["label", "GT_code"], rows, delimiter="\t")


# ---- entry point -----------------------------------------------------------------------------


def _class_ids(classes: list[str], needed: tuple[str, ...], style: str) -> dict[str, int]:
    """Indices of the class names a style draws; raise if the card lacks one."""
    missing = [c for c in needed if c not in classes]
    if missing:
        raise ValueError(
            f"synthetic style {style!r} needs classes {list(needed)} but the card's classes "
            f"{classes} lack {missing}; fix the card's classes"
        )
    return {c: classes.index(c) for c in needed}


def _write_csv(
    path: Path, header: list[str], rows: list[tuple[str, ...]], delimiter: str = ","
) -> None:
    """Write a small CSV/TSV with Unix newlines."""
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh, delimiter=delimiter, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


WRITERS: dict[str, Callable[[dict, list[str], Path], None]] = {
    "consep": _write_consep,
    "glas": _write_glas,
    "bcss": _write_bcss,
}


def _spec(card: dict) -> dict:
    """Validated `synthetic` block of a card."""
    spec = dict(card.get("synthetic") or {})
    missing = [k for k in ("style", "num_images", "height", "width", "seed") if k not in spec]
    if missing:
        raise ValueError(f"dataset card's 'synthetic' block lacks {missing}; add them")
    if spec["style"] not in WRITERS:
        raise ValueError(f"unknown synthetic style {spec['style']!r}; valid styles: {list(STYLES)}")
    for key in ("num_images", "height", "width", "seed"):
        spec[key] = int(spec[key])
    if spec["num_images"] < 1 or min(spec["height"], spec["width"]) < 32:
        raise ValueError("synthetic num_images must be >= 1 and height/width >= 32; fix the card")
    return spec


def write_synthetic_raw(card: dict, out_dir: Path) -> None:
    """Write the synthetic raw dataset of `card` into out_dir (atomically replacing it)."""
    spec = _spec(card)
    with atomic_output(Path(out_dir)) as tmp:
        tmp.mkdir()
        WRITERS[spec["style"]](spec, list(card["classes"]), tmp)
