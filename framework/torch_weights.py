"""Read a PyTorch checkpoint (a state dict of tensors) into numpy arrays, without torch.

Published weights often come only as ``torch.save`` files; installing torch (hundreds of MB)
just to read one is out of proportion, so this reads the two file layouts torch writes:

* the legacy stream (torch < 1.6): pickles of a magic number, a protocol version and system
  info, then the object pickle (tensors refer to storages by a persistent id), then the
  list of storage keys, then each storage's raw bytes behind an 8-byte element count;
* the zip archive (torch >= 1.6): ``*/data.pkl`` plus one ``*/data/<key>`` file per storage.

A custom :class:`pickle.Unpickler` resolves only what a state dict holds (``OrderedDict``,
``torch._utils._rebuild_tensor_v2`` and the typed storages); any other class is refused, so
reading a checkpoint never runs code from it. Only little-endian files are supported (what
every x86 and ARM machine writes).
"""

from __future__ import annotations

import collections
import pickle
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import SplitnetError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


@dataclass(frozen=True)
class _StorageType:
    dtype: type


@dataclass(frozen=True)
class _TensorRef:
    """A tensor before its storage's bytes are read: which storage, where, what shape."""

    key: str
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage, storage_offset, size, stride, *_unused):
    key, _dtype = storage
    return _TensorRef(str(key), int(storage_offset), tuple(size), tuple(stride))


class _StateDictUnpickler(pickle.Unpickler):
    def __init__(self, handle, path: Path, storages: dict[str, tuple[type, int]]) -> None:
        super().__init__(handle)
        self._path = path
        self._storages = storages

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        raise SplitnetError(
            f"{self._path} holds {module}.{name}, which a plain state dict of tensors does not",
            "save the weights as a state dict (torch.save(model.state_dict(), path))",
        )

    def persistent_load(self, saved_id):
        # legacy: ("storage", type, key, location, numel, view); zip: ("storage", type, key, location, numel)
        if not isinstance(saved_id, tuple) or saved_id[0] != "storage":
            raise SplitnetError(f"{self._path}: unexpected persistent id {saved_id!r:.60}", "re-save the checkpoint")
        storage_type, key, _location, numel = saved_id[1:5]
        if len(saved_id) > 5 and saved_id[5] is not None:
            raise SplitnetError(f"{self._path} uses storage views (torch < 0.4)", "re-save it with a newer torch")
        self._storages.setdefault(str(key), (storage_type.dtype, int(numel)))
        return (str(key), storage_type.dtype)


def _materialise(obj, buffers: dict[str, np.ndarray]):
    if isinstance(obj, _TensorRef):
        flat = buffers[obj.key]
        itemsize = flat.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[obj.offset :], shape=obj.size, strides=tuple(s * itemsize for s in obj.stride)
        )
        return np.array(view, copy=True)
    if isinstance(obj, dict):
        return collections.OrderedDict((k, _materialise(v, buffers)) for k, v in obj.items())
    return obj


def _read_legacy(path: Path) -> dict:
    storages: dict[str, tuple[type, int]] = {}
    with open(path, "rb") as handle:
        magic = pickle.load(handle)
        if magic != LEGACY_MAGIC:
            raise SplitnetError(f"{path} is not a PyTorch checkpoint", "pass the .pth file torch.save wrote")
        protocol = pickle.load(handle)
        if protocol != LEGACY_PROTOCOL:
            raise SplitnetError(f"{path}: unsupported PyTorch legacy protocol {protocol}", "re-save it with torch")
        pickle.load(handle)  # sys_info: endianness and type sizes
        result = _StateDictUnpickler(handle, path, storages).load()
        keys = pickle.load(handle)
        buffers = {}
        for key in keys:
            dtype, numel = storages[str(key)]
            (count,) = struct.unpack("<q", handle.read(8))
            if count != numel:
                raise SplitnetError(f"{path}: storage {key} holds {count} values, expected {numel}", "re-download it")
            data = handle.read(count * np.dtype(dtype).itemsize)
            if len(data) != count * np.dtype(dtype).itemsize:
                raise SplitnetError(f"{path} is truncated (storage {key})", "re-download it")
            buffers[str(key)] = np.frombuffer(data, dtype=dtype)
    return _materialise(result, buffers)


def _read_zip(path: Path) -> dict:
    storages: dict[str, tuple[type, int]] = {}
    with zipfile.ZipFile(path) as archive:
        pickles = [name for name in archive.namelist() if name.endswith("/data.pkl")]
        if not pickles:
            raise SplitnetError(f"{path} is a zip file without data.pkl", "pass the .pth file torch.save wrote")
        prefix = pickles[0][: -len("data.pkl")]
        with archive.open(pickles[0]) as handle:
            result = _StateDictUnpickler(handle, path, storages).load()
        buffers = {
            key: np.frombuffer(archive.read(f"{prefix}data/{key}"), dtype=dtype)[:numel]
            for key, (dtype, numel) in storages.items()
        }
    return _materialise(result, buffers)


def read_state_dict(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a ``torch.save``'d state dict, by name, in the file's order."""
    path = Path(path)
    if not path.is_file():
        raise SplitnetError(f"checkpoint {path} does not exist", "pass the path of a .pth file")
    try:
        state = _read_zip(path) if zipfile.is_zipfile(path) else _read_legacy(path)
    except (pickle.UnpicklingError, EOFError, struct.error, KeyError, ValueError) as exc:
        raise SplitnetError(
            f"{path} is not a readable PyTorch checkpoint ({type(exc).__name__})", "re-download it"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, np.ndarray) for v in state.values()):
        raise SplitnetError(f"{path} does not hold a state dict of tensors", "pass a state-dict checkpoint")
    return dict(state)
