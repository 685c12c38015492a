"""Candidates timed on the boards themselves, through the tracker (MetaSchedule's RPC runner).

A board whose code cannot run here (an ARM board, real or under qemu) cannot be tuned with
the local runner: each candidate is built here as a ``.tar`` (MetaSchedule's default export),
uploaded to a server registered under the boards' key, linked there by the board's own
compiler, and timed there. ``max_workers`` is the number of such servers, so every board
measures at once; TVM's C++ server serves one session at a time, so never more.
"""

from __future__ import annotations

from dataclasses import dataclass

from tvm.s_tir import meta_schedule as ms

SESSION_TIMEOUT_S = 120  # one candidate: upload, link on the board, run (under qemu: seconds)


@dataclass(frozen=True)
class Boards:
    """Where the candidates go: the tracker's address, the key, how many servers it has."""

    host: str
    port: int
    key: str
    count: int = 1

    def describe(self) -> str:
        return f"{self.count} board(s) under key {self.key!r} on tracker {self.host}:{self.port}"


def board_runner(boards: Boards, initializer=None) -> ms.runner.RPCRunner:
    return ms.runner.RPCRunner(
        rpc_config=ms.runner.RPCConfig(
            tracker_host=boards.host,
            tracker_port=boards.port,
            tracker_key=boards.key,
            session_priority=1,
            session_timeout_sec=SESSION_TIMEOUT_S,
        ),
        evaluator_config=ms.runner.EvaluatorConfig(number=3, repeat=1, min_repeat_ms=0, enable_cpu_cache_flush=False),
        max_workers=boards.count,
        initializer=initializer,
    )
