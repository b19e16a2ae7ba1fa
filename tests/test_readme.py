"""Every command of README.md and config/README.md, exactly as written, in a copy of the
checkout with no virtualenv activated (PATH without the venv, no VIRTUAL_ENV).

Commands that would download, or run the whole demo, run as dry-runs; `make` targets are
checked with `make -n` (`make test` is what CI itself runs). A command added to a README
without an entry in HOW fails this test until it is covered.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import FIXTURES, REPO

pytestmark = pytest.mark.workflow
DOCS = ("README.md", "config/README.md", "ARTIFACT.md")
RUNNERS = ("make ", ".venv/bin/", "snakemake ", "densebench ", "python ", "pytest ")

PROFILE_INSTALL = (
    "mkdir -p ~/.config/snakemake && cp -r workflow/profiles/slurm ~/.config/snakemake/slurm"
)
DEMO_FIGURE = (
    ".venv/bin/snakemake --configfile config/demo.yaml --cores 2"
    " results/report/reproduced/figures/figure3.pdf"
)
PUBLISHED_REPORT = ".venv/bin/snakemake --cores 2 report --config results_source=published"
HOW = {
    "make venv": "make -n",
    "make demo": "make -n",
    "make demo-ablations": "make -n",
    "make test": "make -n",
    "make lint": "make -n",
    "make format": "make -n",
    "make bench": "make -n",
    ".venv/bin/snakemake -n --quiet rules": "run",
    ".venv/bin/snakemake --directory .test --cores 2": "dry-run",
    ".venv/bin/snakemake --cores 1 results/weights/preflight.tsv --forcerun preflight": "run",
    ".venv/bin/densebench preflight --out preflight.tsv": "run",
    ".venv/bin/densebench params --model PathOrchestra --strategy lora --dataset GlaS": "run",
    ".venv/bin/snakemake --cores 1 resources/weights/<model>": "dry-run",
    DEMO_FIGURE: "dry-run",
    ".venv/bin/snakemake -n ablation_lora_rank": "run",
    PUBLISHED_REPORT: "run with published drops",
    ".venv/bin/snakemake report --report results/report.html --config results_source=published": (
        "run after the published report"
    ),
    "python3 -m venv .venv && .venv/bin/pip install -e '.[slurm]'": "pip dry-run",
    PROFILE_INSTALL: "run in home",
    ".venv/bin/snakemake --profile workflow/profiles/slurm -n all": "run",
    ".venv/bin/snakemake --profile slurm all": "dry-run in home",
    ".venv/bin/snakemake --profile slurm report --config results_source=merged": "dry-run in home",
}
"""Each documented command -> how it is exercised here: `make -n`; `run` as written (`with
published drops`: the committed published files dropped into resources/published/ first, as an
offline user would; `after the published report`: that report rendered first);
`dry-run` with -n added; `pip dry-run`: the pip install of the line with --dry-run (the venv
exists); `run in home` / `dry-run in home`: with HOME a fresh folder of the clone, where the
profile install puts the user's `slurm` profile first."""


def documented_commands(text: str) -> set[str]:
    """Command lines of the ```bash blocks and the inline code spans that start a command."""
    found = set()
    for block in re.findall(r"```bash\n(.*?)```", text, re.DOTALL):
        for line in block.splitlines():
            command = line.split(" #")[0].strip()
            if command:
                found.add(command)
    for span in re.findall(r"`([^`\n]+)`", text):
        if span.startswith(RUNNERS):
            found.add(span.strip())
    return found


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """The checkout's files (tracked and not ignored) copied with their times, and the venv
    that `make venv` made (linked, as a fresh clone would have it after `make demo`)."""
    root = tmp_path_factory.mktemp("clone")
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    for name in listed:
        source = REPO / name
        if source.is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
    (root / ".venv").symlink_to(REPO / ".venv")
    return root


def user_environment() -> dict[str, str]:
    """The environment of a shell without the venv activated, and offline (hermetic)."""
    venv_bin = str(Path(sys.executable).parent)
    path = [p for p in os.environ["PATH"].split(os.pathsep) if p and p != venv_bin]
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "HF_TOKEN")}
    return dict(env, PATH=os.pathsep.join(path), HF_HUB_OFFLINE="1")


def exercised(command: str, how: str) -> list[str]:
    """The argument list that exercises a documented command."""
    if "&&" in command and how != "pip dry-run":
        return ["bash", "-c", command]
    args = shlex.split(command.replace("<model>", "uni_v1"))
    if how == "make -n":
        return ["make", "-n", *args[1:]]
    if how.startswith("dry-run"):
        return [*args, "-n"]
    if how == "pip dry-run":
        pip = shlex.split(command.split("&&")[1])
        return [*pip[:2], "--dry-run", *pip[2:]]
    return args


def test_every_documented_command_is_exercised():
    documented = set()
    for doc in DOCS:
        documented |= documented_commands((REPO / doc).read_text())
    assert documented == set(HOW)


@pytest.mark.parametrize("command", sorted(HOW))
def test_documented_command_works_as_written(clone, command):
    env = user_environment()
    assert shutil.which("densebench", path=env["PATH"]) is None
    if HOW[command].endswith("in home"):
        env = {k: v for k, v in env.items() if k != "XDG_CONFIG_HOME"}
        env["HOME"] = str(clone / f"home-{len(command)}")
        if command != PROFILE_INSTALL:
            subprocess.run(["bash", "-c", PROFILE_INSTALL], cwd=clone, env=env, check=True)
    if "published" in HOW[command]:
        drop = clone / "resources/published"
        drop.mkdir(parents=True, exist_ok=True)
        for path in (FIXTURES / "published").glob("*.json"):
            shutil.copy(path, drop / path.name)
    if HOW[command] == "run after the published report":
        subprocess.run(shlex.split(PUBLISHED_REPORT), cwd=clone, env=env, check=True, timeout=300)
    result = subprocess.run(
        exercised(command, HOW[command]),
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{command}:\n{output[-3000:]}"
    if "--report" in command:
        assert (clone / "results/report.html").stat().st_size > 100_000
    if "preflight" in command:  # a real job that calls `densebench`: found without the venv
        table = pd.read_csv(clone / command.split()[-1 if "densebench" in command else 3], sep="\t")
        assert len(table) == 17 and set(table["status"]) == {"offline"}
        assert "Job stats" not in output or "manual_raw" not in output
