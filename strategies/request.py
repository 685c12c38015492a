"""The split a user asks for, checked once: model, N, widths, multiple, strategy, placement.

Every entry point (``splitrun run``, ``compare``, ``tune``, ``train``, ``accuracy``, ``models``,
the Python API) turns what it was given into a :class:`SplitRequest` with
:meth:`SplitRequest.of` before any heavy work, so a bad value is one line naming it, and the
stages after (partition, placement, tuning key, deploy) read the checked values instead of
checking again. The shares it holds are the normalised widths every stage uses.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..framework.errors import SplitnetError
from ..framework.shares import DEFAULT_MULTIPLE, check_multiple, normalise_shares
from ..framework.split_model import SplitModel
from ..partitioners import ModelGraph, Partitioner, partition, partitioner_for
from ..runtime.inventory import Inventory
from ..runtime.placement import check_strategy
from ..zoo import ModelSpec, Reference, get_model_spec
from ..zoo.split_weights import fine_tuned
from .registry import DEFAULT_STRATEGY, get_strategy

DEFAULT_PLACEMENT = "round-robin"


@dataclass(frozen=True)
class SplitRequest:
    """A checked request: a registered model, 1..8 branches, their shares, a channel multiple."""

    spec: ModelSpec
    n: int
    widths: tuple[float, ...] | None  # as given (None: equal); placement strategies other than round-robin refuse them
    shares: tuple[float, ...]  # the widths normalised to sum to 1 (equal when none were given)
    multiple: int
    strategy: str = DEFAULT_STRATEGY
    placement: str | None = None  # None: the inventory's choice, else round-robin
    partitioner: Partitioner | None = None  # the partitioner of the model's family (branch strategy)

    @property
    def model(self) -> str:
        return self.spec.name

    @classmethod
    def of(
        cls,
        model: str,
        branches: int,
        widths: tuple[float, ...] | None = None,
        multiple: int = DEFAULT_MULTIPLE,
        strategy: str = DEFAULT_STRATEGY,
        placement: str | None = None,
    ) -> SplitRequest:
        """Check every field (one line each for the first problem found) and return the request.

        The branch strategy also needs a partitioner for the model's family; the lossless
        strategies cut the reference's own graph and need none.
        """
        shares = normalise_shares(branches, widths)
        spec = get_model_spec(model)
        get_strategy(strategy)  # unknown: one line listing the known ones
        partitioner = partitioner_for(spec.family) if strategy == DEFAULT_STRATEGY else None
        check_multiple(multiple)
        if placement is not None:
            check_strategy(placement, widths)
        return cls(spec, branches, widths, shares, multiple, strategy, placement, partitioner)

    def split(
        self, reference: Reference, shares: tuple[float, ...] | None = None, graph: ModelGraph | None = None
    ) -> tuple[SplitModel, dict | None]:
        """The split this request names, and the manifest entry of its fine-tuned weights (None: sliced).

        Planned by the model family's partitioner on ``shares`` (a placement's; default the
        request's own), applied to the reference's weights, then given the fine-tuned
        weights of the params manifest when they ship for this model, N and widths.
        """
        split = partition(reference, self.n, shares or self.shares, self.multiple, self.partitioner, graph)
        return fine_tuned(split, reference)

    def placement_for(self, inventory: Inventory) -> str:
        """The placement strategy to use: the request's, else the inventory's, else round-robin.

        Checked against the widths here, once the inventory is known: an inventory that asks
        for ``balanced`` placement cannot honour ``--widths``.
        """
        if self.placement is not None:
            return self.placement
        return check_strategy(inventory.placement or DEFAULT_PLACEMENT, self.widths)


def requests_for(model: str, ns: tuple[int, ...], multiple: int = DEFAULT_MULTIPLE) -> list[SplitRequest]:
    """One checked request per N in ``ns`` (equal widths), for the commands that take a list of N."""
    if not ns:
        raise SplitnetError("no branch counts given", "e.g. --branches 2,4")
    return [SplitRequest.of(model, n, None, multiple) for n in ns]
