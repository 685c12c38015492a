"""Which tuning database belongs to which build: the key and the lookup.

A MetaSchedule record is only useful for the exact loop nest it was tuned on, and that
depends on the model, the input shape, N, the channels each branch owns and the target. So
every database folder under ``tuning/`` carries a ``key.json`` with exactly those, and the
compile stage looks for the folder whose key matches its build. A database tuned on another
CPU of the same architecture still applies (schedules never change results, only speed); the
lookup says so instead of silently pretending the code is tuned for this CPU.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from ..framework.errors import SplitnetError
from ..framework.layout import DEFAULT_LAYOUT, LAYOUTS, check_layout
from ..framework.targets import describe, runs_here, target_key

TUNING_DIR_ENV = "SPLITNET_TUNING_DIR"
KEY_FILE = "key.json"
DB_FILES = ("database_workload.json", "database_tuning_record.json")


def tuning_root() -> Path:
    """``$SPLITNET_TUNING_DIR``, else the repository's ``tuning/`` folder (where shipped databases live)."""
    env = os.environ.get(TUNING_DIR_ENV)
    return Path(env) if env else Path(__file__).resolve().parent


@dataclass(frozen=True)
class TuningKey:
    """What a database was tuned for. ``shares`` are the branch width shares, rounded;
    ``layout`` is the convolutions' layout the records were tuned in (a build applying them
    uses it too; databases written before layouts existed are NCHW)."""

    model: str
    input_shape: tuple[int, ...]
    n: int
    shares: tuple[float, ...]
    target: dict
    layout: str = DEFAULT_LAYOUT

    @staticmethod
    def of(model: str, input_shape, shares, target: dict, layout: str = DEFAULT_LAYOUT) -> TuningKey:
        return TuningKey(
            model,
            tuple(int(d) for d in input_shape),
            len(shares),
            tuple(round(float(s), 4) for s in shares),
            dict(target),
            check_layout(layout),
        )

    @property
    def folder_name(self) -> str:
        shape = "x".join(str(d) for d in self.input_shape)
        widths = "-".join(f"{s:g}" for s in self.shares)
        cpu = self.target.get("mcpu", self.target.get("kind", "target"))
        layout = "" if self.layout == DEFAULT_LAYOUT else f"_{self.layout.lower()}"
        return f"{self.model}_{shape}_n{self.n}_w{widths}_{cpu}_{self.target.get('num-cores', 1)}core{layout}"

    def to_json(self) -> dict:
        data = asdict(self)
        data["input_shape"] = list(self.input_shape)
        data["shares"] = list(self.shares)
        return data

    @staticmethod
    def from_json(data: dict) -> TuningKey:
        return TuningKey(
            data["model"],
            tuple(data["input_shape"]),
            int(data["n"]),
            tuple(data["shares"]),
            data["target"],
            check_layout(data.get("layout", DEFAULT_LAYOUT)),
        )

    def same_build(self, other: TuningKey) -> bool:
        return (self.model, self.input_shape, self.n, self.shares) == (
            other.model,
            other.input_shape,
            other.n,
            other.shares,
        )


def key_for(split, target: dict, layout: str = DEFAULT_LAYOUT) -> TuningKey:
    """The key of a :class:`~splitnet.partitioners.SplitModel`'s build for ``target`` (tuned in ``layout``)."""
    shares = [b.share for b in split.plan.branches]
    return TuningKey.of(split.plan.model, split.branches[0].input_shapes[0], shares, target, layout)


def _without_cpu(target: dict) -> str:
    return target_key({k: v for k, v in target.items() if k != "mcpu"})


# What a schedule depends on in a CPU: the vector width it was tuned for (blocking and
# vectorised loops are sized by it), then the vendor's cache layout. LLVM's names, grouped.
_AVX512 = {
    "intel": ("skylake-avx512", "cascadelake", "cooperlake", "cannonlake", "icelake-client", "icelake-server",
              "tigerlake", "rocketlake", "sapphirerapids", "emeraldrapids", "graniterapids"),
    "amd": ("znver4", "znver5"),
}  # fmt: skip
_AVX2 = {
    "intel": ("haswell", "broadwell", "skylake", "alderlake", "raptorlake", "meteorlake", "arrowlake", "lunarlake"),
    "amd": ("znver1", "znver2", "znver3"),
}  # fmt: skip


def cpu_family(cpu: str) -> tuple[str, str]:
    """(vector level, vendor) of an LLVM CPU name: ``("avx512", "intel")`` for rocketlake; ``("?", "?")``
    for a CPU this table does not know."""
    for level, table in (("avx512", _AVX512), ("avx2", _AVX2)):
        for vendor, names in table.items():
            if cpu in names:
                return level, vendor
    return "?", "?"


def cpu_distance(a: str, b: str) -> int:
    """0 for the same CPU; then 1 (same vector level and vendor), 2 (same vector level), 3 (anything else)."""
    if a == b:
        return 0
    (level_a, vendor_a), (level_b, vendor_b) = cpu_family(a), cpu_family(b)
    if level_a == level_b != "?":
        return 1 if vendor_a == vendor_b else 2
    return 3


@dataclass(frozen=True)
class DatabaseMatch:
    """A database found for a build, and how well it matches (``exact`` or tuned on another CPU)."""

    path: Path
    key: TuningKey
    exact: bool

    @property
    def note(self) -> str:
        where = self.path.name
        if self.exact:
            return f"tuned: database {where}"
        return (
            f"tuned on another CPU ({self.key.target.get('mcpu', '?')}): database {where} applied; "
            "code is correct but may be slower here (run splitrun tune to tune for this CPU)"
        )


def database_folders(root: Path | None = None) -> list[tuple[Path, TuningKey]]:
    """Every complete database under ``root`` with its key (folders without one, or empty, are skipped)."""
    root = root or tuning_root()
    found = []
    for key_file in sorted(root.glob(f"*/{KEY_FILE}")):
        folder = key_file.parent
        if not all((folder / name).exists() for name in DB_FILES):
            continue
        try:
            data = json.loads(key_file.read_text())
            key = TuningKey.from_json(data)
        except (ValueError, KeyError, TypeError, SplitnetError):
            continue  # a malformed key is not ours to trust; the build stays untuned
        if data.get("records") == 0:
            continue  # written by a run stopped before any round ended: applying it would tune nothing
        found.append((folder, key))
    return found


# When databases for one build exist in several layouts, the one tried first. NHWC: its
# convolutions tuned as fast or up to 1.9x faster than NCHW's on x86 (benchmarks/layouts.py).
LAYOUT_PREFERENCE = ("NHWC", "NCHW")
assert set(LAYOUT_PREFERENCE) == set(LAYOUTS)


def find_database(key: TuningKey, root: Path | None = None) -> DatabaseMatch | None:
    """The database for ``key``'s build: this CPU's, else the nearest other CPU's
    (:func:`cpu_distance`: the same vector width first, then the same vendor); between
    layouts of equally near ones, :data:`LAYOUT_PREFERENCE` decides. ``key.layout`` is
    not matched: a database brings its own layout to the build."""
    found_near: list[tuple[tuple[int, int], DatabaseMatch]] = []
    cpu = str(key.target.get("mcpu", ""))
    for folder, found in database_folders(root):
        if not key.same_build(found) or _without_cpu(found.target) != _without_cpu(key.target):
            continue
        exact = target_key(found.target) == target_key(key.target)
        distance = 0 if exact else max(1, cpu_distance(cpu, str(found.target.get("mcpu", ""))))
        rank = (distance, LAYOUT_PREFERENCE.index(found.layout))
        found_near.append((rank, DatabaseMatch(folder, found, exact=exact)))
    return min(found_near, key=lambda pair: pair[0])[1] if found_near else None


def untuned_note(key: TuningKey) -> str:
    # A target that cannot run here is tuned on its boards: the command needs their inventory.
    boards = "" if runs_here(key.target) else " --inventory INVENTORY (its boards time the candidates)"
    return (
        f"untuned: no tuning database for {key.model} N={key.n} on {describe(key.target)} "
        f"(run: splitrun tune --model {key.model} --branches {key.n}{boards})"
    )
