"""Bad input through the real CLI: one line naming the problem and the fix, a non-zero exit,
no traceback, and no board left running. Fills the gaps left by test_cli, test_inventory,
test_boards and test_zoo: inventory syntax through the CLI, corrupt params, odd images,
Ctrl-C while compiling. A case marked xfail would be a known bug, saying what goes wrong.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import rpc_processes, splitrun_popen
from PIL import Image

from splitnet.framework.errors import SplitnetError
from splitnet.framework.images import load_frames, preprocess
from splitnet.zoo import load_reference, sha256_of

pytestmark = pytest.mark.boards
TINY = ["--model", "resnet_tiny", "--runs", "1", "--warmup", "0"]
TINY_INPUT = (1, 3, 32, 32)
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
STOP_WAIT_S = 3.0  # how long stopped boards may take to disappear from the process table
PIXEL_TOLERANCE = 1.5 / 255  # one 8-bit step, after the 16 -> 8 bit rounding


def _no_boards_left(pid: int) -> set[int]:
    deadline = time.monotonic() + STOP_WAIT_S
    while (left := rpc_processes(owner=pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def _assert_one_line(proc: subprocess.Popen, out: str, err: str, *fragments: str) -> None:
    assert proc.returncode == EXIT_USAGE, (proc.returncode, err)
    assert "Traceback" not in out + err, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    assert "(fix: " in errors[0], errors[0]
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    assert not _no_boards_left(proc.pid)


# ---------------------------------------------------------------- one-line errors, run side by side


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def _truncated_params(root: Path, block) -> str:
    """A params folder whose manifest lists the tiny model's weights, cut short after hashing."""
    folder = root / "params"
    folder.mkdir()
    path = folder / "tiny.params"
    block.save_parameters(str(path))
    entry = {"model": "resnet_tiny", "classes": 10, "file": path.name, "sha256": sha256_of(path)}
    (folder / "manifest.json").write_text(json.dumps({"entries": [entry]}))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # an interrupted download
    return str(folder)


def _image_dir(root: Path, name: str, make) -> str:
    folder = root / name
    folder.mkdir()
    make(folder)
    return str(folder)


def _truncated_png(folder: Path) -> None:
    Image.new("RGB", (64, 64), (10, 200, 30)).save(folder / "ok.png")
    whole = folder / "cut.png"
    Image.effect_noise((128, 128), 40).save(whole)
    whole.write_bytes(whole.read_bytes()[:300])


def _cases(root: Path, block) -> dict[str, tuple[list[str], dict, tuple[str, ...]]]:
    """case -> (arguments, environment, fragments the one error line must contain)."""
    malformed = _write(root / "malformed.yaml", "boards:\n  - name: b0\n   target: x86\n")
    unknown_key = _write(root / "unknown.yaml", "boards:\n  - {name: b0, target: x86, local: true, core: 2}\n")
    looped = _write(root / "looped.yaml", "boards:\n  - {name: b0, key: k, target: &t {kind: llvm, host: *t}}\n")
    bomb = root / "bomb"
    bomb.mkdir()
    Image.new("1", (20_000, 10_000)).save(bomb / "huge.png")  # 200 Mpixel: pillow refuses to open it
    return {
        "malformed yaml": (["--inventory", malformed], {}, (malformed, "not valid YAML at line 3")),
        "unknown key": (["--inventory", unknown_key], {}, (unknown_key, "core: unknown key", "did you mean 'cores'")),
        "truncated params": (
            [],
            {"SPLITNET_PARAMS_DIR": _truncated_params(root, block)},
            ("tiny.params", "is corrupt or truncated", "restore it"),
        ),
        "truncated image": (
            ["--images", _image_dir(root, "cut", _truncated_png)],
            {},
            ("cut.png is not a readable image",),
        ),
        "runs zero": (["--runs", "0"], {}, ("--runs must be at least 1",)),
        "decompression bomb": (["--images", str(bomb)], {}, ("huge.png",)),
        "self-referencing target": (["--inventory", looped], {}, (looped, "target")),
    }


XFAIL: dict[str, str] = {}  # case -> why it fails today (a known bug); empty: none known
CASES = [
    "malformed yaml",
    "unknown key",
    "truncated params",
    "truncated image",
    "runs zero",
    "decompression bomb",
    "self-referencing target",
]


@pytest.fixture(scope="module")
def running(tmp_path_factory, tiny_reference):
    """Every case started at once (each fails before any board starts, so they overlap freely)."""
    root = tmp_path_factory.mktemp("bad-input")
    cases = _cases(root, tiny_reference.block)
    procs = {name: (splitrun_popen(*TINY, *args, env=env), fragments) for name, (args, env, fragments) in cases.items()}
    yield procs
    for proc, _ in procs.values():
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=XFAIL[c])) if c in XFAIL else c for c in CASES],
)
def test_bad_input_is_one_line_with_a_fix(running, case):
    proc, fragments = running[case]
    out, err = proc.communicate(timeout=300)
    _assert_one_line(proc, out, err, *fragments)
    assert "End to end" not in out  # refused before any work


# ---------------------------------------------------------------- params the CLI must not trust


def _manifest(tmp_path: Path, entries) -> Path:
    (tmp_path / "manifest.json").write_text(json.dumps({"entries": entries}))
    return tmp_path


def _shipped(tmp_path: Path, block) -> Path:
    path = tmp_path / "tiny.params"
    block.save_parameters(str(path))
    return _manifest(tmp_path, [{"model": "resnet_tiny", "classes": 10, "file": path.name, "sha256": sha256_of(path)}])


def test_a_params_file_the_manifest_lists_but_is_gone(tmp_path, tiny_reference):
    folder = _shipped(tmp_path, tiny_reference.block)
    (folder / "tiny.params").unlink()
    with pytest.raises(SplitnetError, match="tiny.params listed in the manifest is missing") as err:
        load_reference("resnet_tiny", directory=folder)
    assert "fix:" in err.value.one_line()


def test_a_manifest_that_is_not_json(tmp_path, tiny_reference):
    folder = _shipped(tmp_path, tiny_reference.block)
    (folder / "manifest.json").write_text('{"entries": [')  # cut short
    with pytest.raises(SplitnetError, match="manifest.json is not a valid params manifest"):
        load_reference("resnet_tiny", directory=folder)


@pytest.mark.parametrize(
    "entries",
    [
        [{"model": "resnet_tiny", "classes": 10, "file": "tiny.params"}],  # no sha256
        [{"model": "resnet_tiny", "classes": 10, "sha256": "00"}],  # no file
        ["resnet_tiny"],  # not a mapping
        5,  # not a list
    ],
    ids=["no sha256", "no file", "entry not a mapping", "entries not a list"],
)
def test_a_malformed_manifest_is_a_user_error(tmp_path, entries):
    (tmp_path / "tiny.params").write_bytes(b"x")
    with pytest.raises(SplitnetError, match="manifest"):
        load_reference("resnet_tiny", directory=_manifest(tmp_path, entries))


def test_params_that_match_their_hash_but_do_not_load_are_a_user_error(tmp_path):
    path = tmp_path / "tiny.params"
    path.write_bytes(b"not an NDArray file")
    entry = {"model": "resnet_tiny", "classes": 10, "file": path.name, "sha256": sha256_of(path)}
    with pytest.raises(SplitnetError, match="tiny.params"):
        load_reference("resnet_tiny", directory=_manifest(tmp_path, [entry]))


# ---------------------------------------------------------------- images of any mode and size


def _odd_images(folder: Path) -> int:
    """Modes and sizes a user's folder may hold; returns how many files were written."""
    ramp = np.linspace(0, 65535, 64 * 48).astype(np.uint16).reshape(48, 64)
    Image.fromarray(ramp).save(folder / "depth16.png")  # 16-bit greyscale (I;16)
    Image.new("P", (33, 17), 5).save(folder / "palette.png")
    Image.new("CMYK", (40, 40), (10, 20, 30, 40)).save(folder / "print.jpg")
    Image.new("1", (1, 1), 1).save(folder / "dot.png")  # one pixel, one bit
    Image.fromarray(np.random.RandomState(0).rand(40, 30).astype(np.float32)).save(folder / "float.tif")
    Image.new("LA", (5, 300), (10, 20)).save(folder / "sliver.png")  # 1:60 aspect, with alpha
    Image.new("RGB", (20, 20), (1, 2, 3)).save(folder / "really-a-png.jpg", format="PNG")
    frames = [Image.new("P", (24, 24), i) for i in range(3)]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:])
    (folder / ".hidden").write_text("skipped")
    return 8


def test_an_images_path_that_is_a_file_or_an_empty_folder(tmp_path):
    a_file = tmp_path / "photo.jpg"
    Image.new("RGB", (8, 8)).save(a_file)
    with pytest.raises(SplitnetError, match="photo.jpg is not a directory"):
        load_frames(a_file, TINY_INPUT)
    hidden_only = tmp_path / "hidden"
    hidden_only.mkdir()
    Image.new("RGB", (8, 8)).save(hidden_only / ".thumb.png")  # hidden files are skipped
    with pytest.raises(SplitnetError, match="has no files"):
        load_frames(hidden_only, TINY_INPUT)


def test_images_of_odd_modes_and_sizes_are_converted(tmp_path):
    folder = tmp_path / "odd"
    folder.mkdir()
    count = _odd_images(folder)
    proc = splitrun_popen(*TINY, "--images", str(folder))
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "error:" not in err
    assert f"{count} images" in out and "PASS" in out
    assert not _no_boards_left(proc.pid)


def test_a_16_bit_image_looks_like_its_8_bit_version():
    ramp = np.linspace(0, 65535, 64 * 64).astype(np.uint16).reshape(64, 64)
    deep = preprocess(Image.fromarray(ramp), TINY_INPUT)
    shallow = preprocess(Image.fromarray((ramp // 257).astype(np.uint8)), TINY_INPUT)
    np.testing.assert_allclose(deep, shallow, atol=PIXEL_TOLERANCE / 0.224, rtol=0)  # 0.224: smallest STD


# ---------------------------------------------------------------- the report path


def test_an_unwritable_report_path_is_one_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    proc = splitrun_popen(*TINY, "--json", str(blocker / "report.json"))
    out, err = proc.communicate(timeout=300)
    _assert_one_line(proc, out, err, str(blocker))


# ---------------------------------------------------------------- Ctrl-C while compiling


def _staging(cache: Path) -> list[Path]:
    """build_cached's staging folders: ``<cache>/<2 hex>/.<8 hex>-*``."""
    return [p for p in cache.glob("*/.*") if p.is_dir()]


def _entries(cache: Path) -> list[Path]:
    return [p for p in cache.glob("*/*") if not p.name.startswith(".")]


class _Drain(threading.Thread):
    """Reads a pipe as it comes, so a chatty child never blocks and its output is kept."""

    def __init__(self, pipe) -> None:
        super().__init__(daemon=True)
        self.pipe, self.lines = pipe, []

    def run(self) -> None:
        for line in self.pipe:
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self.lines)


def _wait_for(condition, proc: subprocess.Popen, what: str, err: _Drain, limit_s: float = 180) -> float:
    """Polls ``condition`` while ``proc`` runs; returns when it first held."""
    deadline = time.monotonic() + limit_s
    while not condition():
        assert proc.poll() is None, f"exited {proc.returncode} before {what}: {err.text}"
        assert time.monotonic() < deadline, f"no {what} after {limit_s:.0f} s: {err.text}"
        time.sleep(0.02)
    return time.monotonic()


@pytest.mark.slow
def test_ctrl_c_during_compile_stops_boards_and_leaves_no_half_cache_entry(tmp_path):
    """ResNet18 with an empty cache must compile its three parts; Ctrl-C lands inside the second.

    Sent to the whole process group, as a terminal does (g++ included). The progress bar is not
    drawn as it goes when stderr is a pipe, so the cue is the compile's own staging folder in
    the cache. The signal lands 70% into the second branch, timed by the first: late in
    ``tvm.compile``. Known bug, not tested here because it is a timing window: a Ctrl-C about
    20-35% into a part lands in a Python callback TVM runs from C++ (relax legalization), and
    tvm_ffi hands it back as a bare RuntimeError, so the CLI prints a traceback and exits 1.
    """
    cache = tmp_path / "cache"
    cache.mkdir()
    args = ["--model", "resnet18_v1", "--runs", "1", "--warmup", "0"]
    with splitrun_popen(*args, env={"SPLITNET_CACHE": str(cache)}, start_new_session=True) as proc:
        out, err = _Drain(proc.stdout), _Drain(proc.stderr)
        out.start()
        err.start()
        try:
            first = _wait_for(lambda: _staging(cache), proc, "compile", err)
            assert len(rpc_processes(owner=proc.pid)) >= 3, "tracker and boards should be up before compiling"
            part_s = _wait_for(lambda: _entries(cache), proc, "first compiled part", err) - first
            _wait_for(lambda: _staging(cache), proc, "second part", err)
            time.sleep(0.7 * part_s)
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            out.join(5)
            err.join(5)

    assert proc.returncode == EXIT_INTERRUPTED, err.text
    assert "interrupted" in err.text and "Traceback" not in err.text + out.text, err.text
    assert "End to end" not in out.text
    assert not _no_boards_left(proc.pid)
    with pytest.raises(ProcessLookupError):  # nothing of its process group left (g++ included)
        os.killpg(proc.pid, 0)

    assert not _staging(cache), "a staging folder was left behind"
    entries = _entries(cache)
    assert 1 <= len(entries) < 3, f"the interrupt did not land in the second part: {entries}"
    for entry in entries:  # whatever is there is whole: a later run may trust it
        meta = json.loads((entry / "meta.json").read_text())
        assert (entry / f"{meta['name']}.{meta['format']}").is_file(), entry
