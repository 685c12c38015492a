"""Every policy survives a second failure: two boards killed at different frames, on real boards.

``coded`` re-encodes its parity over the survivors after the first loss, so the second is
decoded exactly too; ``replicate`` makes a new copy of each branch whose copy died; ``spare``
moves the lost branch to the next spare each time.
"""

from __future__ import annotations

import pytest
from conftest import ATOL_FP32, splitrun_json

# One frame in flight, so frame numbers are exact: 8 verify frames + 100 = 108 sent.
FRAMES = ["--model", "resnet_tiny", "--runs", "100", "--warmup", "0", "--depth", "1"]
KILLS = {  # the second board killed is one that took over after the first kill
    "spare": ("kill:1@20", "kill:2@70"),  # branch 1: pynq1 -> pynq2 -> pynq3
    "coded": ("kill:1@20", "kill:2@70"),  # and the head: coded over 4 boards, then re-encoded over 3
    "replicate": ("kill:1@20", "kill:0@70"),  # both branches lose a copy each time
}


def run_json(tmp_path, *args: str) -> dict:
    return splitrun_json(tmp_path, *FRAMES, *args)[0]


@pytest.mark.boards
@pytest.mark.parametrize("policy", ["spare", "replicate", "coded"])
def test_two_boards_killed_at_different_frames_lose_no_frame(policy, tmp_path, no_leaked_boards):
    first, second = KILLS[policy]
    data = run_json(tmp_path, "--inventory", "four-pynq", "--policy", policy, "--chaos", first, "--chaos", second)
    assert data["ok"] and data["frames"] == 108 and data["frames_degraded"] == 0
    assert data["fidelity_max_abs_diff"] <= ATOL_FP32  # every frame, after both kills too
    killed = [f"pynq{spec[5]}" for spec in (first, second)]
    assert sorted(data["dead_boards"]) == sorted(killed)
    for board, at in zip(killed, (20, 70), strict=True):
        events = [f for f in data["faults"] if f["board"] == board]
        assert events and all(f["frame"] >= at and f["recovered_ms"] is not None for f in events), events
    repairs = data["repairs"]
    if policy == "coded":
        # re-encoded over the three boards left after the first loss, in time: the second loss
        # (pynq2, a data block of the new code) was decoded from parity on the boards on every
        # frame after it, never answered by the host's head. Two boards left are too few to
        # re-encode over (each would hold the whole layer): the code in use goes on decoding.
        done = [r for r in repairs if r["what"] == "coded head" and r["ok"] and "re-encoded over" in r["done"]]
        assert [r["done"] for r in done] == ["re-encoded over pynq0, pynq2, pynq3: 2 data blocks + parity"], repairs
        assert done[0]["frame"] < 70 and data["host_heads"] == 0
        assert data["parity_decodes"] >= 108 - 70
    elif policy == "replicate":
        # each kill cost both branches a copy, and each got a new one on a board that had none of it
        copies = [r for r in repairs if r["what"].startswith("copy of branch") and r["ok"] and "copied to" in r["done"]]
        assert len(copies) == 4, repairs
        assert all(r["frame"] < 70 for r in copies[:2])
        # the second kill found two live copies of each branch: no frame needed a re-placement
        assert all("replica" in f["action"] for f in data["faults"]), data["faults"]
    else:
        actions = [f["action"] for f in data["faults"] if f["part"] == "branch 1"]
        assert actions == ["branch 1 re-placed on pynq2, frame re-run", "branch 1 re-placed on pynq3, frame re-run"]
