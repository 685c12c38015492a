"""Two changes to TVM 0.27's C++ RPC server, applied to the source it is built from.

The first is a fix to its copies; the second adds the board's end of the frame channel.

TVM 0.27 moved its RPC endpoint onto ``support::Stream``, whose ``ReadArray`` and
``WriteArray`` move an array one element, one virtual call, at a time. A tensor copy goes
through them as ``char``, so every byte of a frame costs both ends about 10 ns of CPU:
TVM RPC tops out near 50 MB/s over loopback with both processes at half a core each
(measured: ``benchmarks/copies.py``). On a single-core board that CPU is the board's
compute time. The fix gives the endpoint's handler bulk versions for plain numbers (one
``memcpy`` into or out of its ring buffer); other types, and big-endian wire formats, keep
the element-wise path. It changes no byte on the wire, so a patched server talks to an
unpatched client (the host's pip wheel) and the reverse.

The frame channel (:mod:`board_server`, whose docstring says why) is a C++ file shipped
beside this one, ``splitnet_channel.cc``: it is copied into ``apps/cpp_rpc`` and added to the
server's sources, so ``tvm_rpc`` registers ``splitnet.channel.*``.

Each change is text: an anchor and what follows it. A source it does not apply to (another
TVM version) is built without it, and the set-up says so.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

FILE = Path("src") / "runtime" / "rpc" / "rpc_endpoint.cc"
ANCHOR = "  using Stream::Read;\n  using Stream::Write;\n"
MARKER = "// splitnet: bulk array IO"
ADDED = """
  // splitnet: bulk array IO. Arrays of plain numbers move with one copy; support::Stream's
  // default moves them one element (one virtual call) at a time, about 10 ns a byte.
  template <typename T>
  void WriteArray(const T* data, size_t num_elems) {
    if constexpr (std::is_arithmetic_v<T> && TVM_FFI_IO_NO_ENDIAN_SWAP) {
      this->Write(static_cast<const void*>(data), sizeof(T) * num_elems);
    } else {
      Stream::WriteArray(data, num_elems);
    }
  }
  template <typename T>
  bool ReadArray(T* data, size_t num_elems) {
    if constexpr (std::is_arithmetic_v<T> && TVM_FFI_IO_NO_ENDIAN_SWAP) {
      return this->Read(static_cast<void*>(data), sizeof(T) * num_elems) == sizeof(T) * num_elems;
    } else {
      return Stream::ReadArray(data, num_elems);
    }
  }
"""
CHANNEL_SOURCE = Path(__file__).with_name("splitnet_channel.cc")
CHANNEL_FILE = Path("apps") / "cpp_rpc" / CHANNEL_SOURCE.name
CMAKE_FILE = Path("apps") / "cpp_rpc" / "CMakeLists.txt"
CMAKE_ANCHOR = "  rpc_server.cc\n"
CMAKE_ADDED = f"  {CHANNEL_SOURCE.name}\n"
PATCH_ID = hashlib.sha256(  # builds record which patch they have
    (ANCHOR + ADDED + CMAKE_ANCHOR + CMAKE_ADDED).encode() + CHANNEL_SOURCE.read_bytes()
).hexdigest()[:12]


def is_patched(source: Path) -> bool:
    path = source / FILE
    return path.is_file() and MARKER in path.read_text(errors="replace")


def has_channel(source: Path) -> bool:
    cmake = source / CMAKE_FILE
    return (source / CHANNEL_FILE).is_file() and cmake.is_file() and CMAKE_ADDED in cmake.read_text()


def _apply_copies(source: Path) -> str:
    path = source / FILE
    if not path.is_file():
        return "not applicable"
    text = path.read_text()
    if MARKER in text:
        return "already patched"
    if text.count(ANCHOR) != 1:
        return "not applicable"
    path.write_text(text.replace(ANCHOR, ANCHOR + ADDED, 1))
    return "patched"


def _apply_channel(source: Path) -> str:
    cmake = source / CMAKE_FILE
    if not cmake.is_file():
        return "not applicable"
    text = cmake.read_text()
    if CMAKE_ADDED not in text and text.count(CMAKE_ANCHOR) != 1:
        return "not applicable"
    copied = source / CHANNEL_FILE
    fresh = not copied.is_file() or copied.read_bytes() != CHANNEL_SOURCE.read_bytes()
    copied.write_bytes(CHANNEL_SOURCE.read_bytes())
    if CMAKE_ADDED in text:
        return "patched" if fresh else "already patched"
    cmake.write_text(text.replace(CMAKE_ANCHOR, CMAKE_ANCHOR + CMAKE_ADDED, 1))
    return "patched"


def apply(source: Path) -> str:
    """Patch ``source`` in place: ``patched``, ``already patched`` or ``not applicable``, or
    which of the two changes applied when only one did."""
    said = {"copies": _apply_copies(source), "channel": _apply_channel(source)}
    if len(set(said.values())) == 1:
        return said["copies"]
    if "not applicable" in said.values():
        done = next(k for k, v in said.items() if v != "not applicable")
        return f"{said[done]} ({done} only)"
    return "patched"
