"""splitnet's Python API: the stages ``splitrun`` runs, for notebooks and scripts.

    import splitnet

    model = splitnet.load_model("resnet18_v1_thumb16")          # the reference and its weights
    split = splitnet.split(model, branches=2)                    # branches + head, fine-tuned weights when shipped
    with splitnet.deploy(split, inventory="two-pynq") as boards:  # boards started, parts built and uploaded
        logits = boards(image)                                   # a PIL image, an image file or an array
        print(boards.report())                                   # frames, latency, every answer checked
    report = splitnet.run(model="resnet_tiny", branches=2)       # exactly `splitrun run`

Everything here goes through the same stages as the command line (``splitrun run`` calls
:func:`run`); ``examples/notebook_api.py`` is a runnable walk-through.
"""

from ..framework.errors import SplitnetError
from ..framework.report import RunReport
from ..strategies import RunOptions
from .deployed import Deployed, DeployReport, deploy
from .functions import list_models, load_model, run, split

__all__ = [
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
]
