"""Silence native libraries that write to file descriptor 2.

TVM's export and load print a line per embedded constant from C++ (../shared/STACK.md), and
mxnet's exporter logs each op; none of it is for the user's terminal. Python-level warnings
are filtered too. Python exceptions still carry their own messages.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_native() -> Iterator[None]:
    sys.stderr.flush()
    saved = os.dup(2)
    logger = logging.getLogger()
    level = logger.level
    with open(os.devnull, "wb") as sink, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logger.setLevel(logging.ERROR)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            logger.setLevel(level)
