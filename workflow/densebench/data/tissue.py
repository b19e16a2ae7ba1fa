"""Synthetic H&E-like tissue images and their labels, for the demo's synthetic datasets.

Images are rendered from haematoxylin and eosin concentration maps with the Beer-Lambert law and
Ruifrok stain vectors (OD = conc @ stains, rgb = 255 * exp(-OD)), with per-image stain jitter
and smooth noise. One generator per synthetic style: `consep_image` (nuclei with an instance
map), `glas_image` (glands with a gland-instance annotation) and `bcss_image` (tissue regions
with a class-code mask). Every function draws only from the generator it is given, so a seeded
generator gives the same image. `densebench.data.synthetic` writes them in a dataset's raw layout.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

# Ruifrok & Johnston (2001) optical-density vectors (R, G, B) for haematoxylin and eosin.
RUIFROK_H = np.array([0.650, 0.704, 0.286])
RUIFROK_E = np.array([0.072, 0.990, 0.105])


# ---- rendering primitives --------------------------------------------------------------------


def smooth_noise(
    rng: np.random.Generator, shape: tuple[int, ...], sigma: float | tuple[float, ...]
) -> np.ndarray:
    """Zero-mean, unit-std smooth noise (Gaussian-filtered white noise).

    For a large scalar sigma the noise is filtered on a coarse grid and upsampled (fast).
    """
    factor = int(sigma // 2) if np.isscalar(sigma) and len(shape) == 2 and sigma >= 4 else 1
    if factor > 1:
        coarse = tuple(-(-n // factor) + 1 for n in shape)
        field = ndimage.gaussian_filter(rng.standard_normal(coarse), sigma / factor, mode="wrap")
        field = ndimage.zoom(field, factor, order=1)[: shape[0], : shape[1]]
    else:
        field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return (field - field.mean()) / (field.std() + 1e-8)


def jittered_stains(rng: np.random.Generator) -> np.ndarray:
    """Per-image (2, 3) stain matrix: perturbed, renormalised Ruifrok vectors times intensities."""
    stains = np.stack([RUIFROK_H, RUIFROK_E]) + rng.normal(0.0, 0.04, (2, 3))
    stains = np.clip(stains, 0.02, None)
    stains /= np.linalg.norm(stains, axis=1, keepdims=True)
    return stains * rng.uniform(0.85, 1.15, (2, 1))


def render(h: np.ndarray, e: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Beer-Lambert rendering of H and E concentration maps to an (H, W, 3) uint8 RGB image."""
    conc = np.stack([ndimage.gaussian_filter(c, 0.5) for c in (h, e)], axis=-1)
    od = np.clip(conc, 0.0, None) @ jittered_stains(rng)
    rgb = 255.0 * np.exp(-od) + rng.normal(0.0, 2.0, od.shape)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def shape_mask(
    shape: tuple[int, int],
    cy: float,
    cx: float,
    a: float,
    b: float,
    theta: float,
    harmonics: np.ndarray | None = None,
) -> tuple[tuple[slice, slice], np.ndarray]:
    """Bounding-box slices and boolean mask of an ellipse whose radius may be perturbed.

    `harmonics` rows are (k, amplitude, phase): radius(phi) = 1 + sum amp * cos(k phi + phase).
    """
    harmonics = np.zeros((0, 3)) if harmonics is None else harmonics
    reach = max(a, b) * (1.0 + np.abs(harmonics[:, 1]).sum()) + 1
    y0, y1 = max(int(cy - reach), 0), min(int(cy + reach) + 2, shape[0])
    x0, x1 = max(int(cx - reach), 0), min(int(cx + reach) + 2, shape[1])
    dy, dx = np.arange(y0, y1)[:, None] - cy, np.arange(x0, x1)[None, :] - cx
    u = (dx * np.cos(theta) + dy * np.sin(theta)) / a
    v = (-dx * np.sin(theta) + dy * np.cos(theta)) / b
    limit = np.ones(u.shape)
    if len(harmonics):
        phi = np.arctan2(v, u)
        for k, amp, phase in harmonics:
            limit += amp * np.cos(k * phi + phase)
    return (slice(y0, y1), slice(x0, x1)), u * u + v * v <= limit * limit


def paint(
    target: np.ndarray,
    value: float,
    *geometry: float,
    harmonics: np.ndarray | None = None,
    where: np.ndarray | None = None,
) -> None:
    """Set the pixels of `shape_mask(*geometry)` (restricted to `where`, if given) to value."""
    box, inside = shape_mask(target.shape[:2], *geometry, harmonics=harmonics)
    if where is not None:
        inside &= where[box]
    target[box][inside] = value


def random_harmonics(
    rng: np.random.Generator, amp: float, ks: tuple[int, ...] = (2, 3, 4, 5)
) -> np.ndarray:
    """Random boundary harmonics (k, amplitude, phase) for irregular shapes."""
    return np.array([(k, rng.uniform(0.3, 1.0) * amp, rng.uniform(0, 2 * np.pi)) for k in ks])


def stroma(rng: np.random.Generator, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """H and E maps of pink fibrous stroma (anisotropic streaks in a random orientation)."""
    sig = (0.8, 5.0) if rng.random() < 0.5 else (5.0, 0.8)
    streaks = smooth_noise(rng, shape, sig)
    e = 0.55 + 0.12 * smooth_noise(rng, shape, 3.0) + 0.15 * streaks
    h = 0.08 + 0.03 * smooth_noise(rng, shape, 2.0)
    return h, e


def paint_many(
    target: np.ndarray,
    values,
    cy: np.ndarray,
    cx: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    theta: np.ndarray,
    where: np.ndarray | None = None,
) -> None:
    """Paint many ellipses at once (vectorised; where two overlap, either may win)."""
    cy, cx, a, b, theta = (np.atleast_1d(np.asarray(x, float)) for x in (cy, cx, a, b, theta))
    if cy.size == 0:
        return
    values = np.broadcast_to(np.asarray(values, float), cy.shape)
    r = int(np.ceil(max(a.max(), b.max()))) + 1
    off = np.arange(-r, r + 1)
    ys = np.rint(cy).astype(int)[:, None, None] + off[None, :, None]
    xs = np.rint(cx).astype(int)[:, None, None] + off[None, None, :]
    dy, dx = ys - cy[:, None, None], xs - cx[:, None, None]
    cos, sin = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
    u = (dx * cos + dy * sin) / a[:, None, None]
    v = (-dx * sin + dy * cos) / b[:, None, None]
    inside = (u * u + v * v <= 1) & (ys >= 0) & (ys < target.shape[0])
    inside &= (xs >= 0) & (xs < target.shape[1])
    yy, xx = np.broadcast_to(ys, inside.shape)[inside], np.broadcast_to(xs, inside.shape)[inside]
    vals = np.broadcast_to(values[:, None, None], inside.shape)[inside]
    if where is not None:
        keep = where[yy, xx]
        yy, xx, vals = yy[keep], xx[keep], vals[keep]
    target[yy, xx] = vals


def sprinkle_nuclei(
    rng: np.random.Generator,
    h: np.ndarray,
    count: int,
    size: tuple[float, float],
    elong: tuple[float, float],
    darkness: float,
    theta: float | None = None,
) -> None:
    """Paint `count` unannotated nuclei (dark H ellipses) at random places into h."""
    a = rng.uniform(*size, count)
    b = a / rng.uniform(*elong, count)
    angle = rng.uniform(0, np.pi, count) if theta is None else theta + rng.normal(0, 0.2, count)
    cy, cx = rng.uniform(0, h.shape[0], count), rng.uniform(0, h.shape[1], count)
    paint_many(h, darkness * rng.uniform(0.85, 1.15, count), cy, cx, a, b, angle)


# ---- style "consep": nuclei -------------------------------------------------------------------

# type name -> (semi-axis a range, elongation a/b range, H darkness)
NUCLEUS_TYPES = {
    "inflammatory": ((1.8, 2.6), (1.0, 1.2), 2.3),
    "epithelial": ((3.2, 4.6), (1.2, 1.6), 1.25),
    "spindle": ((4.5, 6.5), (2.8, 4.0), 1.7),
}


def _nucleus(
    rng: np.random.Generator, kind: str, cy: float, cx: float, theta: float | None = None
) -> tuple[float, float, float, float, float]:
    """Random geometry (cy, cx, a, b, theta) of one nucleus of a given kind."""
    size, elong, _ = NUCLEUS_TYPES[kind]
    a = rng.uniform(*size)
    return cy, cx, a, a / rng.uniform(*elong), rng.uniform(0, np.pi) if theta is None else theta


def consep_image(
    rng: np.random.Generator, height: int, width: int, class_ids: dict[str, int]
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """One nuclei image: RGB, instance map (0 = bg, 1..N) and each instance's class id."""
    shape = (height, width)
    h, e = stroma(rng, shape)
    lumen = smooth_noise(rng, shape, min(shape) / 8) > 1.3
    e[lumen] *= 0.15
    scale = height * width / 6400.0
    nuclei: list[tuple[str, tuple]] = []
    streak_theta = rng.uniform(0, np.pi)
    for _ in range(max(2, round(rng.integers(3, 6) * scale))):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        theta = streak_theta + rng.normal(0, 0.25)
        nuclei.append(("spindle", _nucleus(rng, "spindle", cy, cx, theta)))
    for _ in range(max(1, round(rng.integers(1, 3) * scale))):
        cy, cx = rng.uniform(0.15, 0.85) * height, rng.uniform(0.15, 0.85) * width
        for _ in range(rng.integers(3, 7)):
            geom = _nucleus(rng, "epithelial", cy, cx)
            nuclei.append(("epithelial", geom))
            step = rng.uniform(1.2, 1.8) * geom[2]  # < two semi-axes: neighbours touch/overlap
            angle = rng.uniform(0, 2 * np.pi)
            cy, cx = cy + step * np.sin(angle), cx + step * np.cos(angle)
    for _ in range(max(2, round(rng.integers(4, 10) * scale))):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        nuclei.append(("inflammatory", _nucleus(rng, "inflammatory", cy, cx)))
    inst = np.zeros(shape, np.int32)
    for label, (_, geom) in enumerate(nuclei, start=1):
        paint(inst, label, *geom)  # later nuclei overwrite earlier ones
    present = np.unique(inst)[1:]
    inst = np.searchsorted(np.concatenate([[0], present]), inst).astype(np.int32)
    kinds = [nuclei[i - 1][0] for i in present]
    chromatin = 1.0 + 0.15 * smooth_noise(rng, shape, 0.8)
    darkness = np.array([0.0] + [NUCLEUS_TYPES[k][2] * rng.uniform(0.9, 1.1) for k in kinds])
    h = np.where(inst > 0, darkness[inst] * chromatin, h)
    e = np.where(inst > 0, 0.25, e)
    return render(h, e, rng), inst, [class_ids[k] for k in kinds]


# ---- style "glas": glands --------------------------------------------------------------------


def _gland(
    rng: np.random.Generator,
    shape: tuple[int, int],
    taken: np.ndarray,
    malignant: bool,
    h: np.ndarray,
    e: np.ndarray,
    anno: np.ndarray,
    label: int,
) -> bool:
    """Try to place one gland (rim, lumen, nuclei) without touching others; True if placed."""
    r0 = rng.uniform(0.12, 0.22) * min(shape)
    cy, cx = rng.uniform(0.1, 0.9) * shape[0], rng.uniform(0.1, 0.9) * shape[1]
    a, b, theta = r0, r0 * rng.uniform(0.65, 1.0), rng.uniform(0, np.pi)
    harm = random_harmonics(rng, 0.12) if malignant else random_harmonics(rng, 0.02, ks=(2,))
    outer = np.zeros(shape, bool)
    paint(outer, True, cy, cx, a, b, theta, harmonics=harm)
    if outer.sum() < 20 or (ndimage.binary_dilation(outer, iterations=2) & taken).any():
        return False
    rim = rng.uniform(0.38, 0.5) if malignant else rng.uniform(0.25, 0.35)
    lumen = np.zeros(shape, bool)
    lumens = [(0.0, 0.0)] if not malignant or rng.random() < 0.5 else [(-0.3, 0.0), (0.3, 0.1)]
    for oy, ox in lumens:
        lharm = random_harmonics(rng, 0.25) if malignant else harm
        s = (1 - rim) / len(lumens) ** 0.5
        paint(lumen, True, cy + oy * a, cx + ox * a, a * s, b * s, theta, harmonics=lharm)
    lumen &= outer
    epi = outer & ~lumen
    h[epi], e[epi] = (0.55 if malignant else 0.35), 0.6
    h[lumen], e[lumen] = 0.02, 0.06 + 0.04 * rng.random()
    n_dots = int(2 * np.pi * r0 / (2.6 if malignant else 3.6))
    phi = 2 * np.pi * np.arange(n_dots) / n_dots + rng.normal(0, 0.1, n_dots)
    depth = 1 - rim * (rng.uniform(0.2, 0.8, n_dots) if malignant else 0.3)
    u, v = a * depth * np.cos(phi), b * depth * np.sin(phi)
    ny = cy + u * np.sin(theta) + v * np.cos(theta)
    nx = cx + u * np.cos(theta) - v * np.sin(theta)
    size = rng.uniform(1.5, 2.3, n_dots) if malignant else rng.uniform(1.0, 1.4, n_dots)
    dark = 1.9 if malignant else 1.7
    paint_many(h, dark, ny, nx, size * 1.3, size, phi + theta, where=epi)
    anno[outer] = label
    taken |= outer
    return True


def glas_image(
    rng: np.random.Generator, height: int, width: int, malignant: bool
) -> tuple[np.ndarray, np.ndarray]:
    """One gland image (RGB) and its gland-instance annotation (uint8, 0 = background)."""
    shape = (height, width)
    h, e = stroma(rng, shape)
    sprinkle_nuclei(rng, h, int(height * width / 500), (1.8, 2.6), (2.0, 3.5), 1.5)
    anno = np.zeros(shape, np.uint8)
    taken = np.zeros(shape, bool)
    target, label = int(rng.integers(2, 5)), 0
    for _attempt in range(60):
        if label >= target:
            break
        if _gland(rng, shape, taken, malignant, h, e, anno, label + 1):
            label += 1
    for _attempt in range(1000):  # guarantee at least one gland (nothing to collide with)
        if label > 0:
            break
        label = int(_gland(rng, shape, taken, malignant, h, e, anno, 1))
    else:
        raise RuntimeError(f"could not place a gland in a {height}x{width} image")
    return render(h, e, rng), anno


# ---- style "bcss": tissue regions ------------------------------------------------------------


def _tissue_kind(name: str) -> str:
    """Texture family of a BCSS-style class name."""
    name = name.lower()
    for key, kind in (
        ("background", "background"),
        ("outside", "background"),
        ("tumo", "tumour"),
        ("stroma", "stroma"),
        ("inflam", "inflammatory"),
        ("lympho", "inflammatory"),
        ("necro", "necrosis"),
    ):
        if key in name:
            return kind
    return "stroma"


def _tissue_texture(
    rng: np.random.Generator, kind: str, shape: tuple[int, int], region: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """H and E concentration maps of one tissue class, nuclei placed inside `region`."""
    height, width = shape
    if kind == "background":
        return np.full(shape, 0.02), 0.04 + 0.01 * smooth_noise(rng, shape, 2.0)
    if kind == "stroma":
        h, e = stroma(rng, shape)
        sprinkle_nuclei(rng, h, int(region.sum() / 250), (3.5, 5.0), (3.0, 4.5), 1.6, theta=0.0)
        return h, e + 0.1
    if kind == "necrosis":
        grain = smooth_noise(rng, shape, 0.7)
        h = 0.12 + 0.9 * (grain > 1.8)
        return h, 0.32 + 0.12 * grain
    spacing, size, elong, dark, e0 = {
        "tumour": (6.5, (2.8, 4.0), (1.1, 1.5), 1.35, 0.5),
        "inflammatory": (4.5, (1.3, 1.9), (1.0, 1.15), 2.3, 0.3),
    }[kind]
    h = 0.15 + 0.03 * smooth_noise(rng, shape, 2.0)
    gy, gx = np.meshgrid(
        np.arange(spacing / 2, height, spacing), np.arange(spacing / 2, width, spacing)
    )
    cy = gy.ravel() + rng.normal(0, spacing / 4, gy.size)
    cx = gx.ravel() + rng.normal(0, spacing / 4, gx.size)
    keep = region[np.clip(cy.astype(int), 0, height - 1), np.clip(cx.astype(int), 0, width - 1)]
    cy, cx, n = cy[keep], cx[keep], int(keep.sum())
    a = rng.uniform(*size, n)
    b = a / rng.uniform(*elong, n)
    paint_many(h, dark * rng.uniform(0.85, 1.15, n), cy, cx, a, b, rng.uniform(0, np.pi, n))
    return h, e0 + 0.08 * smooth_noise(rng, shape, 1.5)


def bcss_image(
    rng: np.random.Generator, height: int, width: int, classes: list[str], forced: int
) -> tuple[np.ndarray, np.ndarray]:
    """One tissue image and its class-code mask; class `forced` always occupies a region."""
    shape, n = (height, width), len(classes)
    chosen = {forced, *rng.choice(n, size=int(rng.integers(1, min(n, 4))), replace=False).tolist()}
    fields = np.stack([smooth_noise(rng, shape, min(shape) / 5) for _ in range(n)])
    bias = np.full(n, -np.inf)
    bias[list(chosen)] = 0.0
    bias[forced] = 0.5
    region = np.argmax(fields + bias[:, None, None], axis=0).astype(np.uint8)
    h, e = np.zeros(shape), np.zeros(shape)
    for c in sorted(chosen):
        where = region == c
        if where.any():
            hc, ec = _tissue_texture(rng, _tissue_kind(classes[c]), shape, where)
            h[where], e[where] = hc[where], ec[where]
    return render(h, e, rng), region
