"""Canonical JSON: the one text form of a JSON value, so equal values give equal strings.

Run specs travel in it (`densebench.spec.RunSpec.to_json`) and every identity a rule passes as
a param is written in it (densebench.identity), so Snakemake compares values, not formatting.
"""

from __future__ import annotations

import json
from typing import Any


def canonical(value: Any) -> str:
    """Canonical JSON (sorted keys, compact): equal values give equal strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
