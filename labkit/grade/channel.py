"""The grading channel: a data-only encoding of plain values, and length-prefixed
frames.

Everything that crosses between the grader and its worker processes goes through
``encode`` and ``decode``. The format carries data and nothing else, so a message
written by a submission can at worst carry wrong data, never code (no pickle anywhere):

    message = MAGIC | u64 header length | header (JSON, UTF-8) | blob area (raw bytes)

The header is a JSON tree of tagged nodes. ``null``, ``true``/``false``, numbers
(``NaN`` and ``Infinity`` included) and strings stand for themselves; every JSON object
has exactly one key::

    {"T": [...]}   a tuple          {"L": [...]}  a list
    {"D": [[k, v], ...]}            a dict with str keys (ordered pairs, no duplicates)
    {"A": [dtype, shape, offset, nbytes]}
                                    a numpy array whose bytes sit in the blob area
    {"S": [dtype, number]}          a numpy scalar (np.float64, np.int64, np.bool_ ...)
    {"B": [offset, nbytes]}         bytes (only where the reader allows them)

Arrays are restricted to boolean, integer and floating dtypes of at most 8 bytes per
item. The decoder checks every node, offset, shape and size, and returns exact built-in
types and fresh numpy arrays that own their memory, whatever subclass the writer started
from.
"""

from __future__ import annotations

import json
import math
import re
import struct
from typing import Any

import numpy as np

__all__ = ["ChannelError", "encode", "decode", "frame", "FrameReader"]

MAGIC = b"LKGRADE1"
_U64 = struct.Struct(">Q")
_DTYPE = re.compile(r"^[<>|=]?[biuf][1248]$")
_MAX_DEPTH = 64
_MAX_NDIM = 32


class ChannelError(ValueError):
    """A message that is not a well-formed channel message, or is larger than
    allowed."""


def encode(obj: Any, *, allow_bytes: bool = False) -> bytes:
    """The channel message for ``obj``; TypeError for anything that is not plain
    data."""
    blobs: list[bytes] = []
    offset = [0]

    def blob(data: bytes) -> tuple[int, int]:
        start = offset[0]
        blobs.append(data)
        offset[0] += len(data)
        return start, len(data)

    def node(value: Any, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            raise TypeError(f"value nested more than {_MAX_DEPTH} levels deep")
        if value is None or value is True or value is False:
            return value
        if isinstance(value, np.generic):
            if value.dtype.kind not in "biuf" or value.dtype.itemsize > 8:
                raise TypeError(
                    f"numpy scalars of dtype {value.dtype} cannot cross the channel"
                )
            return {"S": [value.dtype.str, value.item()]}
        if isinstance(value, int):
            return int.__int__(
                value
            )  # the stored number, whatever a subclass says it is
        if isinstance(value, float):
            return float.__float__(value)
        if isinstance(value, str):
            return str.__str__(value)
        if isinstance(value, (bytes, bytearray, memoryview)) and allow_bytes:
            return {"B": list(blob(bytes(value)))}
        if isinstance(value, np.ndarray):
            dtype = value.dtype
            if dtype.kind not in "biuf" or dtype.itemsize > 8 or dtype.names:
                raise TypeError(f"arrays of dtype {dtype} cannot cross the channel")
            start, size = blob(np.ndarray.tobytes(value, order="C"))
            return {"A": [dtype.str, [int(n) for n in value.shape], start, size]}
        if isinstance(value, tuple):
            return {"T": [node(v, depth + 1) for v in tuple.__iter__(value)]}
        if isinstance(value, list):
            return {"L": [node(v, depth + 1) for v in list.__iter__(value)]}
        if isinstance(value, dict):
            pairs = []
            for key, item in dict.items(value):
                if not isinstance(key, str):
                    raise TypeError("dictionary keys must be strings")
                pairs.append([str.__str__(key), node(item, depth + 1)])
            return {"D": pairs}
        raise TypeError(f"a {type(value).__name__} cannot cross the channel")

    header = json.dumps(node(obj, 0), allow_nan=True, separators=(",", ":")).encode()
    return b"".join([MAGIC, _U64.pack(len(header)), header, *blobs])


def decode(
    data: bytes, *, allow_bytes: bool = False, max_bytes: int | None = None
) -> Any:
    """The value carried by a channel message; ChannelError if it is malformed or too
    large."""
    data = memoryview(data)
    if max_bytes is not None and len(data) > max_bytes:
        raise ChannelError(
            f"message of {len(data)} bytes exceeds the limit of {max_bytes}"
        )
    head = len(MAGIC) + _U64.size
    if len(data) < head or bytes(data[: len(MAGIC)]) != MAGIC:
        raise ChannelError("not a grading-channel message")
    (header_size,) = _U64.unpack(data[len(MAGIC) : head])
    if header_size > len(data) - head:
        raise ChannelError("truncated message header")
    try:
        tree = json.loads(bytes(data[head : head + header_size]).decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise ChannelError(
            f"unreadable message header ({type(exc).__name__})"
        ) from None
    area = data[head + header_size :]

    def span(offset: Any, size: Any) -> memoryview:
        if not (
            _is_int(offset)
            and _is_int(size)
            and 0 <= offset
            and 0 <= size
            and offset + size <= len(area)
        ):
            raise ChannelError("blob outside the message")
        return area[offset : offset + size]

    def array(spec: Any) -> np.ndarray:
        if not (isinstance(spec, list) and len(spec) == 4):
            raise ChannelError("malformed array node")
        dtype_str, shape, offset, size = spec
        if not (isinstance(dtype_str, str) and _DTYPE.match(dtype_str)):
            raise ChannelError(f"array dtype {dtype_str!r} is not allowed")
        dtype = np.dtype(dtype_str)
        if not (
            isinstance(shape, list)
            and len(shape) <= _MAX_NDIM
            and all(_is_int(n) and n >= 0 for n in shape)
        ):
            raise ChannelError("malformed array shape")
        count = math.prod(shape)
        if count * dtype.itemsize != size:
            raise ChannelError("array size does not match its shape")
        raw = np.frombuffer(span(offset, size), dtype=dtype).reshape(tuple(shape))
        if dtype.kind == "b":  # any non-zero byte is True; keep only clean booleans
            return raw.view(np.uint8) != 0
        return raw.astype(dtype.newbyteorder("="), copy=True)

    def scalar(spec: Any) -> np.generic:
        if not (
            isinstance(spec, list)
            and len(spec) == 2
            and isinstance(spec[0], str)
            and _DTYPE.match(spec[0])
            and isinstance(spec[1], (bool, int, float))
        ):
            raise ChannelError("malformed numpy scalar node")
        try:
            return np.dtype(spec[0]).type(spec[1])
        except (OverflowError, ValueError):
            raise ChannelError("numpy scalar out of range for its dtype") from None

    def value(item: Any, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            raise ChannelError("message nested too deeply")
        if item is None or isinstance(item, (bool, int, float, str)):
            return item
        if isinstance(item, dict) and len(item) == 1:
            ((tag, body),) = item.items()
            if tag in ("T", "L") and isinstance(body, list):
                items = [value(v, depth + 1) for v in body]
                return tuple(items) if tag == "T" else items
            if tag == "D" and isinstance(body, list):
                out: dict[str, Any] = {}
                for pair in body:
                    if not (
                        isinstance(pair, list)
                        and len(pair) == 2
                        and isinstance(pair[0], str)
                    ):
                        raise ChannelError("malformed dict node")
                    if pair[0] in out:
                        raise ChannelError(f"duplicate dict key {pair[0]!r}")
                    out[pair[0]] = value(pair[1], depth + 1)
                return out
            if tag == "A":
                return array(body)
            if tag == "S":
                return scalar(body)
            if tag == "B" and allow_bytes and isinstance(body, list) and len(body) == 2:
                return bytes(span(*body))
        raise ChannelError("malformed message node")

    return value(tree, 0)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def frame(payload: bytes, flags: int = 0) -> bytes:
    """One frame: the payload's length (u64), a flags byte, then the payload."""
    return _U64.pack(len(payload)) + bytes([flags]) + payload


class FrameReader:
    """Reassembles frames from a byte stream fed in arbitrary chunks.

    ``feed`` returns the complete ``(flags, payload)`` frames so far; a frame announcing
    more than ``max_bytes`` raises ChannelError before any of it is buffered.
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._buffer = bytearray()

    def feed(self, chunk: bytes) -> list[tuple[int, bytes]]:
        self._buffer += chunk
        frames = []
        head = _U64.size + 1
        while len(self._buffer) >= head:
            (size,) = _U64.unpack_from(self._buffer)
            if size > self.max_bytes:
                raise ChannelError(
                    f"frame of {size} bytes exceeds the limit of {self.max_bytes}"
                )
            if len(self._buffer) < head + size:
                break
            frames.append(
                (self._buffer[_U64.size], bytes(self._buffer[head : head + size]))
            )
            del self._buffer[: head + size]
        return frames

    @property
    def pending(self) -> int:
        """Bytes received that do not yet form a complete frame."""
        return len(self._buffer)
