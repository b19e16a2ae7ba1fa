"""Atomic outputs: write to a temporary name beside the target, rename when complete.

Nothing half-written ever takes a final name: a killed job leaves only a hidden temporary,
which the next attempt removes. The one home of the package's text and table writers
(`write_text`, `write_table`: every CSV the workflow produces).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


def temp_sibling(path: Path, tag: str = "tmp") -> Path:
    """A hidden temporary name in the same folder (same filesystem, so rename is atomic)."""
    path = Path(path)
    return path.parent / f".{path.name}.{tag}-{os.getpid()}{path.suffix}"


def remove(path: Path) -> None:
    """Remove a file or a folder if it exists."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _alive(pid: int) -> bool:
    """Whether a process with this pid exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(path: Path) -> None:
    """Remove temporaries of `path` left by killed processes (their pid no longer runs)."""
    path = Path(path)
    _remove_dead(path.parent, re.compile(rf"\.{re.escape(path.name)}\.\w+-(\d+)"))


def remove_stale_in(folder: Path) -> None:
    """Remove every temporary in a folder left by a killed process."""
    _remove_dead(Path(folder), re.compile(r"\..+\.\w+-(\d+)"))


def _remove_dead(folder: Path, pattern: re.Pattern) -> None:
    """Remove the entries of folder matching pattern whose pid (group 1) no longer runs."""
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        match = pattern.match(entry.name)
        if match and int(match[1]) != os.getpid() and not _alive(int(match[1])):
            remove(entry)


def replace_path(src: Path, dst: Path) -> None:
    """Move src onto dst; an existing dst (file or folder) is renamed aside, then removed."""
    src, dst = Path(src), Path(dst)
    if dst.exists() or dst.is_symlink():
        old = temp_sibling(dst, "old")
        remove(old)
        os.replace(dst, old)
        os.replace(src, dst)
        remove(old)
    else:
        os.replace(src, dst)


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temporary path; on success move it onto `path`, on error remove it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path)
    tmp = temp_sibling(path)
    remove(tmp)
    try:
        yield tmp
        replace_path(tmp, path)
    except BaseException:
        remove(tmp)
        raise


def write_text(text: str, path: Path) -> None:
    """Write UTF-8 text atomically, creating parent folders."""
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_table(table: pd.DataFrame, path: Path) -> None:
    """Write a DataFrame as CSV (no index, Unix newlines, full float precision) atomically."""
    with atomic_output(path) as tmp:
        table.to_csv(tmp, index=False, lineterminator="\n")
