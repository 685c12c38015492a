"""splitnet: turn one DNN into N narrow branches plus a merge head, and run them on N boards.

The public API (``splitnet.load_model``, ``split``, ``deploy``, ``run``, ...) is
:mod:`splitnet.api`, re-exported here and imported on first use, so ``import splitnet``
and ``splitrun --help`` stay quick. The layers below it (``../shared/DESIGN.md``,
``docs/architecture.md``): ``splitnet.framework`` (the core), ``zoo``, ``partitioners``,
``tuning`` and ``runtime`` (the stages), ``strategies`` and ``training`` (orchestration),
``api`` and ``commands`` (the faces).
"""

from __future__ import annotations

__version__ = "0.1.0"

_API = (
    "DeployReport",
    "Deployed",
    "RunOptions",
    "RunReport",
    "SplitnetError",
    "deploy",
    "list_models",
    "load_model",
    "run",
    "split",
)

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        from splitnet import api

        return getattr(api, name)
    raise AttributeError(f"module 'splitnet' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
