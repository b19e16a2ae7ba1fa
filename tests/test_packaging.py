"""Packaging: the conda environments per rule group (envs/) pin exactly what pyproject.toml
pins, hold what their rules' commands import, and install the package from any directory."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from densebench.cli import build_parser
from tests.conftest import REPO

PACKAGE = REPO / "workflow/densebench"
GROUPS = ("data", "train", "report")


def project_pins() -> dict[str, str]:
    """pyproject.toml's dependencies, name -> requirement."""
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    return {canonical_name(d.split("==")[0]): d for d in deps}


def canonical_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def env_pins(group: str) -> dict[str, str]:
    """The pip pins of envs/<group>.yaml, name -> requirement."""
    env = yaml.safe_load((REPO / f"envs/{group}.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    return {canonical_name(p.split("==")[0]): p for p in pip}


def rule_blocks() -> dict[str, str]:
    """Every rule's text, by rule name, from workflow/rules/*.smk."""
    blocks = {}
    for path in (REPO / "workflow/rules").glob("*.smk"):
        parts = re.split(r"^rule (\w+):$", path.read_text(), flags=re.MULTILINE)
        blocks |= dict(zip(parts[1::2], parts[2::2], strict=True))
    return blocks


def module_path(name: str) -> Path:
    """Source file of a densebench module or package."""
    path = PACKAGE.joinpath(*name.split(".")[1:])
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def imported_names(nodes: list[ast.stmt], module: str) -> set[str]:
    """Absolute names the statements import anywhere, functions included (the package imports
    its heavy libraries lazily), except under `if TYPE_CHECKING:`."""
    names: set[str] = set()
    is_package = module_path(module).name == "__init__.py"
    for node in nodes:
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            continue
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = module.split(".")
            base = base[: len(base) - node.level + is_package] if node.level else []
            source = ".".join([*base, node.module] if node.module else base)
            names.add(source)
            names |= {
                f"{source}.{a.name}"
                for a in node.names
                if module_path(f"{source}.{a.name}").exists()
            }
        else:
            names |= imported_names(list(ast.iter_child_nodes(node)), module)
    return names


def dynamic_packages(source: str) -> set[str]:
    """Packages whose modules a module imports by name (`import_module(f"densebench.x.{name}")`:
    the converter and backbone-family registries)."""
    return set(re.findall(r'import_module\(f"(densebench[\w.]*)\.\{', source))


def package_modules(package: str) -> list[str]:
    """Every module of a densebench package."""
    folder = module_path(package).parent
    return [
        ".".join(["densebench", *p.relative_to(PACKAGE).with_suffix("").parts])
        for p in folder.glob("*.py")
        if p.name != "__init__.py"
    ]


def third_party_imports(names: set[str]) -> set[str]:
    """Top-level third-party modules the densebench modules import anywhere, following
    densebench's own imports, and every module of a registry imported by name."""
    seen, todo, external = set(), list(names), set()
    while todo:
        name = todo.pop()
        if name.split(".")[0] != "densebench":
            top = name.split(".")[0]
            if top not in sys.stdlib_module_names and top != "__future__":
                external.add(top)
            continue
        parts = name.split(".")
        modules = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
        for module in modules:
            if module in seen or not module_path(module).exists():
                continue
            seen.add(module)
            source = module_path(module).read_text()
            todo += imported_names(ast.parse(source).body, module)
            todo += [m for p in dynamic_packages(source) for m in package_modules(p)]
    return external


def command_imports(command: str) -> set[str]:
    """Third-party modules a `densebench <command>` run imports: the module-level imports of its
    handler's module (densebench.cli.<stage>), the handler's (and the helpers' of that module it
    calls), and what those modules import."""
    handler = build_parser()._subparsers._group_actions[0].choices[command].get_default("func")
    module = handler.__module__
    tree = ast.parse(module_path(module).read_text())
    functions = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
    body = functions[handler.__name__]
    top = imported_names([n for n in tree.body if not isinstance(n, ast.FunctionDef)], module)
    names = {n for n in top if not n.startswith("densebench.cli")}  # not the other commands
    called = {
        n.func.id for n in ast.walk(body) if isinstance(n, ast.Call) and hasattr(n.func, "id")
    }
    for name in {handler.__name__} | (called & functions.keys()):
        names |= imported_names([functions[name]], module)
    return third_party_imports(names)


def distributions(modules: set[str]) -> set[str]:
    """Installed distributions providing top-level modules."""
    providers = metadata.packages_distributions()
    return {canonical_name(d) for m in modules for d in providers.get(m, [m])}


def requirement_closure(names: set[str]) -> set[str]:
    """Distributions and everything they require (installed ones), recursively."""
    closure, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in closure:
            continue
        closure.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        todo += [
            canonical_name(re.split(r"[ ;<>=!\[~(]", r)[0]) for r in requires if "extra ==" not in r
        ]
    return closure


def rule_env_and_command(block: str) -> tuple[str, str]:
    env = re.search(r'"\.\./\.\./envs/(\w+)\.yaml"', block)
    command = re.search(r'"densebench ([\w-]+)', block)
    assert env and command
    return env[1], command[1]


def test_every_env_pin_is_the_project_pin_and_every_rule_has_a_group_env():
    project = project_pins()
    for group in GROUPS:
        assert env_pins(group).items() <= project.items(), group
    used = {rule_env_and_command(block)[0] for block in rule_blocks().values() if "shell:" in block}
    assert used == set(GROUPS)
    assert all("==" in p for p in project.values())


@pytest.mark.parametrize("rule", sorted(r for r, b in rule_blocks().items() if "densebench " in b))
def test_a_rules_env_holds_what_its_command_imports(rule):
    group, command = rule_env_and_command(rule_blocks()[rule])
    needed = distributions(command_imports(command))
    available = requirement_closure(set(env_pins(group)))
    assert needed <= available, f"{rule} ({group}.yaml) lacks {sorted(needed - available)}"


def test_report_and_data_envs_leave_torch_out():
    assert "torch" not in env_pins("report") and "torch" not in env_pins("data")
    assert "torch" not in distributions(command_imports("score") | command_imports("figure"))


def test_post_deploy_installs_the_package_from_any_directory(tmp_path):
    # What Snakemake does after creating a conda env: run the script inside it (its python
    # first on PATH), from the working directory, with the workflow's DENSEBENCH_SOURCE.
    env_dir, elsewhere = tmp_path / "env", tmp_path / "elsewhere"
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True)
    elsewhere.mkdir()
    path = f"{env_dir / 'bin'}:{os.environ['PATH']}"
    env = dict(os.environ, DENSEBENCH_SOURCE=str(REPO), PATH=path)
    script = REPO / "envs/train.post-deploy.sh"
    for group in GROUPS:
        assert (REPO / f"envs/{group}.post-deploy.sh").read_text() == script.read_text()
    install = subprocess.run(["bash", str(script)], cwd=elsewhere, env=env, capture_output=True)
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]
    found = subprocess.run(
        [env_dir / "bin/python", "-c", "import densebench; print(densebench.__file__)"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(found) == PACKAGE / "__init__.py"
    assert (env_dir / "bin/densebench").exists()
    missing = {k: v for k, v in env.items() if k != "DENSEBENCH_SOURCE"}
    failed = subprocess.run(["bash", str(script)], env=missing, capture_output=True, text=True)
    assert failed.returncode != 0 and "run through the workflow" in failed.stderr
