"""`snakemake --report` of the published source: every figure and table in one HTML file, with
the captions of workflow/report/*.rst, looked at in headless Chromium.

The browser part needs Debian's chromium (ci/install_chromium.sh); without it it skips, unless
DENSEBENCH_REQUIRE_BROWSER=1 (set by .ci/run), where it fails instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from tests.report.conftest import REPORT
from tests.report.test_report_workflow import FIGURES, STRATEGIES
from tests.test_workflow import snakemake

pytestmark = pytest.mark.workflow
SOURCE = "results/report/published"


@pytest.fixture(scope="module")
def report_html(published_report) -> Path:
    """`snakemake --report` of the published report."""
    snakemake(published_report, REPORT[0], "--report", "results/report.html", *REPORT[1:])
    return published_report / "results/report.html"


def embedded_results(html: str) -> dict:
    """The report's `var results = {...}`: path -> name, caption, labels, data_uri."""
    start = html.index("var results = {") + len("var results = ")
    return json.JSONDecoder().raw_decode(html, start)[0]


def browser() -> str:
    """The chromium executable, or skip (fail under DENSEBENCH_REQUIRE_BROWSER=1)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("DENSEBENCH_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium is missing: run ci/install_chromium.sh")
        pytest.skip("chromium is not installed (ci/install_chromium.sh)")
    return found


def headless(page: Path, *args: str) -> str:
    """Run headless Chromium on a local page; return its stdout."""
    command = [browser(), "--headless", "--no-sandbox", "--disable-gpu"]
    command += ["--disable-dev-shm-usage", "--virtual-time-budget=20000", *args]
    result = subprocess.run(
        [*command, page.as_uri()], capture_output=True, text=True, timeout=180, check=True
    )
    return result.stdout


def test_report_holds_every_figure_and_table_with_config_captions(report_html):
    results = embedded_results(report_html.read_text())
    names = [*FIGURES, *(f"heatmap_{s}" for s in STRATEGIES)]
    for name in names:
        entry = results[f"{SOURCE}/figures/{name}.png"]
        assert entry["data_uri"].startswith("data:image/png")
    tables = [k for k in results if k.startswith(f"{SOURCE}/tables/per_strategy/")]
    assert len(tables) == 18 * 5
    for name in (
        "dataset_sota",
        "average_rank",
        "strategy_comparison",
        "friedman",
        "rank_uncertainty",
    ):
        assert f"{SOURCE}/tables/{name}.md" in results
    captions = [entry["caption"] for entry in results.values()]
    assert all("system-message" not in c for c in captions)  # every caption renders cleanly
    figure3 = results[f"{SOURCE}/figures/figure3.png"]["caption"]
    assert "1000 replicates" in figure3 and "results_source=published" in figure3
    heatmap = results[f"{SOURCE}/figures/heatmap_dora.png"]["caption"]
    assert "<strong>dora</strong>" in heatmap


def _png_width(data: bytes) -> int:
    """Width of a PNG from its IHDR chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">I", data[16:20])[0]


def test_chromium_renders_every_figure_of_the_report(report_html, tmp_path):
    import base64

    results = embedded_results(report_html.read_text())
    figures = {k: v["data_uri"] for k, v in results.items() if k.endswith(".png")}
    widths = {
        k: _png_width(base64.b64decode(uri.split("base64,", 1)[1])) for k, uri in figures.items()
    }
    images = "".join(f'<img id="f{i}" src="{uri}">' for i, uri in enumerate(figures.values()))
    script = (
        "window.onload = () => { document.getElementById('out').textContent = JSON.stringify("
        "[...document.images].map(i => [i.id, i.complete, i.naturalWidth])); };"
    )
    page = tmp_path / "figures.html"
    page.write_text(f"<!doctype html><body>{images}<pre id='out'></pre><script>{script}</script>")
    dom = headless(page, "--dump-dom")
    found = json.loads(re.search(r"<pre id=\"out\">(.*?)</pre>", dom).group(1))
    assert [w for _, _, w in found] == list(widths.values())  # every figure decodes and renders
    assert all(done for _, done, _ in found) and len(found) == len(FIGURES) + len(STRATEGIES)


def test_chromium_shows_the_report_page(report_html, tmp_path):
    from PIL import Image

    shot = tmp_path / "report.png"
    headless(report_html, "--window-size=1400,900", f"--screenshot={shot}")
    image = Image.open(shot).convert("RGB")
    assert image.size == (1400, 900)
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 200  # the app drew its page, not a blank one
    dom = headless(report_html, "--dump-dom")
    assert "PFM-DenseBench: dense prediction with pathology foundation models" in dom
