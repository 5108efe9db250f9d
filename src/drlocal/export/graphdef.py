"""Read a TensorFlow frozen graph (`model.pb`) without TensorFlow.

A frozen GraphDef is a protobuf message; importing a car model, or loading one for inference,
only needs its node names, ops, placeholder shapes and Const tensors. Parsing the protobuf wire
format directly (about a hundred lines) keeps TensorFlow an optional extra that only export and
the converter checks need. Field numbers are those of TensorFlow's `graph.proto`,
`node_def.proto`, `attr_value.proto`, `tensor.proto` and `tensor_shape.proto`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from drlocal.errors import DrlocalError

# tensorflow/core/framework/types.proto
_DTYPES: dict[int, np.dtype] = {
    1: np.dtype(np.float32), 2: np.dtype(np.float64), 3: np.dtype(np.int32), 4: np.dtype(np.uint8),
    9: np.dtype(np.int64), 10: np.dtype(np.bool_), 19: np.dtype(np.float16),
}


@dataclass
class Node:
    """One NodeDef: what import needs of it."""

    name: str
    op: str
    inputs: list[str] = field(default_factory=list)
    dtype: int | None = None  # attr "dtype" (Placeholder, Const) or "T"
    shape: list[int] | None = None  # attr "shape" of a Placeholder (-1 = unknown)
    value: np.ndarray | None = None  # attr "value" of a Const


class _Reader:
    """Protobuf wire-format reader over one message's bytes."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def varint(self) -> int:
        result = shift = 0
        while True:
            if self.pos >= len(self.data):
                raise ValueError("truncated varint")
            b = self.data[self.pos]
            self.pos += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    def fields(self) -> Iterator[tuple[int, int, Any]]:
        """(field number, wire type, value): ints for varint/fixed, bytes for length-delimited."""
        while self.pos < len(self.data):
            key = self.varint()
            num, wire = key >> 3, key & 7
            if wire == 0:
                yield num, wire, self.varint()
            elif wire == 1:
                yield num, wire, self.data[self.pos:self.pos + 8]
                self.pos += 8
            elif wire == 2:
                n = self.varint()
                if self.pos + n > len(self.data):
                    raise ValueError("truncated field")
                yield num, wire, self.data[self.pos:self.pos + n]
                self.pos += n
            elif wire == 5:
                yield num, wire, self.data[self.pos:self.pos + 4]
                self.pos += 4
            else:
                raise ValueError(f"unsupported wire type {wire}")


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _shape(data: bytes) -> list[int]:
    dims = []
    for num, _w, val in _Reader(data).fields():
        if num == 2:  # dim
            size = 0
            for n2, _w2, v2 in _Reader(val).fields():
                if n2 == 1:
                    size = _signed(v2)
            dims.append(size)
    return dims


def _tensor(data: bytes) -> np.ndarray:
    dtype_id, dims, content = 1, [], b""
    floats: list[float] = []
    ints: list[int] = []
    for num, wire, val in _Reader(data).fields():
        if num == 1:
            dtype_id = val
        elif num == 2:
            dims = _shape(val)
        elif num == 4:
            content = val
        elif num == 5:  # float_val, packed or not
            floats += (list(np.frombuffer(val, "<f4")) if wire == 2 else [struct.unpack("<f", val)[0]])
        elif num in (7, 10, 13):  # int_val / int64_val / half_val (varints)
            if wire == 2:
                r = _Reader(val)
                while r.pos < len(r.data):
                    ints.append(_signed(r.varint()))
            else:
                ints.append(_signed(val))
    dtype = _DTYPES.get(dtype_id)
    if dtype is None:
        return np.zeros(0, np.float32)  # a dtype import never needs (strings, ...)
    count = int(np.prod(dims)) if dims else 1
    if content:
        arr = np.frombuffer(content, dtype.newbyteorder("<")).astype(dtype)
    else:
        if dtype == np.float16 and ints:  # half_val holds the raw 16-bit patterns
            arr = np.asarray(ints, np.uint16).view(np.float16)
        else:
            vals = floats if floats else ints
            arr = np.asarray(vals, dtype=dtype) if vals else np.zeros(count, dtype)
        if arr.size == 1 and count > 1:
            arr = np.full(count, arr[0], dtype)  # TF stores a splat as one value
    return arr.reshape(dims) if dims else arr.reshape(())


def _node(data: bytes) -> Node:
    node = Node("", "")
    for num, _w, val in _Reader(data).fields():
        if num == 1:
            node.name = val.decode()
        elif num == 2:
            node.op = val.decode()
        elif num == 3:
            node.inputs.append(val.decode())
        elif num == 5:  # map<string, AttrValue> entry
            key, attr = "", b""
            for n2, _w2, v2 in _Reader(val).fields():
                if n2 == 1:
                    key = v2.decode()
                elif n2 == 2:
                    attr = v2
            for n3, _w3, v3 in _Reader(attr).fields():
                if key in ("dtype", "T") and n3 == 6:
                    node.dtype = v3
                elif key == "shape" and n3 == 7:
                    node.shape = _shape(v3)
                elif key == "value" and n3 == 8:
                    node.value = _tensor(v3)
    return node


_HINT = "pass the model.pb (or model.tar.gz) written by DeepRacer, DRfC or drlocal export."


def parse_graphdef(data: bytes, where: str = "model.pb") -> list[Node]:
    """The nodes of a serialized GraphDef, in file order."""
    try:
        nodes = [_node(val) for num, wire, val in _Reader(data).fields() if num == 1 and wire == 2]
    except (ValueError, UnicodeDecodeError, struct.error) as exc:
        raise DrlocalError(f"{where}: not a TensorFlow frozen graph ({exc}).", hint=_HINT) from exc
    if not nodes or not all(n.name and n.op for n in nodes):
        raise DrlocalError(f"{where}: not a TensorFlow frozen graph (no graph nodes found).", hint=_HINT)
    return nodes
