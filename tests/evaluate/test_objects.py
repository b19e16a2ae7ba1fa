"""Nucleus (PQ, AJI) and gland (GlaS) object metrics: worked examples, an independent
straightforward implementation on random maps, the bootstrap over the pixel metrics' draws."""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import pytest

from densebench.evaluate.bootstrap import bootstrap_indices
from densebench.evaluate.objects import (
    FIELDS,
    GLAND_FIELDS,
    METRICS,
    NUCLEUS_FIELDS,
    object_metrics,
    predicted_instances,
    replicate_object_metrics,
    tally,
)


def fields(row: np.ndarray, kind: str) -> dict[str, float]:
    return dict(zip(FIELDS[kind], row.tolist(), strict=True))


def metrics(row: np.ndarray, kind: str) -> dict[str, float]:
    return {name: float(value) for name, value in object_metrics(row, kind).items()}


# --- nuclei: worked examples -------------------------------------------------------------------


def test_two_touching_nuclei_merged_by_the_prediction() -> None:
    # GT: A = 3x4 (12 px, id 5) touching B = 3x2 (6 px, id 9); the prediction is one 3x6 blob.
    gt = np.zeros((3, 6), np.int32)
    gt[:, :4], gt[:, 4:] = 5, 9
    pred = predicted_instances(np.ones((3, 6), np.int64), "nucleus")
    assert pred.max() == 1
    got = fields(tally(gt, pred, "nucleus"), "nucleus")
    # IoU(A, P) = 12/18 = 2/3 > 0.5: a match; IoU(B, P) = 6/18: B is missed.
    # AJI: A -> P (I 12, U 18), B -> P again (I 6, U 18): 18 / 36.
    assert got == pytest.approx(
        {"tp": 1, "fp": 0, "fn": 1, "iou_sum": 2 / 3, "aji_intersection": 18, "aji_union": 36}
    )
    m = metrics(tally(gt, pred, "nucleus"), "nucleus")
    # DQ = 1 / (1 + 0 + 1/2) = 2/3; SQ = 2/3; PQ = 4/9; AJI = 1/2; F1 = 2/(2+0+1) = DQ.
    assert m == pytest.approx(
        {"PQ": 4 / 9, "DQ": 2 / 3, "SQ": 2 / 3, "AJI": 0.5, "Nucleus_F1": 2 / 3}
    )


def test_a_nucleus_split_in_two_by_the_prediction() -> None:
    # GT: one 4x4 nucleus (16 px). Prediction: class 1 on its left 4x3 (12 px), class 2 on its
    # right column (4 px): touching, but two objects as they are two classes.
    gt = np.ones((4, 4), np.int32)
    classes = np.ones((4, 4), np.int64)
    classes[:, 3] = 2
    pred = predicted_instances(classes, "nucleus")
    assert sorted(np.unique(pred)) == [1, 2]
    row = tally(gt, pred, "nucleus")
    # IoU(G, left) = 12/16 = 0.75 (match), IoU(G, right) = 4/16: FP.
    # AJI: G -> left (I 12, U 16); the right piece is unused: U += 4 -> 12/20.
    assert fields(row, "nucleus") == pytest.approx(
        {"tp": 1, "fp": 1, "fn": 0, "iou_sum": 0.75, "aji_intersection": 12, "aji_union": 20}
    )
    # DQ = 1 / (1 + 1/2) = 2/3, SQ = 3/4, PQ = 1/2, AJI = 3/5.
    assert metrics(row, "nucleus") == pytest.approx(
        {"PQ": 0.5, "DQ": 2 / 3, "SQ": 0.75, "AJI": 0.6, "Nucleus_F1": 2 / 3}
    )


def test_an_even_split_matches_nothing_and_aji_takes_the_smaller_label() -> None:
    # 4x4 nucleus split into two 4x2 halves: IoU 8/16 = 0.5 is not > 0.5. AJI's tie goes to
    # the smaller label (the left half): I 8, U 16 + the unused right half 8 -> 8/24.
    gt = np.ones((4, 4), np.int32)
    pred = np.array([[1, 1, 2, 2]] * 4, np.int32)
    row = tally(gt, pred, "nucleus")
    assert fields(row, "nucleus") == pytest.approx(
        {"tp": 0, "fp": 2, "fn": 1, "iou_sum": 0, "aji_intersection": 8, "aji_union": 24}
    )
    # Objects but no match: DQ = PQ = 0 and SQ = 0 (HoVer-Net's 0 / (0 + 1e-6)).
    assert metrics(row, "nucleus") == pytest.approx(
        {"PQ": 0, "DQ": 0, "SQ": 0, "AJI": 1 / 3, "Nucleus_F1": 0}
    )


def test_an_empty_image_contributes_nothing_and_no_objects_is_nan() -> None:
    empty = np.zeros((5, 5), np.int32)
    for kind in ("nucleus", "gland"):
        row = tally(empty, empty, kind)
        assert np.array_equal(row, np.zeros(len(FIELDS[kind])))
        assert all(math.isnan(v) for v in metrics(row, kind).values())
    gt = np.ones((4, 4), np.int32)
    pred = np.array([[1, 1, 2, 2]] * 4, np.int32)
    one = tally(gt, pred, "nucleus")
    with_empty = np.stack([one, tally(empty, empty, "nucleus")]).sum(axis=0)
    assert metrics(with_empty, "nucleus") == metrics(one, "nucleus")


def test_predictions_without_ground_truth_are_false_positives() -> None:
    gt = np.zeros((4, 4), np.int32)
    pred = np.zeros((4, 4), np.int32)
    pred[1:3, 1:3] = 7
    row = tally(gt, pred, "nucleus")
    # One FP of 4 px; AJI: no intersection, the unused prediction's 4 px in the union.
    assert fields(row, "nucleus") == pytest.approx(
        {"tp": 0, "fp": 1, "fn": 0, "iou_sum": 0, "aji_intersection": 0, "aji_union": 4}
    )
    assert metrics(row, "nucleus") == pytest.approx(
        {"PQ": 0, "DQ": 0, "SQ": 0, "AJI": 0, "Nucleus_F1": 0}
    )


# --- glands: worked examples -------------------------------------------------------------------


def test_a_missed_gland() -> None:
    # Two 3x3 glands, 6 columns apart; the prediction finds the left one exactly.
    gt = np.zeros((5, 10), np.int32)
    gt[0:3, 0:3], gt[0:3, 6:9] = 1, 2
    pred = np.where(gt == 1, 1, 0).astype(np.int32)
    row = tally(gt, pred, "gland")
    # F1: TP 1, FP 0, FN 1 -> 2/3. Dice: GT side (9*1 + 9*0)/18, predicted side 1 -> 3/4.
    # Hausdorff: the missed gland's partner is the nearest prediction, H = 6 (a shift by 6
    # columns): GT side (9*0 + 9*6)/18 = 3, predicted side 0 -> 3/2.
    assert fields(row, "gland") == pytest.approx(
        {
            "tp": 1,
            "fp": 0,
            "fn": 1,
            "gt_area": 18,
            "gt_area_dice": 9,
            "gt_area_hausdorff": 54,
            "pred_area": 9,
            "pred_area_dice": 9,
            "pred_area_hausdorff": 0,
        }
    )
    assert metrics(row, "gland") == pytest.approx(
        {"Object_F1": 2 / 3, "Object_Dice": 0.75, "Object_Hausdorff": 1.5}
    )


def test_a_gland_with_a_false_positive_fragment() -> None:
    # A 3x3 gland found exactly, plus a one-pixel fragment at (0, 5).
    gt = np.zeros((4, 7), np.int32)
    gt[0:3, 0:3] = 1
    classes = np.zeros((4, 7), np.int64)
    classes[0:3, 0:3] = 1
    classes[0, 5] = 2
    pred = predicted_instances(classes, "gland")
    assert pred.max() == 2
    # F1: TP 1, FP 1 -> 2/3. Dice: GT side 1; predicted side (9*1 + 1*0)/10 -> (1 + 0.9)/2.
    # Hausdorff: the fragment's nearest gland is the 3x3 one: its farthest pixel (2, 0) is
    # sqrt(2^2 + 5^2) from (0, 5) -> predicted side sqrt(29)/10, GT side 0.
    m = metrics(tally(gt, pred, "gland"), "gland")
    assert m == pytest.approx(
        {"Object_F1": 2 / 3, "Object_Dice": 0.95, "Object_Hausdorff": math.sqrt(29) / 20}
    )


@pytest.mark.parametrize(
    ("shift", "expected"),
    [
        # One column: overlap 6 of 9 (> half: TP), Dice 12/18, Hausdorff 1.
        ((0, 1), {"Object_F1": 1.0, "Object_Dice": 2 / 3, "Object_Hausdorff": 1.0}),
        # One diagonal step: overlap 4 of 9 (< half: FP and FN), Dice 8/18, Hausdorff sqrt(2).
        ((1, 1), {"Object_F1": 0.0, "Object_Dice": 4 / 9, "Object_Hausdorff": math.sqrt(2)}),
    ],
)
def test_three_by_three_glands_offset_by_one_pixel(
    shift: tuple[int, int], expected: dict[str, float]
) -> None:
    gt = np.zeros((6, 6), np.int32)
    gt[1:4, 1:4] = 1
    pred = np.zeros((6, 6), np.int32)
    pred[1 + shift[0] : 4 + shift[0], 1 + shift[1] : 4 + shift[1]] = 1
    assert metrics(tally(gt, pred, "gland"), "gland") == pytest.approx(expected)


def test_exactly_half_of_a_gland_is_not_a_true_positive() -> None:
    # |S n G| / |G| = 4/8 is not > 0.5 (the challenge code's strict test).
    gt = np.zeros((4, 6), np.int32)
    gt[0:2, 0:4] = 1
    pred = np.zeros((4, 6), np.int32)
    pred[0:2, 0:2] = 1
    got = fields(tally(gt, pred, "gland"), "gland")
    assert (got["tp"], got["fp"], got["fn"]) == (0, 1, 1)


def test_the_partner_without_overlap_is_the_nearest_by_hausdorff_not_by_gap() -> None:
    # A one-pixel fragment at (0, 10); glands: a bar on row 2, columns 0..7 (closest pixel
    # sqrt(13) away, but H = sqrt(2^2 + 10^2)), and one pixel at (0, 14) (H = 4).
    gt = np.zeros((3, 15), np.int32)
    gt[2, 0:8], gt[0, 14] = 1, 2
    pred = np.zeros((3, 15), np.int32)
    pred[0, 10] = 1
    got = fields(tally(gt, pred, "gland"), "gland")
    assert got["pred_area_hausdorff"] == pytest.approx(4.0)
    assert got["gt_area_hausdorff"] == pytest.approx(8 * math.sqrt(104) + 4.0)


def test_weights_are_normalised_over_the_whole_test_set() -> None:
    # Image 1: a 3x3 gland found exactly. Image 2 (4x6): a 2-pixel gland, no prediction: Dice 0
    # and the image diagonal sqrt(4^2 + 6^2) as its Hausdorff distance.
    gt1 = np.zeros((5, 5), np.int32)
    gt1[1:4, 1:4] = 3
    gt2 = np.zeros((4, 6), np.int32)
    gt2[1, 1:3] = 1
    rows = np.stack([tally(gt1, gt1, "gland"), tally(gt2, np.zeros_like(gt2), "gland")])
    # Dice: GT side (9*1 + 2*0)/11, predicted side 1 -> (9/11 + 1)/2 = 10/11 (a per-image mean
    # would give 1/2). Hausdorff: GT side (9*0 + 2*sqrt(52))/11, predicted side 0.
    assert metrics(rows.sum(axis=0), "gland") == pytest.approx(
        {"Object_F1": 2 / 3, "Object_Dice": 10 / 11, "Object_Hausdorff": math.sqrt(52) / 11}
    )


def test_one_side_without_objects_in_the_whole_set() -> None:
    gt = np.zeros((4, 5), np.int32)
    gt[0:2, 0:2] = 1
    missed = tally(gt, np.zeros_like(gt), "gland")
    # No prediction at all: F1 0, Dice 0 (the GT side alone), Hausdorff the diagonal sqrt(41).
    assert metrics(missed, "gland") == pytest.approx(
        {"Object_F1": 0.0, "Object_Dice": 0.0, "Object_Hausdorff": math.sqrt(41)}
    )
    phantom = tally(np.zeros_like(gt), gt, "gland")
    assert metrics(phantom, "gland") == pytest.approx(
        {"Object_F1": 0.0, "Object_Dice": 0.0, "Object_Hausdorff": math.sqrt(41)}
    )


# --- objects of a class map --------------------------------------------------------------------


def reference_components(class_map: np.ndarray, kind: str) -> set[frozenset]:
    """Objects as pixel sets by flood fill in 8-connectivity (per class for nuclei)."""
    key = class_map if kind == "nucleus" else (class_map != 0).astype(int)
    seen = np.zeros(class_map.shape, bool)
    objects = set()
    for start in zip(*np.nonzero(class_map), strict=True):
        if seen[start]:
            continue
        seen[start] = True
        queue, pixels = deque([start]), []
        while queue:
            y, x = queue.popleft()
            pixels.append((int(y), int(x)))
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    q = (y + dy, x + dx)
                    inside = 0 <= q[0] < key.shape[0] and 0 <= q[1] < key.shape[1]
                    if inside and not seen[q] and class_map[q] != 0 and key[q] == key[y, x]:
                        seen[q] = True
                        queue.append(q)
        objects.add(frozenset(pixels))
    return objects


def as_objects(instances: np.ndarray) -> set[frozenset]:
    return {
        frozenset((int(y), int(x)) for y, x in np.argwhere(instances == k))
        for k in np.unique(instances)
        if k
    }


@pytest.mark.parametrize("kind", ["nucleus", "gland"])
def test_predicted_instances_are_the_8_connected_components(kind: str) -> None:
    for seed in range(5):
        classes = np.random.default_rng(seed).choice(3, size=(16, 16), p=[0.6, 0.2, 0.2])
        objects = predicted_instances(classes, kind)
        assert objects.dtype == np.int32
        assert sorted(np.unique(objects[objects > 0])) == list(range(1, objects.max() + 1))
        assert as_objects(objects) == reference_components(classes, kind)
    # Diagonal neighbours join (8-connectivity); nuclei are numbered class by class.
    classes = np.array([[2, 0, 1], [0, 2, 0], [1, 0, 0]])
    assert predicted_instances(classes, "nucleus").tolist() == [[3, 0, 1], [0, 3, 0], [2, 0, 0]]
    assert predicted_instances(classes, "gland").max() == 1


# --- an independent straightforward implementation ---------------------------------------------


def brute_hausdorff(a: np.ndarray, b: np.ndarray) -> float:
    """max(sup_a inf_b |a - b|, sup_b inf_a |a - b|) over all pixel pairs."""
    pa, pb = np.argwhere(a), np.argwhere(b)
    d = np.sqrt(((pa[:, None, :] - pb[None, :, :]) ** 2).sum(axis=-1))
    return float(max(d.min(axis=1).max(), d.min(axis=0).max()))


def masks(instances: np.ndarray) -> list[np.ndarray]:
    return [instances == k for k in np.unique(instances) if k]


def reference_nucleus(gt: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    truth, found = masks(gt), masks(pred)
    inter = np.array([[np.sum(g & p) for p in found] for g in truth]).reshape(len(truth), -1)
    union = np.array([[np.sum(g | p) for p in found] for g in truth]).reshape(len(truth), -1)
    iou = inter / np.maximum(union, 1)
    matched = iou > 0.5
    assert (matched.sum(axis=0) <= 1).all() and (matched.sum(axis=1) <= 1).all()
    tp = int(matched.sum())
    aji_i = aji_u = 0
    used = set()
    for i, g in enumerate(truth):
        if not found or inter[i].max() == 0:
            aji_u += g.sum()
            continue
        j = int(np.argmax(iou[i]))  # first maximum: the smallest predicted label
        aji_i += inter[i, j]
        aji_u += union[i, j]
        used.add(j)
    aji_u += sum(p.sum() for j, p in enumerate(found) if j not in used)
    return {
        "tp": tp,
        "fp": len(found) - tp,
        "fn": len(truth) - tp,
        "iou_sum": float(iou[matched].sum()),
        "aji_intersection": aji_i,
        "aji_union": aji_u,
    }


def most_overlapping(obj: np.ndarray, other: np.ndarray) -> int:
    """MATLAB mode of the non-zero labels of `other` under `obj` (ties: smallest); 0 if none."""
    values = other[obj]
    values = values[values > 0]
    if values.size == 0:
        return 0
    ids, counts = np.unique(values, return_counts=True)
    return int(ids[np.argmax(counts)])


def reference_side(own: np.ndarray, other: np.ndarray) -> tuple[float, float, float]:
    """(area, sum area * Dice, sum area * Hausdorff) of own's objects against other's."""
    diagonal = math.hypot(*own.shape)
    area = dice = haus = 0.0
    for k in (k for k in np.unique(own) if k):
        obj = own == k
        partner = most_overlapping(obj, other)
        if partner:
            mate = other == partner
            d = 2 * np.sum(obj & mate) / (obj.sum() + mate.sum())
            h = brute_hausdorff(obj, mate)
        else:
            d = 0.0
            candidates = [brute_hausdorff(obj, other == j) for j in np.unique(other) if j]
            h = min(candidates, default=diagonal)
        area += obj.sum()
        dice += obj.sum() * d
        haus += obj.sum() * h
    return area, dice, haus


def reference_gland(gt: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    tp = 0
    for k in (k for k in np.unique(pred) if k):
        obj = pred == k
        g = most_overlapping(obj, gt)
        if g and np.sum(obj & (gt == g)) / np.sum(gt == g) > 0.5:
            tp += 1
    n_pred, n_truth = len(masks(pred)), len(masks(gt))
    gt_side, pred_side = reference_side(gt, pred), reference_side(pred, gt)
    names = ("area", "area_dice", "area_hausdorff")
    return {
        "tp": tp,
        "fp": n_pred - tp,
        "fn": n_truth - tp,
        **{f"gt_{n}": v for n, v in zip(names, gt_side, strict=True)},
        **{f"pred_{n}": v for n, v in zip(names, pred_side, strict=True)},
    }


def random_maps(seed: int, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Ground truth: a few rectangles and discs with sparse ids (later ones overwrite earlier
    ones); prediction: most of them shifted by up to 1 px, some grown, plus random blobs."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    gt = np.zeros((size, size), np.int32)
    classes = np.zeros((size, size), np.int64)
    for k in range(1, rng.integers(2, 7)):
        y, x = rng.integers(2, size - 2, 2)
        r = rng.integers(1, 6)
        blob = (
            (yy - y) ** 2 + (xx - x) ** 2 <= r * r
            if rng.random() < 0.5
            else (abs(yy - y) <= r) & (abs(xx - x) <= rng.integers(1, 5))
        )
        gt[blob] = 3 * k + 1
        if rng.random() < 0.8:
            dy, dx = rng.integers(-1, 2, 2)
            grown = rng.integers(0, 2)
            moved = (yy - y - dy) ** 2 + (xx - x - dx) ** 2 <= (r + grown) ** 2
            classes[moved] = rng.integers(1, 3)
    for _ in range(rng.integers(0, 3)):
        y, x = rng.integers(0, size, 2)
        classes[max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 1] = rng.integers(1, 3)
    return gt, classes


@pytest.mark.parametrize("kind", ["nucleus", "gland"])
def test_tallies_agree_with_a_straightforward_implementation(kind: str) -> None:
    reference = reference_nucleus if kind == "nucleus" else reference_gland
    for seed in range(20):
        gt, classes = random_maps(seed)
        # The objects of a class map, and arbitrary label maps (pieces, sparse ids) as well.
        other = random_maps(seed + 100)[0]
        for pred in (predicted_instances(classes, kind), other):
            got = fields(tally(gt, pred, kind), kind)
            assert got == pytest.approx(reference(gt, pred), rel=1e-12, abs=1e-12), seed


# --- dataset-level metrics and the bootstrap ---------------------------------------------------


def test_metrics_of_stacked_sums_are_elementwise() -> None:
    rows = np.stack([tally(*random_maps(s), "gland") for s in range(4)])
    classes_rows = []
    for s in range(4):
        gt, classes = random_maps(s)
        classes_rows.append(tally(gt, predicted_instances(classes, "nucleus"), "nucleus"))
    for kind, table in (("gland", rows), ("nucleus", np.stack(classes_rows))):
        batch = object_metrics(table, kind)
        assert list(batch) == list(METRICS[kind])
        for b in range(4):
            single = object_metrics(table[b], kind)
            for name in METRICS[kind]:
                assert batch[name].shape == (4,) and single[name].shape == ()
                assert batch[name][b] == pytest.approx(float(single[name]), nan_ok=True)


@pytest.mark.parametrize("kind", ["nucleus", "gland"])
def test_replicates_sum_the_pixel_metrics_image_draws(kind: str) -> None:
    per_image = []
    for seed in range(9):
        gt, classes = random_maps(seed)
        per_image.append(tally(gt, predicted_instances(classes, kind), kind))
    per_image.append(np.zeros(len(FIELDS[kind])))  # an empty image
    table = np.stack(per_image)
    boot = replicate_object_metrics(table, kind, replicates=40, seed=7)
    draws = bootstrap_indices(len(table), 40, 7)
    for name in METRICS[kind]:
        by_hand = [float(object_metrics(table[d].sum(axis=0), kind)[name]) for d in draws]
        assert boot[name].shape == (40,)
        assert boot[name] == pytest.approx(by_hand, rel=1e-12, nan_ok=True)


def test_field_and_metric_names() -> None:
    assert FIELDS == {"nucleus": NUCLEUS_FIELDS, "gland": GLAND_FIELDS}
    assert METRICS == {
        "nucleus": ("PQ", "DQ", "SQ", "AJI", "Nucleus_F1"),
        "gland": ("Object_F1", "Object_Dice", "Object_Hausdorff"),
    }


# --- bad input ---------------------------------------------------------------------------------


def test_bad_input_gets_a_clear_error() -> None:
    square = np.zeros((4, 4), np.int32)
    with pytest.raises(ValueError, match="unknown object kind 'cell'"):
        tally(square, square, "cell")
    with pytest.raises(ValueError, match="unknown object kind"):
        predicted_instances(square, "cell")
    with pytest.raises(ValueError, match="differ in shape"):
        tally(square, np.zeros((4, 5), np.int32), "nucleus")
    with pytest.raises(ValueError, match="2-D integer map"):
        tally(square.astype(float), square, "gland")
    with pytest.raises(ValueError, match=">= 0"):
        tally(square - 1, square, "gland")
    with pytest.raises(ValueError, match="2-D integer class map"):
        predicted_instances(np.zeros((2, 2, 2), np.int64), "gland")
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 6\)"):
        object_metrics(np.zeros(9), "nucleus")
    with pytest.raises(ValueError, match="replicates must be >= 1"):
        replicate_object_metrics(np.zeros((3, 9)), "gland", 0, 1)
    with pytest.raises(ValueError, match="empty set of images"):
        replicate_object_metrics(np.zeros((0, 6)), "nucleus", 5, 1)
    with pytest.raises(ValueError, match=r"\(N, 6\)"):
        replicate_object_metrics(np.zeros((3, 9)), "nucleus", 5, 1)


@pytest.mark.parametrize("kind", ["nucleus", "gland"])
def test_ids_need_not_be_consecutive_nor_of_one_dtype(kind: str) -> None:
    gt, classes = random_maps(3)
    pred = predicted_instances(classes, kind)
    expected = tally(gt, pred, kind)
    ids = np.unique(gt)
    sparse = np.zeros(gt.shape, np.int64)
    for rank, k in enumerate(ids[1:], start=1):
        sparse[gt == k] = 2**40 + 1000 * rank  # huge ids: relabelled through np.unique
    assert np.array_equal(tally(sparse, pred.astype(np.uint16), kind), expected)
