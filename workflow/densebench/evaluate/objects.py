"""Object-level metrics of nuclei and glands as pure functions of additive per-image tallies.

A prediction job turns each test image's predicted class map into objects
(`predicted_instances`) and compares them with the ground-truth instance map (0 = background,
1..K objects; ids need not be consecutive): `tally` gives one small float64 vector per image
(`FIELDS[kind]`). Every tally is a sum over the objects of the image, so the tallies of a test
set, or of a bootstrap replicate, add up, and the dataset-level metrics are functions of the
summed vector (`object_metrics`); `replicate_object_metrics` sums the tallies of the same image
draws as the pixel metrics (`bootstrap.bootstrap_indices`, `bootstrap.replicate_counts`).

Objects (`predicted_instances`): connected components in 8-connectivity (the 3x3 structuring
element). Nuclei: the components of each predicted foreground class separately (two touching
nuclei of different classes are two objects), numbered class by class; matching is class
agnostic (every ground-truth nucleus against every predicted object). Glands: the components of
the union of all foreground classes (GlaS's ``bwlabel(BW, 8)``).

Nuclei (`NUCLEUS_FIELDS`, `NUCLEUS_METRICS`)
--------------------------------------------
Panoptic quality (Kirillov et al., "Panoptic Segmentation", CVPR 2019; as HoVer-Net's
``get_fast_pq``, github.com/vqdang/hover_net ``metrics/stats_utils.py``, match_iou = 0.5): a
ground-truth object G and a predicted object P match when IoU(G, P) > 0.5 (such pairs are unique:
two disjoint objects cannot both overlap a third by more than half). TP = matches, FP =
unmatched predictions, FN = unmatched ground truth, iou_sum = sum of the matched IoUs. Over a
set of images (sums of the tallies): DQ = TP / (TP + FP/2 + FN/2), SQ = iou_sum / TP,
PQ = SQ * DQ. Nucleus_F1 = 2 TP / (2 TP + FP + FN), the detection F1 at IoU > 0.5, which is
exactly DQ (same formula; reported under both names). HoVer-Net divides by TP + 1e-6 in SQ; we
divide by TP exactly.

Aggregated Jaccard index (Kumar et al., "A Dataset and a Technique for Generalized Nuclear
Segmentation for Computational Pathology", IEEE TMI 36(7), 2017; as HoVer-Net's
``get_fast_aji``): each ground-truth object G is paired with the predicted object of maximum
IoU among those it intersects (a prediction may serve several ground-truth objects, the known
over-penalisation of AJI); aji_intersection = sum over paired G of |G n P|, aji_union = sum over
paired G of |G u P| + the areas of the ground-truth objects that intersect no prediction + the
areas of the predictions paired with no ground-truth object. Over images: AJI = sum of
intersections / sum of unions (the images' objects pooled, as Kumar's AJI over one image).
Ties in IoU go to the smallest predicted label; IoUs are compared exactly (HoVer-Net's
inter / (union + 1e-6) differs only on exact ties, which it breaks towards the larger union).

Glands (`GLAND_FIELDS`, `GLAND_METRICS`)
----------------------------------------
GlaS challenge (Sirinukunwattana et al., "Gland segmentation in colon histology images: The
GlaS challenge contest", Medical Image Analysis 35:489-502, 2017; glas.grand-challenge.org
/Evaluation; its MATLAB code ``F1score.m``, ``ObjectDice.m``, ``ObjectHausdorff.m``). For a
segmented (predicted) object S, G*(S) is the ground-truth object of maximum overlap with S
(MATLAB ``mode`` of the non-zero labels under S: ties go to the smallest label); for a
ground-truth object G, S*(G) likewise.

- Object_F1: S is a TP when it overlaps G*(S) on more than half of G*(S)'s area
  (|S n G*(S)| / |G*(S)| > 0.5, strictly, as the code; the web page says "at least 50%"); every
  other segmented object is a FP; FN = #ground-truth objects - TP (the page: a ground-truth
  object with no corresponding segmented object or one covering less than half of it). Note: a
  copy of ``F1score.m`` headed "Korsuk Sirinukunwattana 2015" counts as FN only the
  ground-truth objects that are no segmented object's G*; we follow the written definition.
  Object_F1 = 2 TP / (2 TP + FP + FN).
- Object_Dice = 1/2 [sum_G w_G Dice(G, S*(G)) + sum_S w~_S Dice(G*(S), S)], with
  w_G = |G| / sum of |G'| over all ground-truth objects of the test set and w~_S = |S| / sum of
  |S'| over all segmented objects of the test set (the challenge's weights are normalised over
  the whole test set, its sets of all objects of all images). An object intersecting nothing
  has Dice 0 (``ObjectDice.m``: the empty partner).
- Object_Hausdorff: the same weights and partners with the Hausdorff distance, except that an
  object intersecting nothing is paired with the object of the other side, in the same image, at
  minimum Hausdorff distance (``ObjectHausdorff.m``; the paper: the nearest one). Hausdorff
  distance: the exact Euclidean Hausdorff distance between the two pixel sets (pixel centres,
  in pixels; the MATLAB code's ``knnsearch`` over all pixels), computed with
  ``scipy.ndimage.distance_transform_edt`` on the pair's bounding box.

The tallies are the additive sums these need: tp, fp, fn; gt_area = sum |G|,
gt_area_dice = sum |G| Dice(G, S*(G)), gt_area_hausdorff = sum |G| H(G, S*(G)); pred_area,
pred_area_dice, pred_area_hausdorff the same over the segmented objects.

Empty cases (definitions of ours where the sources do not reach them)
---------------------------------------------------------------------
- An image with no ground-truth and no predicted object contributes nothing (all tallies 0);
  the per-image challenge scores' 1 for such an image has no dataset-level counterpart.
- No object at all in the summed images (TP + FP + FN = 0): every metric is NaN (undefined);
  AJI is NaN when its union is 0 (the same case).
- Objects but no match (TP = 0): DQ = F1 = PQ = 0 and SQ = 0 (HoVer-Net's 0 / (0 + 1e-6)).
- Predictions but no ground truth (or the reverse) in an image: its predictions are FPs (its
  ground-truth objects FNs), AJI adds their areas to the union, Object_Dice counts them with
  Dice 0, and Object_Hausdorff gives each of them the image diagonal sqrt(H^2 + W^2), a penalty
  larger than any Hausdorff distance within the image (as BraTS scores an empty segmentation
  with the volume's diagonal; the challenge's ``Hausdorff`` returns Inf for an empty set and
  its ``ObjectHausdorff`` has no nearest object to take: the case is not defined there).
- Object_Dice, Object_Hausdorff when one side has no object in the whole set (no prediction
  at all, or no ground truth): that side's weighted sum is dropped and the metric is the other
  side's (Object_Dice then is 0, as the challenge's per-image score for one empty side); NaN
  when neither side has objects.
"""

from __future__ import annotations

import math

import numpy as np

from densebench.evaluate.bootstrap import bootstrap_indices, replicate_counts

KINDS: tuple[str, ...] = ("nucleus", "gland")
NUCLEUS_FIELDS: tuple[str, ...] = ("tp", "fp", "fn", "iou_sum", "aji_intersection", "aji_union")
GLAND_FIELDS: tuple[str, ...] = (
    "tp",
    "fp",
    "fn",
    "gt_area",
    "gt_area_dice",
    "gt_area_hausdorff",
    "pred_area",
    "pred_area_dice",
    "pred_area_hausdorff",
)
FIELDS: dict[str, tuple[str, ...]] = {"nucleus": NUCLEUS_FIELDS, "gland": GLAND_FIELDS}
NUCLEUS_METRICS: tuple[str, ...] = ("PQ", "DQ", "SQ", "AJI", "Nucleus_F1")
GLAND_METRICS: tuple[str, ...] = ("Object_F1", "Object_Dice", "Object_Hausdorff")
METRICS: dict[str, tuple[str, ...]] = {"nucleus": NUCLEUS_METRICS, "gland": GLAND_METRICS}
OBJECT_METRICS: tuple[str, ...] = (*NUCLEUS_METRICS, *GLAND_METRICS)
"""Every object metric, in the tidy table's order (after the 8 pixel metrics; no class)."""

MATCH_IOU = 0.5
"""Nuclei match when their IoU exceeds this (strictly)."""
EIGHT_CONNECTIVITY = np.ones((3, 3), dtype=bool)
"""Structuring element of the predicted objects' connected components."""
# Largest number of (gt, pred) label pairs counted with one bincount; beyond it np.unique.
_MAX_PAIR_BINS = 1 << 22


def check_kind(kind: str) -> str:
    """Return `kind` if it is one of `KINDS`, else raise a ValueError naming them."""
    if kind not in KINDS:
        raise ValueError(f"unknown object kind {kind!r}; expected one of {KINDS}")
    return kind


def predicted_instances(class_map: np.ndarray, kind: str, background: int = 0) -> np.ndarray:
    """Predicted objects (int32, 0 = none, 1..K) of a 2-D class map, in 8-connectivity.

    Nuclei: the connected components of each foreground class separately, numbered class by
    class (ascending class index), so touching nuclei of two classes are two objects. Glands:
    the connected components of the union of all foreground classes. Pixels of class
    `background` belong to no object.
    """
    from scipy import ndimage

    check_kind(kind)
    classes = np.asarray(class_map)
    if classes.ndim != 2 or not (classes.dtype.kind in "iu" or classes.dtype == bool):
        raise ValueError(f"expected a 2-D integer class map, got {classes.dtype} {classes.shape}")
    foreground = classes != background
    if kind == "gland":
        labels, _ = ndimage.label(foreground, structure=EIGHT_CONNECTIVITY, output=np.int32)
        return labels
    objects = np.zeros(classes.shape, dtype=np.int32)
    count = 0
    for value in np.unique(classes[foreground]):
        labels, found = ndimage.label(classes == value, structure=EIGHT_CONNECTIVITY)
        inside = labels > 0
        objects[inside] = labels[inside] + count
        count += found
    return objects


def tally(gt_instances: np.ndarray, pred_instances: np.ndarray, kind: str) -> np.ndarray:
    """One image's additive tallies (float64, `FIELDS[kind]`) of ground truth vs prediction.

    Both maps: 2-D, the same shape, non-negative integers, 0 = background; ids need not be
    consecutive (relabelled internally, order kept).
    """
    check_kind(kind)
    truth, pred = _check_pair(gt_instances, pred_instances)
    objects = _Overlaps(truth, pred)
    if kind == "nucleus":
        return _nucleus_tally(objects)
    return _gland_tally(objects)


def object_metrics(summed: np.ndarray, kind: str) -> dict[str, np.ndarray]:
    """Metrics `METRICS[kind]` of tallies summed over images, shape (..., F) -> (...) arrays."""
    fields = FIELDS[check_kind(kind)]
    totals = np.asarray(summed, dtype=np.float64)
    if totals.ndim == 0 or totals.shape[-1] != len(fields):
        raise ValueError(
            f"expected {kind} tallies of shape (..., {len(fields)}) {fields}, got {totals.shape}"
        )
    column = {name: totals[..., k] for k, name in enumerate(fields)}
    with np.errstate(divide="ignore", invalid="ignore"):
        metrics = _nucleus_metrics(column) if kind == "nucleus" else _gland_metrics(column)
    return {name: np.asarray(value, dtype=np.float64) for name, value in metrics.items()}


def replicate_object_metrics(
    per_image: np.ndarray, kind: str, replicates: int, seed: int
) -> dict[str, np.ndarray]:
    """(replicates,) arrays of each metric over the bootstrap replicates of the images.

    `per_image` is the (N, F) stack of `tally` rows in the order of the confusion matrices; the
    replicates are the pixel metrics' (`bootstrap_indices(N, replicates, seed)`).
    """
    fields = FIELDS[check_kind(kind)]
    table = np.asarray(per_image, dtype=np.float64)
    if table.ndim != 2 or table.shape[1] != len(fields):
        raise ValueError(f"expected per-image {kind} tallies (N, {len(fields)}), got {table.shape}")
    if table.shape[0] == 0:
        raise ValueError("cannot bootstrap an empty set of images")
    if replicates < 1:
        raise ValueError(f"replicates must be >= 1, got {replicates}")
    n = table.shape[0]
    counts = replicate_counts(bootstrap_indices(n, replicates, seed), n)
    return object_metrics(counts.astype(np.float64) @ table, kind)


# --- per-image tallies -------------------------------------------------------------------------


def _check_pair(gt_instances: np.ndarray, pred_instances: np.ndarray) -> tuple[np.ndarray, ...]:
    """Both instance maps as arrays, checked: 2-D, same shape, non-negative integers."""
    maps = (np.asarray(gt_instances), np.asarray(pred_instances))
    for name, labels in zip(("ground-truth", "predicted"), maps, strict=True):
        if labels.ndim != 2 or labels.dtype.kind not in "iu":
            raise ValueError(
                f"{name} instances must be a 2-D integer map, got {labels.dtype} {labels.shape}"
            )
        if labels.size and labels.min() < 0:
            raise ValueError(f"{name} instance ids must be >= 0 (0 = background)")
    if maps[0].shape != maps[1].shape:
        raise ValueError(
            f"ground-truth instances {maps[0].shape} and predicted instances {maps[1].shape} "
            "differ in shape"
        )
    return maps


def _consecutive(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Relabel ids to 1..K in increasing order of the original ids (0 stays 0); return K."""
    flat = labels.ravel()
    top = int(flat.max(initial=0))
    if top == 0:
        return np.zeros(labels.shape, dtype=np.int64), 0
    if top <= 4 * flat.size + 1024:
        present = np.flatnonzero(np.bincount(flat.astype(np.int64, copy=False)))
    else:
        present = np.unique(flat)
    present = present[present > 0]
    if present.size == top:
        return labels.astype(np.int64, copy=False), top
    relabelled = np.searchsorted(present, flat) + 1
    relabelled[flat == 0] = 0
    return relabelled.reshape(labels.shape), int(present.size)


class _Overlaps:
    """Consecutive labels, areas and the sparse list of intersecting (gt, pred) pairs."""

    def __init__(self, truth: np.ndarray, pred: np.ndarray) -> None:
        self.truth, self.n_truth = _consecutive(truth)
        self.pred, self.n_pred = _consecutive(pred)
        self.truth_area = np.bincount(self.truth.ravel(), minlength=self.n_truth + 1)
        self.pred_area = np.bincount(self.pred.ravel(), minlength=self.n_pred + 1)
        both = (self.truth > 0) & (self.pred > 0)
        width = self.n_pred + 1
        key = self.truth[both] * width + self.pred[both]
        if (self.n_truth + 1) * width <= _MAX_PAIR_BINS:
            counts = np.bincount(key, minlength=(self.n_truth + 1) * width)
            keys = np.flatnonzero(counts)
            inter = counts[keys]
        else:
            keys, inter = np.unique(key, return_counts=True)
        # Pairs sorted by (gt, pred); every pair intersects (inter >= 1).
        self.gt, self.pr = keys // width, keys % width
        self.inter = inter.astype(np.int64)
        self.gt_of_pair = self.truth_area[self.gt]
        self.pred_of_pair = self.pred_area[self.pr]


def _best_pairs(owner: np.ndarray, partner: np.ndarray, score: np.ndarray, n: int) -> np.ndarray:
    """best[k] = index of owner k's pair of maximum score (ties: smallest partner), -1 if none."""
    best = np.full(n + 1, -1, dtype=np.int64)
    if owner.size == 0:
        return best
    order = np.lexsort((partner, -score, owner))
    sorted_owner = owner[order]
    first = np.ones(order.size, dtype=bool)
    first[1:] = sorted_owner[1:] != sorted_owner[:-1]
    best[sorted_owner[first]] = order[first]
    return best


def _nucleus_tally(o: _Overlaps) -> np.ndarray:
    """tp, fp, fn, iou_sum (IoU > 0.5 matches) and AJI's intersection and union sums."""
    union = o.gt_of_pair + o.pred_of_pair - o.inter
    iou = o.inter / union
    matched = iou > MATCH_IOU
    tp = int(matched.sum())
    best = _best_pairs(o.gt, o.pr, iou, o.n_truth)[1:]
    paired = best[best >= 0]
    used = np.zeros(o.n_pred + 1, dtype=bool)
    used[o.pr[paired]] = True
    aji_union = (
        union[paired].sum() + o.truth_area[1:][best < 0].sum() + o.pred_area[1:][~used[1:]].sum()
    )
    return np.array(
        [
            tp,
            o.n_pred - tp,
            o.n_truth - tp,
            float(iou[matched].sum()),
            float(o.inter[paired].sum()),
            float(aji_union),
        ],
        dtype=np.float64,
    )


def _gland_tally(o: _Overlaps) -> np.ndarray:
    """GlaS tallies: tp, fp, fn and per side the area, area-weighted Dice and Hausdorff sums."""
    dice = 2.0 * o.inter / (o.gt_of_pair + o.pred_of_pair)
    gt_best = _best_pairs(o.gt, o.pr, o.inter, o.n_truth)[1:]  # S*(G) per ground-truth object
    pred_best = _best_pairs(o.pr, o.gt, o.inter, o.n_pred)[1:]  # G*(S) per predicted object
    hit = pred_best[pred_best >= 0]
    tp = int(np.count_nonzero(2 * o.inter[hit] > o.gt_of_pair[hit]))
    distances = _Hausdorff(o)
    gt_h = [distances.partner(g + 1, k, truth_side=True) for g, k in enumerate(gt_best)]
    pred_h = [distances.partner(p + 1, k, truth_side=False) for p, k in enumerate(pred_best)]
    gt_area, pred_area = o.truth_area[1:], o.pred_area[1:]
    return np.array(
        [
            tp,
            o.n_pred - tp,
            o.n_truth - tp,
            gt_area.sum(),
            float(gt_area @ _pair_values(dice, gt_best)),
            float(gt_area @ np.asarray(gt_h, dtype=np.float64).reshape(-1)),
            pred_area.sum(),
            float(pred_area @ _pair_values(dice, pred_best)),
            float(pred_area @ np.asarray(pred_h, dtype=np.float64).reshape(-1)),
        ],
        dtype=np.float64,
    )


def _pair_values(values: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """values[pairs[k]] per object k, 0 where it has no pair (-1)."""
    out = np.zeros(pairs.size, dtype=np.float64)
    has = pairs >= 0
    out[has] = values[pairs[has]]
    return out


class _Hausdorff:
    """Hausdorff distances between the objects of one image, on cropped bounding boxes."""

    def __init__(self, o: _Overlaps) -> None:
        from scipy import ndimage

        self.o = o
        self.truth_boxes = _boxes(ndimage.find_objects(o.truth), o.n_truth)
        self.pred_boxes = _boxes(ndimage.find_objects(o.pred), o.n_pred)
        self.diagonal = math.hypot(*o.truth.shape)
        self.cache: dict[tuple[int, int], float] = {}

    def partner(self, label: int, pair: int, truth_side: bool) -> float:
        """H(object, its partner): the pair's other object, else the nearest one in the image."""
        if pair >= 0:
            return self.between(int(self.o.gt[pair]), int(self.o.pr[pair]))
        return self.nearest(label, truth_side)

    def between(self, g: int, p: int) -> float:
        """Exact Hausdorff distance between ground-truth object g and predicted object p."""
        if (g, p) not in self.cache:
            box = _union_box(self.truth_boxes[g], self.pred_boxes[p])
            rows, cols = slice(box[0], box[1]), slice(box[2], box[3])
            self.cache[g, p] = _hausdorff(
                self.o.truth[rows, cols] == g, self.o.pred[rows, cols] == p
            )
        return self.cache[g, p]

    def nearest(self, label: int, truth_side: bool) -> float:
        """Minimum Hausdorff distance from an object to the other side's objects (else the
        image diagonal), searched in increasing order of a lower bound of it (`_hausdorff_bounds`),
        stopping at the first bound not below the best distance found."""
        own = (self.truth_boxes if truth_side else self.pred_boxes)[label]
        others = self.pred_boxes if truth_side else self.truth_boxes
        if len(others) <= 1:
            return self.diagonal
        bounds = _hausdorff_bounds(own, others[1:])
        best = math.inf
        for k in np.argsort(bounds, kind="stable"):
            if bounds[k] >= best:
                break
            other = int(k) + 1
            pair = (label, other) if truth_side else (other, label)
            best = min(best, self.between(*pair))
        return best


def _boxes(slices: list, n: int) -> np.ndarray:
    """(n + 1, 4) half-open boxes [row0, row1, col0, col1] of labels 0..n (row 0 unused)."""
    boxes = np.zeros((n + 1, 4), dtype=np.int64)
    for k, box in enumerate(slices[:n], start=1):
        boxes[k] = (box[0].start, box[0].stop, box[1].start, box[1].stop)
    return boxes


def _union_box(a: np.ndarray, b: np.ndarray) -> tuple[int, int, int, int]:
    """The smallest half-open box holding boxes a and b."""
    return (min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]))


def _box_gaps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance between the closest pixel centres of half-open boxes a, b (..., 4), broadcast."""
    rows = np.maximum(0, np.maximum(b[..., 0] - a[..., 1] + 1, a[..., 0] - b[..., 1] + 1))
    cols = np.maximum(0, np.maximum(b[..., 2] - a[..., 3] + 1, a[..., 2] - b[..., 3] + 1))
    return np.hypot(rows, cols)


def _box_edges(boxes: np.ndarray) -> np.ndarray:
    """(4, ..., 4) the top, bottom, left and right one-pixel edges of half-open boxes (..., 4)."""
    r0, r1, c0, c1 = (boxes[..., k] for k in range(4))
    return np.stack(
        [
            np.stack([r0, r0 + 1, c0, c1], axis=-1),
            np.stack([r1 - 1, r1, c0, c1], axis=-1),
            np.stack([r0, r1, c0, c0 + 1], axis=-1),
            np.stack([r0, r1, c1 - 1, c1], axis=-1),
        ]
    )


def _hausdorff_bounds(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Lower bounds of the Hausdorff distance between an object of bounding box `box` and
    objects of bounding boxes `others`. An object has a pixel on each edge of its (tight)
    bounding box, and that pixel is at least the edge's gap to the other box away from the
    other object: H >= max over the 4 edges of either box of the gap to the other box."""
    own_edges = _box_gaps(_box_edges(box)[:, None, :], others[None, :, :]).max(axis=0)
    their_edges = _box_gaps(_box_edges(others), box[None, None, :]).max(axis=0)
    return np.maximum(own_edges, their_edges)


def _hausdorff(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Euclidean Hausdorff distance between the non-empty pixel sets a and b (one box
    holding both, so the nearest pixel of either set is inside it)."""
    from scipy import ndimage

    to_b = ndimage.distance_transform_edt(~b)
    to_a = ndimage.distance_transform_edt(~a)
    return float(max(to_b[a].max(), to_a[b].max()))


# --- dataset-level metrics ---------------------------------------------------------------------


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, NaN where the denominator is 0."""
    return np.where(denominator > 0, numerator / denominator, np.nan)


def _nucleus_metrics(t: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """PQ, DQ, SQ, AJI, Nucleus_F1 of summed nucleus tallies (NaN without any object)."""
    tp, errors = t["tp"], t["fp"] + t["fn"]
    dq = _ratio(2.0 * tp, 2.0 * tp + errors)
    sq = np.where(tp > 0, t["iou_sum"] / tp, np.where(errors > 0, 0.0, np.nan))
    return {
        "PQ": sq * dq,
        "DQ": dq,
        "SQ": sq,
        "AJI": _ratio(t["aji_intersection"], t["aji_union"]),
        "Nucleus_F1": dq.copy(),
    }


def _gland_metrics(t: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Object_F1, Object_Dice, Object_Hausdorff of summed gland tallies."""
    tp = t["tp"]
    return {
        "Object_F1": _ratio(2.0 * tp, 2.0 * tp + t["fp"] + t["fn"]),
        "Object_Dice": _two_sided(
            _ratio(t["gt_area_dice"], t["gt_area"]), _ratio(t["pred_area_dice"], t["pred_area"])
        ),
        "Object_Hausdorff": _two_sided(
            _ratio(t["gt_area_hausdorff"], t["gt_area"]),
            _ratio(t["pred_area_hausdorff"], t["pred_area"]),
        ),
    }


def _two_sided(truth_term: np.ndarray, pred_term: np.ndarray) -> np.ndarray:
    """Mean of the two weighted terms; one side alone where the other has no object (NaN)."""
    mean = 0.5 * (truth_term + pred_term)
    return np.where(
        np.isnan(truth_term), pred_term, np.where(np.isnan(pred_term), truth_term, mean)
    )
