"""Packaging: the job environment pins exactly what pyproject.toml pins."""

from __future__ import annotations

import tomllib

import yaml

from tests.conftest import REPO


def test_conda_env_pins_equal_the_project_pins():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    env = yaml.safe_load((REPO / "envs/densebench.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert sorted(p for p in pip if "==" in p) == sorted(project)
    assert all("==" in p for p in project)
