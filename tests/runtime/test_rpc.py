"""A real local tracker and two RPC servers on 127.0.0.1; nothing faked in-process."""

from __future__ import annotations

import time

import numpy as np
import pytest
from conftest import ATOL_FP32, random_input, rpc_processes
from tvm import rpc

from splitnet.framework.compile import LocalModule, compile_part
from splitnet.framework.errors import SplitnetError
from splitnet.framework.targets import host_target
from splitnet.partitioners import apply_plan, get_partitioner
from splitnet.runtime import (
    DistributedSplit,
    LocalCluster,
    acquire,
    builtin_inventory,
    free_port,
    place,
    request_session,
)

pytestmark = pytest.mark.boards


def test_two_boards_run_the_split_and_match_mxnet(tiny_reference, tiny_graph, no_leaked_boards):
    plan = get_partitioner("resnet_v1").plan(tiny_graph, model="resnet_tiny", n=2, widths=None, multiple=8)
    split = apply_plan(tiny_graph, plan)
    artifacts = [compile_part(b, host_target()) for b in split.branches]
    head = LocalModule(compile_part(split.head, host_target()))
    inventory = builtin_inventory()
    placement = place("round-robin", 2, inventory)
    with LocalCluster(inventory.boards) as cluster:
        summary = rpc.connect_tracker(cluster.host, cluster.tracker_port).summary()
        assert summary["queue_info"]["pynq"]["free"] == 2
        assert len(rpc_processes() & set(cluster.pids)) == 3  # tracker + two servers
        sessions = acquire(cluster.host, cluster.tracker_port, list(inventory.boards), cluster.address_of())
        # every branch lands on the board the placement named, matched by server address
        assert {name: s.address for name, s in sessions.items()} == {
            name: address for address, name in cluster.address_of().items()
        }
        modules = [sessions[placement.branches[i]].load(a) for i, a in enumerate(artifacts)]
        runner = DistributedSplit(modules, head)
        try:
            for seed in range(3):
                x = random_input(tiny_reference.spec.input_shape, seed=seed)
                result = runner(x)
                assert np.abs(result.logits - split(x)).max() <= ATOL_FP32
                assert len(result.branch_call_s) == 2 and result.total_s >= max(result.branch_call_s)
            assert all(t > 0 for m in modules for t in m.compute_times(x, repeat=2))
        finally:
            for board_session in sessions.values():
                board_session.close()
        # sessions went back: both boards register as free again (servers re-register async)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            summary = rpc.connect_tracker(cluster.host, cluster.tracker_port).summary()
            if summary["queue_info"]["pynq"]["free"] == 2:
                break
            time.sleep(0.2)
        assert summary["queue_info"]["pynq"]["free"] == 2


def test_unreachable_tracker_names_the_command_to_run():
    port = free_port()
    with pytest.raises(SplitnetError) as err:
        request_session("127.0.0.1", port, "pynq", timeout=2)
    assert f"query_rpc_tracker --host 127.0.0.1 --port {port}" in err.value.one_line()


def test_cluster_stops_every_process_even_after_an_error(no_leaked_boards):
    inventory = builtin_inventory()
    with pytest.raises(RuntimeError), LocalCluster(inventory.boards) as cluster:
        assert cluster.registered()
        raise RuntimeError("boom")
