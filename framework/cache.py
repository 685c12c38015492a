"""The on-disk artifact cache: ``$SPLITNET_CACHE`` or ``~/.cache/splitnet``.

Entries are keyed by a content hash of everything that changes the compiled code, and are
written to a temporary name then renamed, so an interrupted compile never leaves a half
entry that a later run would trust.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

CACHE_ENV = "SPLITNET_CACHE"


def cache_root() -> Path:
    env = os.environ.get(CACHE_ENV)
    root = Path(env) if env else Path.home() / ".cache" / "splitnet"
    root.mkdir(parents=True, exist_ok=True)
    return root


def content_key(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()
