"""COSAS24 training set as its archive unpacks: `COSAS24-TrainingSet/<task>/<domain>/{image,mask}`.

task1 holds the organs, task2 the scanners; images and masks are PNGs named by a 12-hex id,
the mask under the image's file name. Masks come in the variants participants report: 0/1
grey, 0/255 grey, and 3-channel 0/255. One image per domain (six), 64-96 px.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from PIL import Image

from tests.data.raw_layouts import box_label, tinted_noise

TINT = (205, 130, 185)  # mean RGB of the images
DOMAINS = {
    "task1": ["colorectum", "pancreas", "stomach"],
    "task2": ["kfbio-400", "3d-1000", "teksqray-600p"],
}
MASK_STYLES = ("0-1", "0-255", "rgb")
KNOWN = {"domain": ("task1", "colorectum"), "box": (10, 30, 12, 50), "class": 1}
"""Tumour box (y0, y1, x0, x1) of the colorectum image, stored as a 3-channel 0/255 mask."""


def image_id(task: str, domain: str) -> str:
    """Deterministic 12-hex file stem of a domain's image."""
    return hashlib.sha1(f"{task}/{domain}".encode()).hexdigest()[:12]


def make_raw(root: Path, card: dict) -> None:
    """Write the tiny COSAS24 tree under root/COSAS24-TrainingSet."""
    base = Path(root) / "COSAS24-TrainingSet"
    seed = 0
    for task, domains in DOMAINS.items():
        for domain in domains:
            seed += 1
            height, width = 64 + 8 * (seed % 3), 64 + 16 * (seed % 3)
            folder = base / task / domain
            (folder / "image").mkdir(parents=True)
            (folder / "mask").mkdir(parents=True)
            name = f"{image_id(task, domain)}.png"
            rgb = tinted_noise(height, width, seed, TINT)
            Image.fromarray(rgb).save(folder / "image" / name)
            if (task, domain) == KNOWN["domain"]:
                box, style = KNOWN["box"], "rgb"
            else:
                box, style = (4, height // 2, 4, width // 3), MASK_STYLES[seed % 2]
            Image.fromarray(box_label(height, width, box, style)).save(folder / "mask" / name)


def corrupt_mask(root: Path) -> Path:
    """Truncate one mask PNG (undecodable); return its path."""
    path = (
        Path(root)
        / "COSAS24-TrainingSet"
        / "task2"
        / "3d-1000"
        / "mask"
        / f"{image_id('task2', '3d-1000')}.png"
    )
    path.write_bytes(path.read_bytes()[:60])
    return path
