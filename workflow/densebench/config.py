"""Load and validate a workflow config outside Snakemake (CLI, tests, benchmarks).

The Snakefile validates with snakemake.utils.validate against the same schema; this module
applies the schema's defaults the same way so both see identical configs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
"""The workflow's root folder (holding Snakefile, config/ and workflow/)."""
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


def _fill_defaults(schema: dict[str, Any], instance: dict[str, Any]) -> None:
    """Recursively set missing properties to their schema defaults."""
    for key, sub in schema.get("properties", {}).items():
        if key not in instance and "default" in sub:
            instance[key] = yaml.safe_load(yaml.safe_dump(sub["default"]))
        if isinstance(instance.get(key), dict) and sub.get("type") == "object":
            _fill_defaults(sub, instance[key])


def validate_config(config: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults and validate against the config schema (raises naming the bad key)."""
    import jsonschema

    schema = yaml.safe_load(SCHEMA.read_text())
    _fill_defaults(schema, config)
    jsonschema.validate(config, schema)
    return config


def load_config(path: Path) -> dict[str, Any]:
    """Read a config YAML file and validate it."""
    return validate_config(yaml.safe_load(Path(path).read_text()) or {})


def registry_path(config: dict[str, Any], axis: str, root: Path = ROOT) -> Path:
    """Resolve a registry file of the config against the workflow root."""
    path = Path(config["registries"][axis])
    return path if path.is_absolute() else root / path


def expose_commands(environ: dict[str, str], interpreter: str) -> bool:
    """Put the folder of the running interpreter's console scripts first on PATH, if it holds
    `densebench`, so jobs find the command of the environment Snakemake runs from (e.g.
    `.venv/bin/snakemake` without an activated venv). True if PATH was changed."""
    scripts = Path(interpreter).parent  # not resolved: a venv's python is a symlink
    if not (scripts / "densebench").exists():
        return False
    entries = environ.get("PATH", "").split(os.pathsep)
    if entries and entries[0] == str(scripts):
        return False
    environ["PATH"] = os.pathsep.join([str(scripts), *[e for e in entries if e]])
    return True


SOURCE_VARIABLE = "DENSEBENCH_SOURCE"
"""Environment variable naming the workflow's checkout, for envs/*.post-deploy.sh."""


def export_source(environ: dict[str, str], root: str) -> None:
    """Tell the conda environments' post-deploy scripts where the package's checkout is."""
    environ[SOURCE_VARIABLE] = str(root)
