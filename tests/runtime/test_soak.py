"""The short chaos soak (the long one's figures are in the README): benchmarks/soak.py with the
tiny model, 200 frames per policy on four real local boards, kills and stalls drawn from a seed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ATOL_FP32, rpc_processes

SOAK = Path(__file__).resolve().parents[2] / "benchmarks" / "soak.py"
POLICIES = ("spare", "replicate", "coded", "degrade")


@pytest.mark.boards
def test_a_short_seeded_chaos_soak_loses_no_frame_under_any_policy(tmp_path, no_leaked_boards):
    out = tmp_path / "soak.json"
    args = ["--model", "resnet_tiny", "--frames", "200", "--seed", "2", "--json", str(out)]
    with subprocess.Popen(
        [sys.executable, str(SOAK), *args, "--policies", ",".join(POLICIES)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        stdout, stderr = proc.communicate(timeout=1200)  # a hang fails here
    assert "Traceback" not in stderr, stderr[-3000:]
    rows = {r["policy"]: r for r in json.loads(out.read_text())}
    assert set(rows) == set(POLICIES), stdout
    for policy, row in rows.items():
        assert "error" not in row, (policy, row.get("error"))
        assert row["frames_answered"] == 200 and row["frames_lost"] == 0, policy
        assert row["max_abs_diff_exact"] <= ATOL_FP32, policy
        assert row["processes_left"] == 0, policy
        assert row["worst_ms"] >= row["p99_ms"] > 0
        assert row["ok"], policy  # every check passed, the degraded frames' check included
        if row["frames_degraded"]:  # flagged, and only where the policy answers without a lost branch
            assert policy == "degrade" and row["degraded_check"].startswith("PASS"), row["degraded_check"]
    # something was hit in each run (the seed draws its first event within the first 70 frames)
    assert all(rows[p]["hits"] for p in POLICIES), {p: rows[p]["skipped"] for p in POLICIES}
    assert proc.returncode == 0, stdout[-3000:]
    assert not rpc_processes(owner=proc.pid)
