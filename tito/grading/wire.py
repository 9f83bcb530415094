"""What crosses between the judge and a submission's kernel: plain data by value, everything else by reference.

Both sides use this file: tito's judge (tito/grading/judge.py) and the grading kernel in the sandbox
(tito/grading/kernel.py, which finds it in the grader folder as `grading_wire`); so it imports nothing from tito.

A value is plain data when it is one of a closed list of types, exactly (a subclass is not): None, bool, int,
float, complex, str, bytes, tuples, lists and dicts of plain data, NumPy arrays and scalars of a numeric or bool
dtype, such dtypes, slices, `...`, NotImplemented and a few named types (`float`, `np.float32`). It is copied:
its JSON form carries the structure, and an array's bytes follow the JSON, read back with `np.frombuffer` under
a dtype checked against that list. Nothing is unpickled or evaluated. Any other value becomes a reference
that the side holding it hands out (`refer`) and resolves (`resolve`).

A message is one frame on a stream socket: two lengths, the JSON, then the bytes of its arrays.
"""
from __future__ import annotations

import builtins
import json
import re
import struct

import numpy as np

MAX_FRAME = 64 * 2**20  # bytes of one message: an answer larger than this ends the test
MAX_DEPTH = 32           # nesting of one value
MAX_ITEMS = 1_000_000    # values in one message
_HEADER = struct.Struct("!QQ")
_DTYPE = re.compile(r"[<>|=]?[biufc]\d{1,2}")
_TYPES = {name: getattr(builtins, name) for name in
          ("bool", "int", "float", "complex", "str", "bytes", "object", "list", "tuple", "dict", "slice", "type")}
_TYPES.update({f"np.{name}": getattr(np, name) for name in
               ("bool_", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16",
                "float32", "float64", "complex64", "complex128", "ndarray", "dtype", "generic", "number",
                "integer", "floating")})
_TYPE_NAMES = {kind: name for name, kind in _TYPES.items()}
_CONSTANTS = {"...": Ellipsis, "NotImplemented": NotImplemented}


class WireError(Exception):
    """A message that is not what this file writes: the other side is not to be trusted with it."""


def encode(value, refer, refer_arrays: bool = False, arrays: tuple = (np.ndarray,)) -> tuple[object, list]:
    """(JSON-able form, array buffers) of `value`; `refer(obj)` gives the JSON form of a non-data object.

    `arrays` are the array types sent by value (exactly these types). With `refer_arrays`, each array is sent
    with a reference too, through which the other side may write into it.
    """
    buffers: list = []
    count = [0]

    def walk(item, depth: int):
        count[0] += 1
        if depth > MAX_DEPTH or count[0] > MAX_ITEMS:
            raise WireError(f"a value nested deeper than {MAX_DEPTH} or with more than {MAX_ITEMS} parts")
        kind = type(item)
        if item is None or kind in (bool, int, str):
            return item
        if kind is float:
            return {"float": repr(item)}
        if kind is complex:
            return {"complex": [repr(item.real), repr(item.imag)]}
        if kind is bytes:
            buffers.append(item)
            return {"bytes": len(buffers) - 1}
        if kind in (tuple, list):
            return {kind.__name__: [walk(part, depth + 1) for part in item]}
        if kind is dict:
            return {"dict": [[walk(key, depth + 1), walk(part, depth + 1)] for key, part in item.items()]}
        if kind in arrays and item.dtype.kind in "biufc" and not item.dtype.fields:
            buffers.append(np.ascontiguousarray(item).tobytes())
            form = {"array": len(buffers) - 1, "dtype": item.dtype.str, "shape": list(item.shape)}
            return {**form, "ref": refer(item)} if refer_arrays else form
        if isinstance(item, np.generic) and kind in _TYPE_NAMES and item.dtype.kind in "biufc":
            buffers.append(np.asarray(item).tobytes())
            return {"scalar": len(buffers) - 1, "dtype": item.dtype.str}
        if isinstance(item, np.dtype) and not item.fields and item.kind in "biufc":
            return {"dtype": item.str}
        if kind is slice:
            return {"slice": [walk(item.start, depth + 1), walk(item.stop, depth + 1), walk(item.step, depth + 1)]}
        if isinstance(item, type) and item in _TYPE_NAMES:
            return {"type": _TYPE_NAMES[item]}
        if item is Ellipsis or item is NotImplemented:
            return {"constant": "..." if item is Ellipsis else "NotImplemented"}
        return {"ref": refer(item)}

    return walk(value, 0), buffers


def decode(form, buffers: list, resolve, attach=lambda array, owner: array):
    """The value `encode` wrote; `resolve(ref)` gives the object of a reference, and `attach(array, owner)` the
    array sent with a reference to its original `owner`."""
    def walk(item, depth: int):
        if depth > MAX_DEPTH:
            raise WireError("a value nested too deeply")
        if item is None or type(item) in (bool, int, str):
            return item
        if type(item) is not dict:
            raise WireError(f"not a value: {str(item)[:80]}")
        if "float" in item:
            return float(_text(item["float"]))
        if "complex" in item:
            real, imag = item["complex"]
            return complex(float(_text(real)), float(_text(imag)))
        if "bytes" in item:
            return bytes(_buffer(buffers, item["bytes"]))
        if "tuple" in item or "list" in item:
            parts = [walk(part, depth + 1) for part in _list(item.get("tuple", item.get("list")))]
            return tuple(parts) if "tuple" in item else parts
        if "dict" in item:
            return {walk(key, depth + 1): walk(part, depth + 1) for key, part in map(_pair, _list(item["dict"]))}
        if "array" in item:
            array = _array(buffers, item["array"], item.get("dtype"), item.get("shape"))
            return attach(array, resolve(item["ref"])) if "ref" in item else array
        if "scalar" in item:
            return _array(buffers, item["scalar"], item.get("dtype"), [])[()]
        if "dtype" in item:
            return np.dtype(_dtype(item["dtype"]))
        if "slice" in item:
            return slice(*[walk(part, depth + 1) for part in _list(item["slice"], 3)])
        if "type" in item and item["type"] in _TYPES:
            return _TYPES[item["type"]]
        if "constant" in item and item["constant"] in _CONSTANTS:
            return _CONSTANTS[item["constant"]]
        if "ref" in item:
            return resolve(item["ref"])
        raise WireError(f"not a value: {str(item)[:80]}")

    return walk(form, 0)


def builtin_base(kind: type) -> str:
    """The name of the nearest builtin class of `kind` (an exception's or a warning's): what the other side can
    name it by."""
    return next(base.__name__ for base in kind.__mro__ if base.__module__ == "builtins")


def _text(value) -> str:
    if type(value) is not str or len(value) > 40:
        raise WireError("a number that is not one")
    return value


def _list(value, length: int | None = None) -> list:
    if type(value) is not list or (length is not None and len(value) != length):
        raise WireError("a malformed list")
    return value


def _pair(value) -> list:
    return _list(value, 2)


def _buffer(buffers: list, index) -> bytes:
    if type(index) is not int or not 0 <= index < len(buffers):
        raise WireError("a reference to bytes that were not sent")
    return buffers[index]


def _dtype(text) -> str:
    if type(text) is not str or not _DTYPE.fullmatch(text):
        raise WireError(f"a dtype outside numbers and bools: {str(text)[:20]}")
    return text


def _array(buffers: list, index, dtype, shape) -> np.ndarray:
    kind = np.dtype(_dtype(dtype))
    shape = _list(shape)
    if len(shape) > 32 or any(type(size) is not int or size < 0 for size in shape):
        raise WireError("an array of an impossible shape")
    data = _buffer(buffers, index)
    if len(data) != kind.itemsize * int(np.prod(shape, dtype=np.int64)):
        raise WireError("an array whose bytes do not match its shape")
    return np.frombuffer(data, dtype=kind).reshape(shape).copy()  # a copy: writable, and owning its memory


# ------------------------------------------------------------------------------------------------ frames

def send(sock, message: dict, buffers: list = ()) -> None:
    text = json.dumps(message, separators=(",", ":"), allow_nan=False).encode()
    body = b"".join(struct.pack("!Q", len(part)) + part for part in buffers)
    sock.sendall(_HEADER.pack(len(text), len(body)) + text + body)


def receive(sock) -> tuple[dict, list]:
    """One message; ConnectionError when the other side has gone, WireError when it is not a message."""
    text_length, body_length = _HEADER.unpack(_exactly(sock, _HEADER.size))
    if text_length + body_length > MAX_FRAME:
        raise WireError(f"a message of {(text_length + body_length) // 2**20} MB, more than the "
                        f"{MAX_FRAME // 2**20} MB one answer may have")
    try:
        message = json.loads(_exactly(sock, text_length))
    except ValueError:
        raise WireError("a message that is not JSON") from None
    body, buffers = memoryview(_exactly(sock, body_length)), []
    while body:
        (length,) = struct.unpack("!Q", body[:8])
        if length > len(body) - 8:
            raise WireError("a message whose bytes are cut short")
        buffers.append(body[8:8 + length])
        body = body[8 + length:]
    if type(message) is not dict:
        raise WireError("a message that is not an object")
    return message, buffers


def _exactly(sock, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(min(size - len(data), 2**20))
        if not chunk:
            raise ConnectionError("the other side closed the connection")
        data += chunk
    return bytes(data)
