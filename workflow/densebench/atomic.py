"""Atomic outputs: write to a temporary name beside the target, rename when complete."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path


def temp_sibling(path: Path) -> Path:
    """A temporary name in the same folder (same filesystem, so rename is atomic)."""
    path = Path(path)
    return path.parent / f".{path.name}.tmp-{os.getpid()}{path.suffix}"


def remove(path: Path) -> None:
    """Remove a file or a folder if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temporary path; on success move it onto `path`, on error remove it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(path)
    remove(tmp)
    try:
        yield tmp
        if path.is_dir():
            remove(path)
        os.replace(tmp, path)
    except BaseException:
        remove(tmp)
        raise
