"""The shared training jobs of a plan (config `train.share_frozen_backbone`, densebench.sharing).

With the setting on, the runs of the frozen-encoder strategies of one (dataset, model, variant)
that need training are trained by one job on one encoder forward pass per batch (rule
`train_shared`). That job writes each member's finished outputs into its staging folder
`results/shared/<dataset>/<model>/<member folders joined by +>` (a temporary output), and each
member's own `train` job takes them from there into the run's folder: so every run's outputs
keep one rule, `train`, whatever trained them.

Which runs join is decided from the files when the workflow starts, so only runs that need
training join: a run is trained when its best.pt, train_log.csv and provenance.json exist and
the provenance's training identity is the run's (a run written before the identity was recorded
counts as trained: Snakemake's own triggers decide). A trained run keeps naming the staging
folder of the job that trained it (its provenance's `shared_job`), a missing temporary input
that Snakemake does not remake while the run's outputs are current, so the input set of its
`train` job never changes and finishing a cell's other runs retrains nothing.
A run that needs training and whose cell already has a staging folder naming it (the shared job
ran, its members are being taken out) keeps that folder, so a job process parsing the workflow
again later sees the same plan.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from densebench.identity import identity_digest
from densebench.sharing import (
    TRAINED_FILES,
    member_folders,
    random_forward,
    shares_encoder,
    staging_name,
)

if TYPE_CHECKING:
    from densebench.plan.runs import Plan, Run

SHARED_DIR = "results/shared/{dataset}/{model}"
"""Where a (dataset, model)'s shared jobs stage their members' finished outputs."""


def _folder(run: Run) -> str:
    """A run's folder (densebench.plan.runs.run_folder; imported late: runs imports this)."""
    from densebench.plan.runs import run_folder

    return run_folder(*run)


class SharingPlan:
    """Which runs of a plan share a training job, decided once from the config and the files."""

    def __init__(self, plan: Plan, root: Path = Path(".")) -> None:
        self.plan = plan
        self.root = Path(root)
        self.enabled = bool(plan.config["train"].get("share_frozen_backbone", False))
        self._states: dict[Run, tuple[bool, str | None]] = {}
        self._staging: dict[Run, str | None] = {}

    # ---- what can share (config and registries only) ------------------------------------
    def refusal(self, model: str) -> str | None:
        """Why a model's frozen-encoder runs train separately (None: they may share)."""
        return random_forward(model, self.plan.registries.models[model], self._fixes)

    @cached_property
    def _fixes(self) -> dict[str, bool]:
        """The config's fixes (the encoder's train mode depends on `frozen_encoder_eval`)."""
        from densebench.fixes import resolve_fixes

        return resolve_fixes(dict(self.plan.config))

    def refusals(self) -> dict[str, str]:
        """The models of the plan's runs with two or more frozen-encoder strategies that may
        not share, with the reason."""
        models = {g[0][1] for g in self._groups(check_model=False)}
        out = {m: why for m in sorted(models) if (why := self.refusal(m))}
        return out

    def can_share(self, run: Run) -> bool:
        """Whether a run is of a frozen-encoder strategy and a model that may share."""
        strategy = self.plan.registries.strategies[run[2]]
        return shares_encoder(strategy) and self.refusal(run[1]) is None

    def _groups(self, check_model: bool = True) -> list[tuple[Run, ...]]:
        """Every (dataset, model, variant)'s frozen-encoder runs, two or more, in plan order."""
        by_key: dict[tuple[str, str, str], list[Run]] = {}
        for run in self.plan.trained_runs():
            strategy = self.plan.registries.strategies[run[2]]
            if shares_encoder(strategy) and (not check_model or self.refusal(run[1]) is None):
                by_key.setdefault((run[0], run[1], run[3]), []).append(run)
        return [tuple(runs) for runs in by_key.values() if len(runs) > 1]

    @cached_property
    def groups(self) -> list[tuple[Run, ...]]:
        """The runs a fresh plan trains together (none with the setting off): per
        (dataset, model, variant) the runs of its frozen-encoder strategies, where the model
        may share and there are two or more."""
        return self._groups() if self.enabled else []

    @cached_property
    def _group_of(self) -> dict[Run, tuple[Run, ...]]:
        """The static group of each run in one."""
        return {run: group for group in self.groups for run in group}

    # ---- what the files say -------------------------------------------------------------
    def state(self, run: Run) -> tuple[bool, str | None]:
        """(trained, the staging folder name recorded by the job that trained it)."""
        if run not in self._states:
            self._states[run] = self._read_state(run)
        return self._states[run]

    def _read_state(self, run: Run) -> tuple[bool, str | None]:
        """`state`, from the run's folder."""
        folder = self.root / _folder(run)
        if not all((folder / name).exists() for name in TRAINED_FILES):
            return False, None
        try:
            provenance = json.loads((folder / "provenance.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False, None
        recorded = provenance.get("training_identity")
        current = recorded is None or recorded == identity_digest(self.plan.spec(run))
        return current, provenance.get("shared_job") if current else None

    def _existing_staging(self, run: Run) -> str | None:
        """A staging folder on disk of the run's (dataset, model) that names the run."""
        folder = Path(_folder(run)).name
        shared = self.root / SHARED_DIR.format(dataset=run[0], model=run[1])
        if not shared.is_dir():
            return None
        names = sorted(p.name for p in shared.iterdir() if p.is_dir())
        return next((n for n in names if folder in member_folders(n)), None)

    def staging(self, run: Run) -> str | None:
        """The staging folder (path) of the shared job that trains or trained the run; None
        where it trains, or trained, alone."""
        if run not in self._staging:
            name = self._staging_name(run)
            where = SHARED_DIR.format(dataset=run[0], model=run[1])
            self._staging[run] = f"{where}/{name}" if name else None
        return self._staging[run]

    def _staging_name(self, run: Run) -> str | None:
        """`staging`'s folder name."""
        trained, recorded = self.state(run)
        if trained:
            return recorded
        if run not in self._group_of:
            return None
        existing = self._existing_staging(run)
        if existing is not None:
            return existing
        untrained = [r for r in self._group_of[run] if not self.state(r)[0]]
        if len(untrained) < 2:
            return None
        return staging_name(Path(_folder(r)).name for r in untrained)

    def members(self, dataset: str, model: str, name: str) -> list[Run]:
        """The runs of a staging folder name."""
        from densebench.variants import of_run_folder

        runs = []
        for folder in member_folders(name):
            strategy = folder.partition("__")[0]
            runs.append((dataset, model, strategy, of_run_folder(folder).name))
        return runs

    def jobs(self) -> dict[str, list[Run]]:
        """The shared jobs the plan would start now: staging path -> member runs."""
        out: dict[str, list[Run]] = {}
        for group in self.groups:
            for run in group:
                path = self.staging(run)
                if path is not None and not self.state(run)[0]:
                    out.setdefault(path, []).append(run)
        return out
