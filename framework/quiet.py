"""Silence native libraries that write to file descriptor 2.

TVM's export and load print a line per embedded constant from C++ (../shared/STACK.md), and
mxnet's exporter logs each op; none of it is for the user's terminal. Python-level warnings
are filtered too. What was written is kept and returned so a failure can still show it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_native() -> Iterator[list[str]]:
    captured: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    logger = logging.getLogger()
    level = logger.level
    with tempfile.TemporaryFile(mode="w+b") as sink, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logger.setLevel(logging.ERROR)
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            logger.setLevel(level)
            sink.seek(0)
            captured.extend(sink.read().decode(errors="replace").splitlines())
