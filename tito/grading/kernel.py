"""The kernel that runs a submission inside the grading sandbox: ipykernel's kernel, answering the judge.

This file is copied, read-only, into the grader folder and loaded by ipykernel (`--IPKernelApp.kernel_class`);
it imports nothing from tito but `grading_wire` (tito/grading/wire.py, copied beside it).

It has no part in any verdict. A test runs in tito's judge (tito/grading/judge.py), outside the sandbox. For each
locked test cell tito has this kernel run `get_ipython().kernel.answer_judge()`, which serves the judge's
requests on a unix socket until the judge is done with that test: look up a name of the notebook, read or set an
attribute, call, apply an operator, index, iterate, ask `isinstance`, on the objects of the student's code. The
answer is plain data, copied, or a reference to an object that stays here (grading_wire). When student code
calls a function the test passed in, this kernel asks the judge to run it, and serves the judge's requests
until its answer comes back.

A submission can change all of this, since it runs in this process: it can then only answer wrongly, which
fails its own tests.
"""
import builtins
import importlib
import os
import socket
import traceback
import types
import warnings

import numpy as np
from ipykernel.ipkernel import IPythonKernel

import grading_wire as wire

# The operations a judge may ask for on an object, besides attributes and calls.
_OPERATIONS = {
    "len": len, "iter": iter, "next": next, "repr": repr, "str": str, "format": format, "float": float,
    "int": int, "complex": complex, "index": lambda value: value.__index__(), "array": np.asarray,
    "neg": lambda value: -value, "pos": lambda value: +value, "abs": abs, "invert": lambda value: ~value,
    "getitem": lambda value, key: value[key], "contains": lambda value, item: item in value,
    "setitem": lambda value, key, item: value.__setitem__(key, item),
    "delitem": lambda value, key: value.__delitem__(key),
    "isinstance": isinstance, "issubclass": issubclass, "type": type,
    "enter": lambda value: type(value).__enter__(value),
    "exit": lambda value: type(value).__exit__(value, None, None, None),
}
_LONGEST_TEXT = 100_000  # characters of a message or repr sent back


class GradingKernel(IPythonKernel):
    implementation = "tito-grading"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._judge = JudgeLink(os.environ["TITO_JUDGE_SOCKET"], self.shell.user_ns)

    def answer_judge(self) -> None:
        """Serve the judge's requests until it has finished the test it is running."""
        self._judge.serve()

    async def do_execute(self, *args, **kwargs):
        reply = await super().do_execute(*args, **kwargs)
        if self.shell.exit_now:  # exit() would end the kernel at some later moment: end it here, every time
            os._exit(0)
        return reply


class JudgeLink:
    """The judge's connection, and the objects it holds references to (by number)."""

    def __init__(self, path: str, namespace: dict):
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(1)
        self.connection = None
        self.namespace = namespace
        self.objects: dict[int, object] = {}
        self.numbers: dict[int, int] = {}  # id(object) -> its number, while the judge holds it
        self.next_number = 1

    def serve(self) -> None:
        if self.connection is None:
            self.connection, _ = self.listener.accept()
        try:
            while self.until_answered()[0].get("op") != "done":
                pass  # an answer to no call of ours
        except BaseException:
            wire.send(self.connection, {"op": "closed"})
            raise

    def until_answered(self):
        """Answer requests until the judge says it is done, or answers a call of ours: that message."""
        while True:
            message, buffers = wire.receive(self.connection)
            for number in message.get("release", []):
                self.numbers.pop(id(self.objects.pop(number, None)), None)
            if message.get("op") in ("done", "return", "raise"):
                return message, buffers
            self.answer(message, buffers)

    def answer(self, message: dict, buffers: list) -> None:
        reply, out = {"op": "value"}, []
        try:
            with warnings.catch_warnings(record=True) as caught, np.errstate(**_errstate(message)):
                warnings.simplefilter("always")
                args = self.decode(message.get("args", {"list": []}), buffers)
                result = self.perform(message, args)
            if message.get("op") == "name" and isinstance(result, types.ModuleType):
                reply["module"] = result.__name__
            if message.get("op") == "getattr" and _is_method_of(result, args[0]):
                reply["method"] = True  # the judge may then call it in one request ("callmethod") next time
            reply["value"], out = wire.encode(result, self.refer, refer_arrays=True)
            reply["warnings"] = [[wire.builtin_base(type(caught_warning.message)), _short(str(caught_warning.message))]
                                 for caught_warning in caught[:100]]
        except BaseException as error:  # whatever student code raised is the judge's to see
            reply, out = self.error(error), []
        wire.send(self.connection, reply, out)

    def perform(self, message: dict, args: list):
        kind = message.get("op")
        if kind == "name":
            if args[0] not in self.namespace:
                raise NameError(f"name '{args[0]}' is not defined")
            return self.namespace[args[0]]
        if kind == "setname":  # a test's `global` name: the notebook's
            self.namespace[args[0]] = args[1]
            return None
        if kind == "import":
            return importlib.import_module(args[0])
        target, rest = args[0], args[1:]
        if kind == "getattr":
            return getattr(target, *rest)
        if kind == "setattr":
            return setattr(target, *rest)
        if kind == "delattr":
            return delattr(target, *rest)
        if kind == "call":
            positional, named = rest
            return target(*positional, **named)
        if kind == "callmethod":
            name, positional, named = rest
            return getattr(target, name)(*positional, **named)
        if kind == "class":
            return _subclass(target, *rest)
        if kind == "operator":
            name, *operands = rest
            method = getattr(type(target), name, None)
            return NotImplemented if method is None else method(target, *operands)
        if kind in _OPERATIONS:
            return _OPERATIONS[kind](target, *rest)
        raise ValueError(f"the judge asked for an unknown operation {kind!r}")

    # ------------------------------------------------------------------------------------ references

    def refer(self, value) -> dict:
        ref = {"n": self.number(value), "type": type(value).__name__[:100], "class": self.number(type(value))}
        if isinstance(value, type) and issubclass(value, BaseException) and value.__module__ != "builtins":
            # an exception class of the submission: the judge makes a class of its own to catch it by
            ref["exception"] = {"name": value.__name__[:100], "base": wire.builtin_base(value),
                                "parent": next((self.refer(base) for base in value.__mro__[1:]
                                                if base.__module__ != "builtins"), None)}
        return ref

    def number(self, value) -> int:
        """The number the judge knows `value` by, given now if it has none."""
        number = self.numbers.get(id(value))
        if number is None or self.objects.get(number) is not value:
            number, self.next_number = self.next_number, self.next_number + 1
            self.objects[number], self.numbers[id(value)] = value, number
        return number

    def resolve(self, ref):
        if type(ref) is not dict:
            raise wire.WireError("a malformed reference")
        if "n" in ref:
            if ref["n"] not in self.objects:
                raise wire.WireError("a reference to an object the judge had released")
            return self.objects[ref["n"]]
        if "function" in ref:
            return JudgeFunction(self, ref["function"], str(ref.get("name", "fn")))
        if "object" in ref:
            return JudgeObject(self, ref["object"], str(ref.get("type", "object")))
        raise wire.WireError("a malformed reference")

    def decode(self, form, buffers: list):
        return wire.decode(form, buffers, self.resolve)

    def error(self, error: BaseException) -> dict:
        try:
            arguments, _ = wire.encode(error.args, _refuse)
        except Exception:  # arguments that are not plain data: the judge gets the message alone
            arguments = None
        return {"op": "error", "types": [kind.__name__ for kind in type(error).__mro__ if kind.__module__ == "builtins"],
                "class": self.refer(type(error)) if type(error).__module__ != "builtins" else None,
                "args": arguments, "message": _short(_text(error)), "traceback": _short(_traceback(error))}

    def call_judge(self, number: int, action: str, *args):
        """Have the judge call its function `number` (`action` "call", with args and kwargs), or read or set an
        attribute of its object `number` ("getattr", "setattr"); serve its requests until it answers."""
        form, out = wire.encode(list(args), self.refer, refer_arrays=True)
        wire.send(self.connection, {"op": "call", "target": number, "action": action, "args": form}, out)
        message, buffers = self.until_answered()
        if message["op"] == "return":
            return self.decode(message.get("value"), buffers)
        kind = getattr(builtins, str(message.get("type")), None)
        kind = kind if isinstance(kind, type) and issubclass(kind, BaseException) else RuntimeError
        raise kind(str(message.get("message", "")))


class JudgeFunction:
    """A function a test passed to student code: calling it runs it in the judge. It offers nothing else."""

    def __init__(self, link: JudgeLink, number: int, name: str):
        self._link, self._number, self.__name__ = link, number, name

    def __call__(self, *args, **kwargs):
        return self._link.call_judge(self._number, "call", list(args), kwargs)

    def __repr__(self):
        return f"<the test's function {self.__name__}>"


    def __get__(self, instance, owner=None):  # a method of a class the test defined
        return self if instance is None else types.MethodType(self, instance)


class JudgeObject:
    """Another object of the test (a random generator, a stand-in for an optimizer): student code may read and
    set its public attributes and call it and its public methods, in the judge; an attribute that is neither data
    nor a method of that object (`rng.bit_generator`) is refused."""

    def __init__(self, link: JudgeLink, number: int, kind: str):
        object.__setattr__(self, "_judge", (link, number, kind))

    def __getattr__(self, name: str):
        link, number, kind = object.__getattribute__(self, "_judge")
        if name.startswith("_"):
            raise AttributeError(f"the test's {kind} offers only its public attributes, not {name}")
        return link.call_judge(number, "getattr", name)

    def __setattr__(self, name: str, value) -> None:
        link, number, kind = object.__getattribute__(self, "_judge")
        if name.startswith("_"):
            raise AttributeError(f"the test's {kind} offers only its public attributes, not {name}")
        link.call_judge(number, "setattr", name, value)

    def __call__(self, *args, **kwargs):
        link, number, _ = object.__getattribute__(self, "_judge")
        return link.call_judge(number, "call", list(args), kwargs)

    def __repr__(self):
        return f"<the test's {object.__getattribute__(self, '_judge')[2]}>"


def _subclass(name: str, bases: list, members: list):
    """A class the test defines on a class of the submission: made here, its methods running in the judge."""
    namespace = {}
    for member, kind, value in members:
        if kind == "property":
            value = property(*value)
        elif kind in ("staticmethod", "classmethod"):
            value = getattr(builtins, kind)(value)
        namespace[member] = value
    return types.new_class(name, tuple(bases), exec_body=lambda body: body.update(namespace))


_METHODS = (types.MethodType, types.BuiltinMethodType, types.MethodWrapperType)


def _is_method_of(value, owner) -> bool:
    return isinstance(value, _METHODS) and getattr(value, "__self__", None) is owner


def _errstate(message: dict) -> dict:
    """The judge's NumPy error handling, for the operation it asks for (`np.errstate` in a test)."""
    state = message.get("errstate") or {}
    return {key: value for key, value in state.items()
            if key in ("divide", "over", "under", "invalid") and value in ("ignore", "warn", "raise", "print")}


def _refuse(value):
    raise TypeError("not plain data")


def _text(error: BaseException) -> str:
    try:
        return str(error)
    except Exception:  # a student's exception whose __str__ fails
        return f"<{type(error).__name__} that cannot be shown>"


def _short(text: str) -> str:
    return text if len(text) <= _LONGEST_TEXT else text[:_LONGEST_TEXT] + " ..."


def _traceback(error: BaseException) -> str:
    frames = traceback.extract_tb(error.__traceback__)
    kept = [frame for frame in frames if frame.filename != __file__ and "grading_wire" not in frame.filename]
    return "".join(traceback.format_list(kept))
