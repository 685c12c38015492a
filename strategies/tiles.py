"""Halo math for fused tile partitioning (as in DeepThings): which input region a tile needs.

Intervals are half-open ``(start, stop)`` along one axis, in the coordinates of the whole
feature map. A sliding window (convolution or pooling) with kernel ``k``, stride ``s``,
padding ``p`` and dilation ``d`` computes output ``o`` from inputs ``o*s - p`` to
``o*s - p + d*(k-1)``, so an output interval needs :func:`input_interval` of its input; the
part of that interval outside ``[0, size)`` is the layer's padding, which a tile adds
itself (only on the map's real borders, never between tiles). Element-wise ops need the same
region as they produce. Walking the fused layers backwards from a tile's output region gives
each tensor's region, and the tile's input region is the model input's.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..framework.errors import SplitnetError

Interval = tuple[int, int]
Region = tuple[Interval, Interval]  # (rows, cols)


@dataclass(frozen=True)
class Window:
    """A sliding window along one axis."""

    kernel: int
    stride: int = 1
    pad: int = 0
    dilation: int = 1

    @property
    def extent(self) -> int:
        """Input span of one output element."""
        return self.dilation * (self.kernel - 1) + 1

    def output_size(self, size: int, ceil: bool = False) -> int:
        """Output length for an input of ``size`` (``ceil``: MXNet's ``full`` pooling convention)."""
        span = size + 2 * self.pad - self.extent
        return (-(-span // self.stride) if ceil else span // self.stride) + 1

    def input_interval(self, out: Interval) -> Interval:
        """The input interval (unclipped: may reach into padding) that ``out`` needs."""
        start, stop = out
        if stop <= start:
            raise ValueError(f"empty output interval {out}")
        return start * self.stride - self.pad, (stop - 1) * self.stride - self.pad + self.extent


def union(a: Interval, b: Interval) -> Interval:
    return min(a[0], b[0]), max(a[1], b[1])


def union_region(a: Region, b: Region) -> Region:
    return union(a[0], b[0]), union(a[1], b[1])


def clip(interval: Interval, size: int) -> Interval:
    """The part of ``interval`` inside ``[0, size)``; an interval wholly in padding is an error."""
    start, stop = max(interval[0], 0), min(interval[1], size)
    if stop <= start:
        raise ValueError(f"interval {interval} lies outside a map of size {size}")
    return start, stop


def padding(interval: Interval, size: int) -> tuple[int, int]:
    """How far ``interval`` reaches below 0 and beyond ``size`` (the padding a tile adds)."""
    return max(0, -interval[0]), max(0, interval[1] - size)


def length(interval: Interval) -> int:
    return interval[1] - interval[0]


def area(region: Region) -> int:
    return length(region[0]) * length(region[1])


def split_even(size: int, parts: int, what: str = "rows") -> list[Interval]:
    """``parts`` contiguous intervals covering ``[0, size)`` whose lengths differ by at most one."""
    if parts < 1:
        raise SplitnetError(f"need at least 1 tile, got {parts}", "pass --branches 2 or more")
    if parts > size:
        raise SplitnetError(
            f"{parts} tiles but the tiled feature map has only {size} {what}",
            f"use at most {size} tiles (--branches), or tile an earlier, larger layer (--fuse-until)",
        )
    base, extra = divmod(size, parts)
    bounds = [0]
    for i in range(parts):
        bounds.append(bounds[-1] + base + (1 if i < extra else 0))
    return [(bounds[i], bounds[i + 1]) for i in range(parts)]


def grid_regions(height: int, width: int, rows: int, cols: int = 1) -> list[Region]:
    """A ``rows`` x ``cols`` grid of tiles over an ``height`` x ``width`` map, row-major."""
    row_bands = split_even(height, rows, "rows")
    col_bands = split_even(width, cols, "columns")
    return [(r, c) for r in row_bands for c in col_bands]
