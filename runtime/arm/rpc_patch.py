"""One fix to TVM 0.27's RPC, applied to the source the C++ server is built from.

TVM 0.27 moved its RPC endpoint onto ``support::Stream``, whose ``ReadArray`` and
``WriteArray`` move an array one element, one virtual call, at a time. A tensor copy goes
through them as ``char``, so every byte of a frame costs both ends about 10 ns of CPU:
TVM RPC tops out near 50 MB/s over loopback with both processes at half a core each
(measured: ``benchmarks/copies.py``). On a single-core board that CPU is the board's
compute time. The fix gives the endpoint's handler bulk versions for plain numbers (one
``memcpy`` into or out of its ring buffer); other types, and big-endian wire formats, keep
the element-wise path. It changes no byte on the wire, so a patched server talks to an
unpatched client (the host's pip wheel) and the reverse.

The patch is text: an anchor and what follows it. A source it does not apply to (another
TVM version) is built unpatched, and the set-up says so.
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
PATCH_ID = hashlib.sha256((ANCHOR + ADDED).encode()).hexdigest()[:12]  # builds record which patch they have


def is_patched(source: Path) -> bool:
    path = source / FILE
    return path.is_file() and MARKER in path.read_text(errors="replace")


def apply(source: Path) -> str:
    """Patch ``source`` in place: ``patched``, ``already patched`` or ``not applicable``."""
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
