"""Property-based tests: the inventory loader and the plan builder on generated input.

The loader must turn *any* parsed YAML (or any text) into an :class:`Inventory` or a
:class:`SplitnetError` whose every line names the file; valid files must round-trip, and a
file with k mistakes in k boards must report at least k problems, one naming each board.
The plan builder must either refuse (exactly when some layer is too narrow for N branches at
the multiple) or return a plan whose channels, features, FLOPs and shares add up.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from splitnet.framework.errors import ProblemsError, SplitnetError
from splitnet.partitioners import SplitPlan, allocate, get_partitioner, normalise_shares
from splitnet.runtime.inventory import DEFAULT_TRACKER_PORT, LOOPBACK, Inventory
from splitnet.runtime.inventory_file import BOARD, TOP, TRACKER, parse_inventory, parse_text
from splitnet.runtime.placement import list_strategies

SOURCE = "fuzz.yaml"
SHARE_TOLERANCE = 1e-9  # shares are float divisions of the given widths
FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# preset -> (default key, cores, export format, memory MB): the documented defaults, spelled out
# here rather than read back from the code under test
PRESETS = {
    "pynq-z1": ("pynq", 2, "tar", 512),
    "rpi4": ("rpi4", 4, "tar", 4096),
    "x86": ("x86", 1, "so", None),
    "cuda": ("cuda", 1, "so", None),
}


@pytest.fixture(scope="module", autouse=True)
def _no_tracker_environment():
    """TVM_TRACKER_HOST/PORT would fill in the tracker; generated files must decide alone."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("TVM_TRACKER_HOST", raising=False)
        patch.delenv("TVM_TRACKER_PORT", raising=False)
        yield


def _check_error(err: SplitnetError) -> list[str]:
    """Every line of a loader error names the file and carries a fix."""
    lines = err.lines()
    assert lines, err
    for line in lines:
        assert line.startswith(f"{SOURCE}: "), line
        assert "(fix: " in line, line
    return lines


def _load(loader, *args) -> Inventory | None:
    """The loader's result, or None after checking its error; any other exception fails the test."""
    try:
        inventory = loader(*args)
    except SplitnetError as err:
        _check_error(err)
        return None
    assert isinstance(inventory, Inventory)
    return inventory


# ---------------------------------------------------------------- valid inventories

names = st.from_regex(r"[a-z][a-z0-9_-]{0,10}", fullmatch=True)
keys = st.from_regex(r"[a-z][a-z0-9]{0,7}", fullmatch=True)
positive = st.one_of(
    st.floats(min_value=1e-3, max_value=1e4, allow_nan=False, allow_infinity=False), st.integers(1, 10_000)
)
MEMORY_UNITS = {"MB": 1, "mb": 1, "MiB": 1, "GB": 1024, "GiB": 1024, "gb": 1024}


@st.composite
def memories(draw) -> tuple[str | int, int]:
    """A memory field as written, and the megabytes it means."""
    if draw(st.booleans()):
        value = draw(st.integers(1, 1 << 20))  # 0 MB is refused as implausible
        return value, value
    value, unit = draw(st.integers(1, 8192)), draw(st.sampled_from([*MEMORY_UNITS, ""]))
    spacing = draw(st.sampled_from(["", " "]))
    return f"{value}{spacing}{unit}", value * MEMORY_UNITS.get(unit, 1)


@st.composite
def valid_boards(draw, name: str, trusted: bool) -> tuple[dict, dict]:
    """One board entry, and the Board fields it must load as."""
    raw: dict = {"name": name}
    preset = draw(st.sampled_from([*PRESETS, None]))
    if preset is None:
        raw["target"] = {"kind": "llvm"}
        raw["key"] = draw(keys)
        key, cores, export, memory = raw["key"], 1, "so", None
    else:
        raw["target"] = preset
        key, cores, export, memory = PRESETS[preset]
        if draw(st.booleans()):
            raw["key"] = key = draw(keys)
    if draw(st.booleans()):
        raw["cores"] = cores = draw(st.integers(1, 64))
    speed = None
    if draw(st.booleans()):
        raw["speed"] = speed = draw(positive)
    if draw(st.booleans()):
        raw["memory"], memory = draw(memories())
    link = None
    if draw(st.booleans()):
        raw["link"] = {"bandwidth_mbit": draw(positive), "rtt_ms": draw(positive)}
        link = (float(raw["link"]["bandwidth_mbit"]), float(raw["link"]["rtt_ms"]))
    if draw(st.booleans()):
        raw["export"] = export = draw(st.sampled_from(["so", "tar"]))
    local = draw(st.sampled_from([None, False, True]))
    if local is not None:
        raw["local"] = local
    host, quota = LOOPBACK, None
    if local:
        if draw(st.booleans()):
            raw["cpu_quota"] = quota = draw(st.floats(min_value=0.01, max_value=1.0))
        if draw(st.booleans()):
            choices = ["127.0.0.1", "127.0.0.2", "::1", *(["10.0.0.7"] if trusted else [])]
            raw["host"] = host = draw(st.sampled_from(choices))
    expected = {
        "name": name,
        "key": key,
        "cores": cores,
        "speed": speed,
        "memory_mb": memory,
        "link": link,
        "export_format": export,
        "local": bool(local),
        "cpu_quota": quota,
        "host": host,
        "preset": preset,
    }
    return raw, expected


@st.composite
def valid_inventories(draw, min_boards: int = 1) -> tuple[dict, dict]:
    """A valid inventory dict, and what it must load as."""
    trusted = draw(st.booleans())
    data: dict = {}
    if trusted or draw(st.booleans()):
        data["trusted_network"] = trusted
    port = draw(st.one_of(st.none(), st.integers(1, 65535)))
    if draw(st.booleans()):
        tracker: dict = {"local": True}
        expected_tracker = (LOOPBACK, port, True)
    else:
        host = draw(st.sampled_from(["127.0.0.1", *(["10.1.2.3", "tracker.lab"] if trusted else [])]))
        tracker = {"host": host, "local": False}
        expected_tracker = (host, DEFAULT_TRACKER_PORT if port is None else port, False)
    if port is not None:
        tracker["port"] = port
    if tracker != {"local": True} or draw(st.booleans()):
        data["tracker"] = tracker
    if draw(st.booleans()):
        data["placement"] = draw(st.sampled_from(list_strategies()))
    if draw(st.booleans()):
        data["description"] = draw(st.text(max_size=20))
    board_names = draw(st.lists(names, min_size=min_boards, max_size=6, unique=True))
    boards = [draw(valid_boards(name, trusted)) for name in board_names]
    data["boards"] = [raw for raw, _ in boards]
    expected = {
        "tracker": expected_tracker,
        "boards": [fields for _, fields in boards],
        "placement": data.get("placement"),
        "description": data.get("description", ""),
        "trusted": trusted,
    }
    return data, expected


def _board_fields(board) -> dict:
    link = None if board.link is None else (board.link.bandwidth_mbit, board.link.rtt_ms)
    fields = {k: getattr(board, k) for k in ("name", "key", "cores", "speed", "memory_mb", "export_format", "local")}
    fields.update(link=link, cpu_quota=board.cpu_quota, host=board.host, preset=board.preset)
    return fields


@FAST
@given(valid_inventories())
def test_valid_inventories_round_trip(case):
    data, expected = case
    inventory = parse_inventory(data, SOURCE)
    assert inventory.source == SOURCE
    tracker = inventory.tracker
    assert (tracker.host, tracker.port, tracker.local) == expected["tracker"]
    assert inventory.placement == expected["placement"]
    assert inventory.description == expected["description"]
    assert inventory.trusted_network == expected["trusted"]
    assert [_board_fields(b) for b in inventory.boards] == expected["boards"]
    for board in inventory.boards:  # a preset's target is built for the board's core count
        if board.preset is None:
            assert board.target == {"kind": "llvm"}
        elif board.preset == "cuda":
            assert board.target["kind"] == "cuda" and board.target["host"]["num-cores"] == board.cores
        else:
            assert board.target["kind"] == "llvm" and board.target["num-cores"] == board.cores
    # the same file as YAML text loads to the same inventory
    assert parse_text(yaml.safe_dump(data, sort_keys=False), SOURCE) == inventory


@FAST
@given(valid_inventories(), st.data())
def test_a_duplicated_name_is_reported_once_naming_both_entries(case, data):
    inventory, _ = case
    boards = inventory["boards"]
    original = data.draw(st.integers(0, len(boards) - 1))
    copy = dict(data.draw(st.sampled_from(boards)), name=boards[original]["name"])
    where = data.draw(st.integers(original + 1, len(boards)))  # after the original
    bad = dict(inventory, boards=[*boards[:where], copy, *boards[where:]])
    with pytest.raises(ProblemsError) as err:
        parse_inventory(bad, SOURCE)
    lines = _check_error(err.value)
    assert len(lines) == 1, lines
    name = boards[original]["name"]
    assert f"boards[{where}].name: duplicate name {name!r} (also boards[{original}])" in lines[0]


# ---------------------------------------------------------------- injected mistakes

UNKNOWN_KEYS = st.from_regex(r"[a-z_]{1,12}", fullmatch=True).filter(lambda k: k not in BOARD)


def _drop(board: dict, key: str) -> dict:
    return {k: v for k, v in board.items() if k != key}


# mistake -> (edit of a valid board, fragment of the line that reports it)
MISTAKES = {
    "unknown key": (lambda b, key: {**b, key: 1}, "unknown key"),
    "cores zero": (lambda b, _: {**b, "cores": 0}, "cores: must be at least 1"),
    "cores text": (lambda b, _: {**b, "cores": "two"}, "cores: expected an integer"),
    "cores bool": (lambda b, _: {**b, "cores": True}, "cores: expected an integer"),
    "speed negative": (lambda b, _: {**b, "speed": -1.5}, "speed: must be positive"),
    "memory text": (lambda b, _: {**b, "memory": "lots"}, "memory: cannot read 'lots'"),
    "export": (lambda b, _: {**b, "export": "zip"}, "unknown export format 'zip'"),
    "unknown preset": (lambda b, _: {**b, "target": "pynq-z9"}, "target: unknown preset 'pynq-z9'"),
    "target type": (lambda b, _: {**b, "target": 42}, "target: expected a string or a mapping"),
    "no target": (lambda b, _: _drop(b, "target"), "target: missing"),
    "no name": (lambda b, _: _drop(b, "name"), ".name: missing"),
    "link half": (lambda b, _: {**b, "link": {"bandwidth_mbit": 10}}, "link.rtt_ms: missing"),
    "link zero": (lambda b, _: {**b, "link": {"bandwidth_mbit": 0, "rtt_ms": 1}}, "bandwidth_mbit: must be positive"),
    "quota remote": (
        lambda b, _: {**_drop(b, "host"), "local": False, "cpu_quota": 0.5},
        "cpu_quota: only applies to local boards",
    ),
    "quota above one": (lambda b, _: {**b, "local": True, "cpu_quota": 3}, "cpu_quota: is a fraction of one core"),
    "host everywhere": (lambda b, _: {**b, "local": True, "host": "0.0.0.0"}, "0.0.0.0 binds every interface"),
    "not a mapping": (lambda b, _: b["name"], "expected a mapping"),
    "dict without key": (lambda b, _: {**_drop(b, "key"), "target": {"kind": "llvm"}}, "key: missing"),
}


@FAST
@given(valid_inventories(min_boards=1), st.data())
def test_k_mistakes_in_k_boards_give_at_least_k_lines_naming_each(case, data):
    inventory, _ = case
    boards = list(inventory["boards"])
    broken = data.draw(st.lists(st.integers(0, len(boards) - 1), min_size=1, unique=True), label="boards")
    chosen = {}
    for i in broken:
        mistake = data.draw(st.sampled_from(sorted(MISTAKES)), label=f"mistake in boards[{i}]")
        edit, fragment = MISTAKES[mistake]
        boards[i] = edit(boards[i], data.draw(UNKNOWN_KEYS))
        chosen[i] = fragment
    with pytest.raises(SplitnetError) as err:
        parse_inventory(dict(inventory, boards=boards), SOURCE)
    lines = _check_error(err.value)
    assert len(lines) >= len(broken), lines
    for i, fragment in chosen.items():
        assert any(f"boards[{i}]" in line and fragment in line for line in lines), (i, fragment, lines)
    # and nothing is said about the boards left alone
    for line in lines:
        assert any(f"boards[{i}]" in line for i in broken), line


# ---------------------------------------------------------------- anything at all

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=8),
    st.sampled_from(["pynq-z1", "x86", "512MB", "127.0.0.1", "so", "tar", "balanced", "0.0.0.0"]),
)
any_key = st.one_of(st.sampled_from(sorted({*TOP, *BOARD, *TRACKER, "bandwidth_mbit", "rtt_ms"})), st.text(max_size=6))
anything = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_key, inner, max_size=4), max_leaves=12
)


@FAST
@given(anything)
def test_any_parsed_yaml_loads_or_is_a_user_error(data):
    _load(parse_inventory, data, SOURCE)


@FAST
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "tracker": st.one_of(st.dictionaries(any_key, anything, max_size=3), anything),
            "boards": st.lists(st.one_of(st.dictionaries(any_key, anything, max_size=6), anything), max_size=4),
            "placement": anything,
            "trusted_network": anything,
            "description": anything,
        },
    )
)
def test_any_inventory_shaped_dict_loads_or_is_a_user_error(data):
    _load(parse_inventory, data, SOURCE)


@FAST
@given(valid_inventories(), st.data())
def test_a_valid_inventory_with_one_field_replaced_loads_or_is_a_user_error(case, data):
    inventory, _ = case
    boards = [dict(b) for b in inventory["boards"]]
    i = data.draw(st.integers(0, len(boards) - 1))
    key = data.draw(st.sampled_from([*sorted(BOARD), "bogus"]))
    boards[i][key] = data.draw(anything, label="value")
    _load(parse_inventory, dict(inventory, boards=boards), SOURCE)


YAML_ALPHABET = "{}[]:,-&*!|>'\"#?%@` \n\tabkxy01.-_"


@FAST
@given(st.one_of(st.text(max_size=80), st.text(alphabet=YAML_ALPHABET, max_size=80)))
def test_any_text_loads_or_is_a_user_error(text):
    _load(parse_text, text, SOURCE)


@FAST
@given(valid_inventories(), st.data())
def test_a_damaged_valid_file_loads_or_is_a_user_error(case, data):
    text = yaml.safe_dump(case[0], sort_keys=False)
    start = data.draw(st.integers(0, len(text)))
    stop = data.draw(st.integers(start, min(len(text), start + 10)))
    insert = data.draw(st.text(alphabet=YAML_ALPHABET, max_size=4))
    _load(parse_text, text[:start] + insert + text[stop:], SOURCE)


# ---------------------------------------------------------------- loader bugs, pinned


def test_an_absurd_memory_size_is_a_user_error():
    _load(parse_text, "boards: [{name: a, target: x86, memory: 1" + "0" * 400 + "MB}]", SOURCE)


def test_a_tracker_port_of_unicode_digits_is_a_user_error(monkeypatch):
    monkeypatch.setenv("TVM_TRACKER_HOST", "127.0.0.1")
    monkeypatch.setenv("TVM_TRACKER_PORT", "²")
    _load(parse_text, "boards: [{name: a, target: x86}]", SOURCE)


@pytest.mark.parametrize(
    "field", ["speed: .nan", "speed: .inf", "link: {bandwidth_mbit: .nan, rtt_ms: 1}", "memory: -5"]
)
def test_non_finite_or_negative_sizes_are_rejected(field):
    with pytest.raises(SplitnetError):
        parse_text(f"boards: [{{name: a, target: x86, {field}}}]", SOURCE)


# ---------------------------------------------------------------- channel allocation


@FAST
@given(
    channels=st.integers(1, 1024),
    multiple=st.integers(1, 32),
    shares=st.lists(st.floats(min_value=1e-3, max_value=1e3), min_size=1, max_size=8),
    equal=st.booleans(),
)
def test_allocate_partitions_channels_in_whole_units_plus_one_remainder(channels, multiple, shares, equal):
    n = len(shares)
    shares = normalise_shares(n, None if equal else tuple(shares))
    if channels // multiple < n:
        with pytest.raises(SplitnetError, match=f"{n} branches need at least {n * multiple} channels.*layer L"):
            allocate(channels, shares, multiple, layer="L")
        return
    parts = allocate(channels, shares, multiple, layer="L")
    assert len(parts) == n
    # contiguous runs, in branch order, covering every channel exactly once
    assert np.array_equal(np.concatenate(parts), np.arange(channels))
    widths = [len(p) for p in parts]
    rest = channels % multiple
    off = [b for b, w in enumerate(widths) if w % multiple]
    # whole units of `multiple`, except the rest of the layer, added to one of the widest branches
    assert len(off) == (1 if rest else 0), (widths, multiple)
    if off:
        assert widths[off[0]] % multiple == rest and widths[off[0]] == max(widths)
    if equal:  # largest remainder with equal shares: unit counts differ by at most one
        units = [(w - (rest if b in off else 0)) // multiple for b, w in enumerate(widths)]
        assert max(units) - min(units) <= 1, widths


@FAST
@example(channels=16, multiple=1, shares=(98.0, 1.0, 1.0))
@example(channels=24, multiple=8, shares=(0.98, 0.01, 0.01))
@given(
    channels=st.integers(1, 1024),
    multiple=st.integers(1, 32),
    shares=st.lists(st.floats(min_value=1e-3, max_value=1e3), min_size=1, max_size=8),
)
def test_allocate_gives_every_branch_at_least_one_unit(channels, multiple, shares):
    if channels // multiple < len(shares):
        return
    parts = allocate(channels, normalise_shares(len(shares), tuple(shares)), multiple)
    assert min(len(p) for p in parts) >= multiple, [len(p) for p in parts]


def test_huge_widths_still_give_shares_summing_to_one():
    try:
        shares = normalise_shares(2, (1e308, 1e308))
    except SplitnetError:
        return  # refusing is fine too
    assert math.isclose(sum(shares), 1.0, rel_tol=SHARE_TOLERANCE), shares


# ---------------------------------------------------------------- plans on the tiny ResNet

MULTIPLES = (1, 2, 4, 8)


@st.composite
def plan_requests(draw) -> tuple[int, tuple[float, ...] | None, int]:
    n = draw(st.integers(1, 8))
    widths = draw(
        st.one_of(st.none(), st.lists(st.floats(min_value=0.05, max_value=20.0), min_size=n, max_size=n).map(tuple))
    )
    return n, widths, draw(st.sampled_from(MULTIPLES))


def _conv_layers(graph) -> list[str]:
    return [op for op in graph.ops() if graph.op(op) == "Convolution"]


@settings(FAST, max_examples=40)
@given(request_=plan_requests())
def test_plans_add_up_or_refuse_exactly_when_a_layer_is_too_narrow(tiny_graph, request_):
    n, widths, multiple = request_
    graph = tiny_graph
    narrowest = min(graph.shape(op)[1] for op in _conv_layers(graph))
    rule = get_partitioner("resnet_v1")
    if narrowest // multiple < n:
        with pytest.raises(SplitnetError, match="--multiple"):
            rule.plan(graph, model="resnet_tiny", n=n, widths=widths, multiple=multiple)
        return
    plan = rule.plan(graph, model="resnet_tiny", n=n, widths=widths, multiple=multiple)
    assert (plan.n, plan.multiple, len(plan.branches), len(plan.shares)) == (n, multiple, n, n)

    # shares: positive, summing to one, in the proportions asked for
    assert all(s > 0 for s in plan.shares)
    assert math.isclose(sum(plan.shares), 1.0, rel_tol=SHARE_TOLERANCE)
    given_widths = widths or (1.0,) * n
    for share, width in zip(plan.shares, given_widths, strict=True):
        assert math.isclose(share / plan.shares[0], width / given_widths[0], rel_tol=SHARE_TOLERANCE)

    # every conv layer's channels are shared out whole, in units of `multiple` (one remainder)
    for layer in _conv_layers(graph):
        full = graph.shape(layer)[1]
        counts = [plan.branches[b].conv_channels[layer] for b in range(n)]
        assert sum(counts) == full, (layer, counts)
        off = [c for c in counts if c % multiple]
        assert len(off) <= 1 and all(c % multiple == full % multiple for c in off), (layer, counts)
        indices = plan.channels(layer)
        assert [len(idx) for idx in indices] == counts
        assert np.array_equal(np.concatenate(indices), np.arange(full))

    # the branches' features are the head's whole input
    head_input = int(np.prod(graph.shape(plan.feature_tensor)[1:]))
    assert graph.data_inputs(plan.head_ops[0]) == [plan.feature_tensor]
    assert sum(b.feature_size for b in plan.branches) == head_input
    assert plan.head.feature_sizes == tuple(b.feature_size for b in plan.branches)

    # dropping cross-branch weights never adds work: each branch, and all together, fit in the body
    flops = [b.flops for b in plan.branches]
    assert all(0 <= f <= plan.reference_body_flops for f in flops)
    assert sum(flops) <= plan.reference_body_flops
    assert sum(b.params for b in plan.branches) + plan.head.params <= plan.reference_params
    if n == 1:
        assert flops == [plan.reference_body_flops]

    again = SplitPlan.from_dict(json.loads(plan.to_json()))
    assert again == plan and again.digest() == plan.digest()


@settings(FAST, max_examples=25)
@example(request_=(3, (98.0, 1.0, 1.0), 1))
@given(request_=plan_requests())
def test_every_branch_of_a_plan_does_some_work(tiny_graph, request_):
    n, widths, multiple = request_
    try:
        plan = get_partitioner("resnet_v1").plan(tiny_graph, model="resnet_tiny", n=n, widths=widths, multiple=multiple)
    except SplitnetError:
        return
    assert all(b.flops > 0 and b.params > 0 and b.feature_size > 0 for b in plan.branches), plan.branches
    for layer in _conv_layers(tiny_graph):
        assert all(b.conv_channels[layer] >= multiple for b in plan.branches), layer
