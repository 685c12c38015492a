"""``server: cpp``: host stand-ins on the C++ ``tvm_rpc`` a PYNQ runs, with the copy fix.

The unit tests run everywhere. The boards tests need ``splitrun setup arm --cpp x86_64``;
they skip without it unless SPLITNET_REQUIRE_ARM is set (CI builds it and sets it).
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pytest
from conftest import ATOL_FP32, need_cpp, splitrun, splitrun_json
from conftest import inventory_board as board

from splitnet.framework.errors import ProblemsError
from splitnet.runtime.arm import rpc_patch
from splitnet.runtime.arm.paths import ArmPaths, default_source

BOARD = "  - {{name: pynq{i}, target: pynq-z1, local: true, cores: 1, server: cpp}}\n"


# -- the patch ----------------------------------------------------------------------------------
def _vendored_endpoint(tmp_path: Path) -> Path:
    """The two files the patch changes, from the vendored TVM source."""
    source = default_source()
    if source is None or not source.is_file():
        pytest.skip("no vendored TVM source (../shared/vendor)")
    wanted = {str(rpc_patch.FILE), str(rpc_patch.CMAKE_FILE)}
    with tarfile.open(source) as tgz:
        for member in tgz.getmembers():
            inside = member.name.split("/", 1)[-1]
            if inside in wanted:
                member.name = inside
                tgz.extract(member, tmp_path, filter="data")
                wanted.discard(inside)
    assert not wanted, f"the vendored source lacks {wanted}"
    return tmp_path


def test_the_patch_applies_to_the_vendored_source_once(tmp_path):
    tree = _vendored_endpoint(tmp_path)
    before = (tree / rpc_patch.FILE).read_text()
    cmake_before = (tree / rpc_patch.CMAKE_FILE).read_text()
    assert not rpc_patch.is_patched(tree) and not rpc_patch.has_channel(tree)
    assert rpc_patch.apply(tree) == "patched" and rpc_patch.is_patched(tree) and rpc_patch.has_channel(tree)
    after = (tree / rpc_patch.FILE).read_text()
    assert after.startswith(before[: before.index(rpc_patch.ANCHOR)]) and len(after) > len(before)
    assert "void WriteArray(const T* data" in after and "bool ReadArray(T* data" in after
    cmake = (tree / rpc_patch.CMAKE_FILE).read_text()
    assert cmake.replace(rpc_patch.CMAKE_ADDED, "", 1) == cmake_before
    assert (tree / rpc_patch.CHANNEL_FILE).read_bytes() == rpc_patch.CHANNEL_SOURCE.read_bytes()
    assert rpc_patch.apply(tree) == "already patched" and (tree / rpc_patch.FILE).read_text() == after
    assert (tree / rpc_patch.CMAKE_FILE).read_text() == cmake


def test_a_tree_with_only_one_of_the_two_files_gets_the_change_that_fits(tmp_path):
    tree = _vendored_endpoint(tmp_path)
    (tree / rpc_patch.CMAKE_FILE).unlink()
    assert rpc_patch.apply(tree) == "patched (copies only)" and not rpc_patch.has_channel(tree)


def test_a_source_the_patch_does_not_fit_is_left_alone(tmp_path):
    assert rpc_patch.apply(tmp_path) == "not applicable"  # no such file
    (tmp_path / rpc_patch.FILE).parent.mkdir(parents=True)
    (tmp_path / rpc_patch.FILE).write_text("// another TVM\n")
    assert rpc_patch.apply(tmp_path) == "not applicable"
    assert (tmp_path / rpc_patch.FILE).read_text() == "// another TVM\n"


def test_the_source_step_is_redone_when_the_patch_choice_changes(tmp_path):
    from splitnet.runtime.arm import steps

    paths = ArmPaths(tmp_path)
    (paths.source / "apps" / "cpp_rpc").mkdir(parents=True)
    said = steps._patched(paths, steps.Context(None, tmp_path / "logs", rpc_patch=False), "unpacked")
    assert said.endswith("skipped (--no-rpc-patch)")
    assert steps._source_done_for(False)(paths) and not steps._source_done_for(True)(paths)
    said = steps._patched(paths, steps.Context(None, tmp_path / "logs"), "unpacked")
    assert said.endswith("not applicable")  # this tree has no rpc_endpoint.cc
    assert steps._source_done_for(True)(paths) and not steps._source_done_for(False)(paths)


# -- the inventory ------------------------------------------------------------------------------
def test_server_is_python_unless_a_board_or_the_environment_says_cpp(monkeypatch):
    monkeypatch.delenv("SPLITNET_SERVER", raising=False)
    assert board("target: pynq-z1, local: true").server_kind == "python"
    cpp = board("target: pynq-z1, local: true, server: cpp")
    assert cpp.host_server == "cpp-x86_64" and "C++ server" in cpp.describe()
    monkeypatch.setenv("SPLITNET_SERVER", "cpp")
    assert board("target: pynq-z1, local: true").host_server == "cpp-x86_64"
    assert board("target: pynq-z1, local: true, server: python").host_server is None


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("target: pynq-z1, local: true, server: java", "unknown server 'java'"),
        ("target: pynq-z1, server: cpp", "only applies to local boards"),
    ],
)
def test_bad_server_is_one_line(line, words):
    with pytest.raises(ProblemsError) as err:
        board(line)
    assert any(words in problem for problem in err.value.lines()), err.value.lines()


def test_cpp_without_the_build_says_which_setup_builds_it(tmp_path):
    inventory = tmp_path / "cpp.yaml"
    inventory.write_text("boards:\n" + BOARD.format(i=0))
    env = {"SPLITNET_ARM_CACHE": str(tmp_path / "empty")}
    proc = splitrun("boards", "--inventory", str(inventory), env=env, timeout=120)
    assert proc.returncode == 2
    errors = [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "splitrun setup arm --cpp x86_64" in errors[0], proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


# -- on boards ----------------------------------------------------------------------------------
@pytest.mark.boards
def test_two_stand_ins_on_the_cpp_server_answer_like_mxnet(tmp_path, no_leaked_boards):
    need_cpp()
    inventory = tmp_path / "cpp.yaml"
    inventory.write_text("boards:\n" + "".join(BOARD.format(i=i) for i in range(2)))
    report, proc = splitrun_json(
        tmp_path, "--inventory", str(inventory), "--model", "resnet_tiny", "--branches", "2", "--runs", "6"
    )
    assert report["servers"] == {"pynq0": "cpp-x86_64", "pynq1": "cpp-x86_64"}
    assert {b["target"] for b in report["branches"]} == {"pynq-z1 (emulated on this host, C++ server)"}
    assert report["fidelity_max_abs_diff"] <= ATOL_FP32
    assert report["wire"]["sent_bytes_per_frame"] > 0  # frames really crossed the patched copy path
    assert all(c["status"] != "FAIL" for c in report["checks"]), report["checks"]


@pytest.mark.boards
@pytest.mark.parametrize("policy", ["spare", "replicate", "coded"])
def test_a_cpp_board_killed_with_frames_in_flight_loses_no_frame(policy, tmp_path, no_leaked_boards):
    need_cpp()
    inventory = tmp_path / "three.yaml"
    inventory.write_text("placement: round-robin\nboards:\n" + "".join(BOARD.format(i=i) for i in range(3)))
    args = ["--inventory", str(inventory), "--model", "resnet_tiny", "--branches", "2", "--policy", policy]
    report, _ = splitrun_json(tmp_path, *args, "--runs", "40", "--depth", "4", "--chaos", "kill:1@20")
    assert report["dead_boards"] == ["pynq1"] and report["faults"][0]["board"] == "pynq1", report["faults"]
    assert report["frames_degraded"] == 0 and report["fidelity_max_abs_diff"] <= ATOL_FP32
    answered = next(c for c in report["checks"] if c["name"] == "frames answered")
    assert answered["status"] == "PASS" and answered["value"] == f"{report['frames']}/{report['frames']}", answered


@pytest.mark.boards
def test_copies_to_the_cpp_server_are_exact(no_leaked_boards):
    """Every byte of a frame arrives: a tensor copied through the patched path comes back equal."""
    need_cpp()
    import tvm
    from tvm import rpc

    from splitnet.runtime import Board, LocalCluster

    b = Board(name="cpp0", key="pynq", target={"kind": "llvm"}, local=True, server="cpp")
    with LocalCluster([b]) as cluster:
        session = rpc.connect_tracker(cluster.host, cluster.tracker_port).request("pynq")
        for dtype, shape in (("uint8", (1, 3, 224, 224)), ("float32", (3, 5, 7)), ("int64", (17,))):
            x = (np.random.RandomState(0).rand(*shape) * 200).astype(dtype)
            remote = tvm.runtime.empty(shape, dtype, session.cpu(0))
            remote.copyfrom(x)
            np.testing.assert_array_equal(remote.numpy(), x)
        del remote, session
