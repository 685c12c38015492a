"""splitnet: turn one DNN into N narrow branches plus a merge head, and run them on N boards.

The stages live in subpackages (see ../shared/DESIGN.md):
``splitnet.zoo`` (reference models), ``splitnet.partitioners`` (SplitPlan and SplitModel),
``splitnet.framework`` (compile, verify, report, CLI) and ``splitnet.runtime``
(boards, placement, distributed execution).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
