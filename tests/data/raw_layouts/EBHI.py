"""EBHI-Seg as its archive unpacks: `EBHI-SEG/<Category>/{image,label}/<name>.png` + readme.

224 px in the release, 64 px here. Labels are binary PNGs with the image's file name: 0/255
grey, one 0/1 grey and one 3-channel. Two release quirks are reproduced: the file name
`GT2012149-2-400-005` occurs in `Low-grade IN` and in `Polyp` (different images; the later
category, Polyp, is what the authors' flat copy keeps), and one `Normal` image has no label
file (the authors' script skips it). Eight image files, six samples.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from tests.data.raw_layouts import box_label, tinted_noise

TINT = (200, 125, 175)  # mean RGB of the images
FILES = {  # category -> [(stem, label style or None = no label file)]
    "Adenocarcinoma": [("GT2016907-1-400-003", "0-255"), ("GT2016907-1-400-004", "0-1")],
    "High-grade IN": [("GTXC2014192-2-400-006", "0-255")],
    "Low-grade IN": [("GT2012149-2-400-005", "0-255")],
    "Normal": [("GTxc2014080-2-400-001", "rgb"), ("GTxc2014080-2-400-002", None)],
    "Polyp": [("GT2012149-2-400-005", "0-255")],
    "Serrated adenoma": [("GTXC2110135-2-400-007", "0-255")],
}
KNOWN = {"sample": "GT2012149-2-400-005", "category": "Polyp", "box": (20, 50, 10, 40), "class": 5}
"""The duplicated name: its Polyp label box (y0, y1, x0, x1) must come out as class 5."""
SIZE = 64


def make_raw(root: Path, card: dict) -> None:
    """Write the tiny EBHI-Seg tree under root/EBHI-SEG."""
    base = Path(root) / "EBHI-SEG"
    base.mkdir(parents=True, exist_ok=True)
    (base / "readme.md").write_text("EBHI-Seg (tiny test copy)\n")
    seed = 0
    for category, entries in FILES.items():
        (base / category / "image").mkdir(parents=True)
        (base / category / "label").mkdir(parents=True)
        for stem, style in entries:
            seed += 1
            rgb = tinted_noise(SIZE, SIZE, seed, TINT)
            Image.fromarray(rgb).save(base / category / "image" / f"{stem}.png")
            if style is None:
                continue
            known = stem == KNOWN["sample"] and category == KNOWN["category"]
            box = KNOWN["box"] if known else (2 + seed, 30 + seed, 4, 24)
            label = box_label(SIZE, SIZE, box, style)
            Image.fromarray(label).save(base / category / "label" / f"{stem}.png")


def corrupt_mask(root: Path) -> Path:
    """Truncate one label PNG (undecodable); return its path."""
    path = Path(root) / "EBHI-SEG" / "Adenocarcinoma" / "label" / "GT2016907-1-400-004.png"
    path.write_bytes(path.read_bytes()[:60])
    return path
