"""Every input size of the paper grid through the CNN adapter's head (ResNetV2 + skip decoder).

The sizes are derived from the registries by the paper's rule
(densebench.geometry.input_size), not listed by hand; the 1/8 skip is checked against the
authors' rule applied stage by stage ([F] models/cnn_adapter.py, ResNetV2Adapter.forward).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from densebench.config import ROOT, load_config
from densebench.geometry import input_size
from densebench.models.adapters import CNNAdapter, pad_skip
from densebench.models.decoder import SkipDecoder
from densebench.models.segmenter import build_on_meta
from densebench.registry import Registries
from densebench.spec import build_run_spec


def paper_registries() -> Registries:
    """The shipped registries."""
    return Registries.load(
        ROOT / "config/models.yaml", ROOT / "config/datasets.yaml", ROOT / "config/strategies.yaml"
    )


def grid_sizes() -> list[tuple[int, int]]:
    """Distinct (input side S, patch size) pairs of the 18 datasets x 17 models of the paper."""
    config, registries = load_config(ROOT / "config/config.yaml"), paper_registries()
    pairs = set()
    for dataset in config["datasets"]:
        for model in config["models"]:
            record = registries.models[model]
            card = registries.datasets[dataset]
            size = input_size(card, record, config["train"]["max_input_size"])
            pairs.add((size, int(record["patch_size"])))
    return sorted(pairs)


GRID = grid_sizes()


def test_the_grid_has_the_papers_sizes():
    sizes = {size for size, _ in GRID}
    assert len(GRID) >= 30 and {196, 252, 420, 384, 992, 994} <= sizes  # protocol.md §3 table


@pytest.mark.parametrize(("size", "patch"), GRID, ids=[f"S{s}-p{p}" for s, p in GRID])
def test_cnn_adapter_head_gives_logits_of_the_input_size(size, patch):
    classes, dim = 3, 8  # a tiny embed dim: shapes only, on the meta device
    units = paper_registries().strategies["cnn_adapter"]["block_units"]
    with torch.device("meta"):
        cnn = CNNAdapter(units, compute_discarded_stage=True)
        decoder = SkipDecoder(dim, classes, CNNAdapter.SKIP_CHANNELS)
        image = torch.empty(2, 3, size, size)
        grid = torch.empty(2, dim, size // patch, size // patch)
        skips = cnn(image)
        logits = decoder(grid, skips)
    assert [s.shape[-1] for s in skips] == [size // 8, size // 4, (size + 1) // 2]
    assert logits.shape == (2, classes, size, size)


@pytest.mark.parametrize(("dataset", "model"), [("CoNIC2022", "uni_v2"), ("WSSS4LUAD", "hibou_l")])
def test_patch14_cnn_adapter_cells_run(dataset, model):
    config, registries = load_config(ROOT / "config/config.yaml"), paper_registries()
    spec = build_run_spec(config, dataset, model, "cnn_adapter", registries)
    size = spec.input_size
    net = build_on_meta(spec)
    logits = net(torch.empty(1, 3, size, size, device="meta"))
    assert logits.shape == (1, spec.num_classes, size, size)


def authors_skips(cnn: CNNAdapter, image: torch.Tensor) -> list[torch.Tensor]:
    """The authors' rule by hand: pad each output for the skip, feed the next stage unpadded."""
    size = image.shape[-1]
    half = cnn.root(image)
    quarter = cnn.stage1(F.max_pool2d(half, 3, stride=2))
    eighth = cnn.stage2(quarter)

    def padded(x: torch.Tensor, side: int) -> torch.Tensor:
        out = torch.zeros(*x.shape[:2], side, side)
        out[:, :, : x.shape[-2], : x.shape[-1]] = x
        return out

    return [padded(eighth, size // 8), padded(quarter, size // 4), half]


@pytest.mark.parametrize("size", [192, 252])
def test_eighth_skip_follows_the_authors_padding_rule(size):
    torch.manual_seed(0)
    cnn = CNNAdapter((1, 1, 1), compute_discarded_stage=False).eval()
    image = torch.randn(1, 3, size, size)
    with torch.no_grad():
        ours, expected = cnn(image), authors_skips(cnn, image)
        stage1 = cnn.stage1(cnn.pool(cnn.root(image)))
    assert stage1.shape[-1] == size // 4 - 1  # a padding size: the 1/4 map is one pixel short
    for got, want in zip(ours, expected, strict=True):
        assert got.shape == want.shape
        assert torch.allclose(got, want, atol=1e-5)


def test_skip_padding_allows_only_one_or_two_missing_pixels():
    x = torch.ones(1, 2, 5, 5)
    assert pad_skip(x, 5) is x
    padded = pad_skip(x, 7)
    assert padded.shape[-2:] == (7, 7) and padded[..., 5:, :].abs().sum() == 0
    for side in (4, 8):  # larger than expected, or three pixels short: the authors' assertion
        with pytest.raises(ValueError, match="should be"):
            pad_skip(x, side)


ABLATION_SIZES = load_config(ROOT / "config/config.yaml")["ablations"]["input_size"]["sizes"]


@pytest.mark.parametrize("size", ABLATION_SIZES)
@pytest.mark.parametrize("model", ["uni_v1", "hoptimus_0", "lunit_vits8"])
def test_input_size_ablation_sizes_run_through_the_model(model, size):
    """The input-size ablation's runs (patch 16, 14 and 8 at every default S, up to 4096 px):
    frozen encoder and decoder on the meta device give logits of the patch rule's side."""
    config, registries = load_config(ROOT / "config/config.yaml"), paper_registries()
    spec = build_run_spec(config, "RINGS", model, "frozen", registries, f"resize{size}")
    side = spec.input_size
    assert side <= size and side % int(spec.model_record["patch_size"]) == 0
    net = build_on_meta(spec)
    logits = net(torch.empty(1, 3, side, side, device="meta"))
    assert logits.shape == (1, spec.num_classes, side, side)
