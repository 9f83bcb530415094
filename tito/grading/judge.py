"""The judge: a submission's locked tests, run in a trusted process of tito's, outside the sandbox.

A test is the lesson's own code (from the course's source, never from the submission). It runs here, in a
namespace holding NumPy and what earlier locked test cells defined (hidden test code included: what the
lesson gives the grader alone, such as a reference checker, is defined there). Every other name it uses is
looked up in the submission's kernel (tito/grading/kernel.py) and reached through a `Handle`: calls,
attributes, operators, indexing, iteration, `len`, `isinstance`, `with` on it are sent to the kernel, and what
comes back is plain data, copied (tito/grading/wire.py), or another handle. So assertions, expected values and
`np.allclose` run here, on data: no object, patched module or thread of the student's can reach them. The truth
of a handle is never taken (`bool` raises, `==` is identity, ordering is not defined): a test decides on data.
A function or object the test passes to student code stays here: the kernel may call it (or use a public
attribute of an object), and that runs here.

An array that comes back keeps a reference to the kernel's array, so that writing into it (`w.numpy()[0] = 1`)
writes there too, as it would in the student's notebook. A class the test defines on a class of the submission
(a `Module` that counts its calls, say) is made in the kernel, with methods that run here.

A test passes when its code ran to its end here without an error: nothing the kernel sends can make it pass.

Run as `python -m tito.grading.judge SOCKET TESTS SECONDS`, it reads one grade id a line on stdin, runs that
test, and writes its result as a line of JSON on stdout.
"""
from __future__ import annotations

import ast
import builtins
import collections
import contextlib
import functools
import io
import json
import linecache
import os
import select
import socket
import sys
import time
import traceback
import types
import warnings
import weakref

import numpy as np

from . import wire

PRINTED_CHARACTERS = 20_000  # of a test's own printout kept for its result


class Stop(BaseException):
    """The kernel cannot answer (gone, silent, or sending what is not a message): the test ends here, whatever
    it catches."""


ABORT = "abort"  # tito's word, between tests' names, when a test's cell ended in the kernel before the test did


class Commands:
    """tito's lines to the judge, on stdin: a test's name to run it, or ABORT during a test. Read from the file
    descriptor itself, so that `select` sees every line waiting."""

    def __init__(self, descriptor: int = 0):
        self.descriptor, self.pending = descriptor, b""

    def fileno(self) -> int:
        return self.descriptor

    def line(self) -> str | None:
        """The next line, waiting for it; None at the end."""
        while b"\n" not in self.pending:
            chunk = os.read(self.descriptor, 4096)
            if not chunk:
                return None
            self.pending += chunk
        line, self.pending = self.pending.split(b"\n", 1)
        return line.decode().strip()


class Judge:
    def __init__(self, path: str, seconds: float, commands: Commands):
        self.connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.connection.settimeout(seconds)
        self.connection.connect(path)
        self.seconds, self.commands = seconds, commands
        self.handles: weakref.WeakValueDictionary[int, Handle] = weakref.WeakValueDictionary()
        self.released: list[int] = []
        self.passed_in: dict[int, object] = {}  # functions and objects of a test that student code may call
        self.arrays: weakref.WeakValueDictionary[int, RemoteArray] = weakref.WeakValueDictionary()
        self.exception_classes: dict[int, type] = {}
        self.handle_classes: dict[object, type] = {}
        self.answered_method = False  # whether the last answer to a getattr was a method of the object asked
        self._kernel_numpy = None
        self.numpy = self._numpy_with_kernel_files()
        self.submission = SubmissionNames(self, {"open": self._open, "type": self._type, "globals": self._globals,
                                                 SET_GLOBAL: self.set_global})
        self.names = {"__builtins__": self.submission, "np": self.numpy, "numpy": self.numpy}

    def _open(self, *args, **kwargs):
        """`open` in a test opens a file of the kernel's (the sandbox's scratch)."""
        return self.ask("import", "builtins").open(*args, **kwargs)

    def _globals(self):
        """`globals()` in a test: the test's own names, then the notebook's (`globals()["exp"]`)."""
        return collections.ChainMap(self.names, self.submission)

    @staticmethod
    def _type(*args):
        """`type(x)`: for an object of the submission, its class there (`type(out) is Tensor`)."""
        if len(args) == 1 and isinstance(args[0], Handle):
            return args[0]._ask("type")
        return builtins.type(*args)

    # ------------------------------------------------------------------------------------ one test

    def run(self, name: str, source: str) -> dict:
        """Run one test's source; its result: completed or not, what it printed, its error."""
        filename = f"<{name}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        printed, error = io.StringIO(), None
        self.submission.looked_up.clear()
        try:
            with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
                exec(_compiled(source, filename), self.names)  # noqa: S102  (the lesson's own test)
        except BaseException as raised:  # noqa: B036  (a test that fails in any way has not passed)
            error = raised
        finally:
            self.submission.looked_up.clear()
        text = printed.getvalue()
        return {"completed": error is None, "printed": text[:PRINTED_CHARACTERS], "error": _described(error, filename)}

    def finish(self) -> None:
        """Tell the kernel the test is over, so that the cell serving it ends."""
        with contextlib.suppress(OSError):
            wire.send(self.connection, {"op": "done", "release": self._take_released()})

    # ------------------------------------------------------------------------------------ requests

    def ask(self, operation: str, *args):
        """What the kernel answers to `operation` on `args` (handles and data)."""
        form, buffers = wire.encode(list(args), self.refer, arrays=_ARRAYS)
        message = {"op": operation, "args": form, "release": self._take_released()}
        if np.geterr() != _NUMPY_DEFAULT_ERRORS:  # a test's np.errstate holds for the code it calls
            message["errstate"] = np.geterr()
        self.send(message, buffers)
        return self.answer()

    def send(self, message: dict, buffers: list = ()) -> None:
        try:
            wire.send(self.connection, message, buffers)
        except OSError as error:
            raise Stop(f"the submission's kernel is gone ({error.__class__.__name__})") from None

    def answer(self):
        """Wait for the kernel's answer, running the test's functions it calls meanwhile."""
        while True:
            message, buffers = self.receive()
            kind = message.get("op")
            if kind == "value":
                self.answered_method = message.get("method") is True
                value = self.decode(message.get("value"), buffers)
                _warn_again(message.get("warnings"))
                module = message.get("module")
                return self.module(module, value) if type(module) is str else value
            if kind == "error":
                raise _student_error(message, self.decode, self.exception_class(message.get("class")))
            if kind == "call":
                self.call_from_kernel(message, buffers)
            elif kind == "closed":
                raise Stop("the submission's kernel stopped answering the judge")
            else:
                raise Stop(f"the submission's kernel sent {str(kind)[:40]!r}, not an answer")

    def receive(self) -> tuple[dict, list]:
        ready, _, _ = select.select([self.connection, self.commands], [], [], self.seconds)
        if self.commands in ready and self.commands.line() == ABORT:
            raise Stop("the test's cell ended in the submission's kernel without serving the test")
        if self.connection not in ready:
            raise Stop(f"the submission's code did not answer within {self.seconds:.0f} s")
        try:
            return wire.receive(self.connection)
        except socket.timeout:
            raise Stop(f"the submission's code did not answer within {self.seconds:.0f} s") from None
        except (ConnectionError, OSError):
            raise Stop("the submission's kernel is gone (it ended, or crashed)") from None
        except wire.WireError as error:
            raise Stop(f"the submission's kernel sent what is not an answer: {error}") from None

    def call_from_kernel(self, message: dict, buffers: list) -> None:
        """Student code called a function the test passed it, or used a public attribute of an object the test
        passed it: do it here."""
        try:
            target, args = self.passed_in[message["target"]], self.decode(message.get("args"), buffers)
            action = message.get("action")
            if action == "call" and callable(target):
                positional, named = args
                result = target(*positional, **named)
            elif (action in ("getattr", "setattr") and not isinstance(target, (*_FUNCTIONS, types.ModuleType))
                  and not str(args[0]).startswith("_")):
                result = self.offered(target, args[0]) if action == "getattr" else setattr(target, *args)
            else:
                raise TypeError(f"the test's {type(target).__name__} does not allow {str(action)[:20]}")
            form, out = wire.encode(result, self.refer, arrays=_ARRAYS)
            self.send({"op": "return", "value": form, "release": self._take_released()}, out)
        except Stop:
            raise
        except BaseException as error:  # noqa: B036  (the test's function failed: student code sees the error)
            self.send({"op": "raise", "type": wire.builtin_base(type(error)), "message": str(error)[:10_000]})

    def offered(self, target, name: str):
        """What student code may read of an object a test passed it: a public attribute that is data (copied) or
        a handle, or a method of that very object (to call). Never another object of the judge's: from a random
        generator, `rng.bit_generator.ctypes` would reach C function pointers and the memory of this process."""
        value = getattr(target, name)
        if not isinstance(value, Handle) and callable(value) and getattr(value, "__self__", None) is target:
            return value

        def refuse(part):
            if isinstance(part, Handle):
                return self.refer(part)
            raise TypeError(f"the test's {type(target).__name__} offers student code its data and methods, not its "
                            f"{name} (a {type(part).__name__})")

        wire.encode(value, refuse, arrays=_ARRAYS)
        return value

    # ------------------------------------------------------------------------------------ references

    def refer(self, value) -> dict:
        """How a value of the test that is not plain data is sent: a handle as its kernel object; a function or
        class of the test as a function the kernel may only call; anything else as an object whose public
        attributes it may read, set and call (a module's are closed to it)."""
        if isinstance(value, MethodCall):
            value = value.method()
        if isinstance(value, Handle):
            return {"n": object.__getattribute__(value, "_number")}
        if isinstance(value, type) and KERNEL_CLASS in vars(value):  # the judge's class for a student exception
            return self.refer(vars(value)[KERNEL_CLASS])
        number = len(self.passed_in) + 1  # kept for the whole notebook: a class made in the kernel calls them later
        self.passed_in[number] = value
        if isinstance(value, _FUNCTIONS):
            return {"function": number, "name": str(getattr(value, "__name__", "fn"))[:100]}
        return {"object": number, "type": type(value).__name__}

    def resolve(self, ref):
        if type(ref) is not dict or type(ref.get("n")) is not int or type(ref.get("type")) is not str:
            raise wire.WireError("a malformed reference")
        if ref.get("exception"):
            return self.exception_class(ref)
        number = ref["n"]
        with contextlib.suppress(ValueError):
            self.released.remove(number)  # sent again before its release went out: the kernel still holds it
        handle = self.handles.get(number)
        if handle is None:
            handle = self.handle_class(ref)(self, number)
            self.handles[number] = handle
        return handle

    def handle_class(self, ref: dict) -> type:
        """A Handle subclass for each class of the kernel, named after it, so that messages say "a Tensor"; it
        remembers which of the class's attributes are methods."""
        kind = ref.get("class") if type(ref.get("class")) is int else ref["type"]
        if kind not in self.handle_classes:
            self.handle_classes[kind] = type(ref["type"][:100], (Handle,), {"__slots__": (), "_methods": set()})
        return self.handle_classes[kind]

    def decode(self, form, buffers: list):
        return wire.decode(form, buffers, self.resolve, attach=self.attach)

    def exception_class(self, ref) -> type | None:
        """The judge's own class for an exception class of the submission, made once: it derives from the same
        builtin exception (and from the judge's class for its parent), so `except IDXError` in a test catches
        what student code raised."""
        if type(ref) is not dict or type(ref.get("exception")) is not dict or type(ref.get("n")) is not int:
            return None
        if ref["n"] not in self.exception_classes:
            about = ref["exception"]
            base = self.exception_class(about.get("parent")) or getattr(builtins, str(about.get("base")), None)
            if not (isinstance(base, type) and issubclass(base, Exception)):
                base = Exception
            kernel_class = self.resolve({"n": ref["n"], "type": "type"})
            self.exception_classes[ref["n"]] = type(str(about.get("name", "Error"))[:100], (base,),
                                                    {KERNEL_CLASS: kernel_class})
        return self.exception_classes[ref["n"]]

    def attach(self, array: np.ndarray, owner: Handle) -> np.ndarray:
        """The array the kernel sent, which writes through to `owner`, the kernel's own; the same object each
        time the kernel sends the same array while the test holds it (`x.numpy() is x.numpy()`)."""
        number = object.__getattribute__(owner, "_number")
        known = self.arrays.get(number)
        if known is not None and known.shape == array.shape and known.dtype == array.dtype:
            np.ndarray.__setitem__(known, ..., array)  # its values now, without writing back
            return known
        remote = array.view(RemoteArray)
        remote._owner = owner
        self.arrays[number] = remote
        return remote

    def release(self, number: int) -> None:
        self.released.append(number)

    def _take_released(self) -> list[int]:
        released, self.released = self.released, []
        return released

    def name(self, name: str):
        try:
            return self.ask("name", name)
        except NameError:
            raise NameError(f"name '{name}' is not defined in the submission") from None

    def module(self, name: str, handle):
        own = _own_copy(name)
        if own is np:
            return self.numpy
        return handle if own is None else own

    def set_global(self, name: str, value) -> None:
        """`global NAME; NAME = value` in a test: the notebook's name, as in the student's notebook."""
        self.ask("setname", name, value)
        self.submission.looked_up.pop(name, None)

    def kernel_numpy(self):
        if self._kernel_numpy is None:
            self._kernel_numpy = self.ask("import", "numpy")
        return self._kernel_numpy

    def _numpy_with_kernel_files(self):
        """NumPy for the tests: the judge's, but for the functions that read or write files, the kernel's."""
        copy = _TestNumpy("numpy")
        copy.__dict__.update({name: value for name, value in np.__dict__.items() if name not in NUMPY_FILE_FUNCTIONS})
        copy.__dict__["_kernel_numpy"] = self.kernel_numpy
        return copy


# Modules whose subject is the process or its files: a test uses the kernel's, so that it looks at the student's
# process (tracemalloc, gc) and at the files student code sees (the sandbox's scratch), never at the judge's.
KERNEL_MODULES = {"os", "pathlib", "tempfile", "shutil", "glob", "gzip", "bz2", "lzma", "zipfile", "tarfile", "io",
                  "pickle", "csv", "sys", "gc", "tracemalloc", "resource"}
# NumPy's functions that read or write files, which a test reaches in the kernel for the same reason.
NUMPY_FILE_FUNCTIONS = ("load", "save", "savez", "savez_compressed", "loadtxt", "savetxt", "genfromtxt", "fromfile",
                        "memmap")
_NUMPY_DEFAULT_ERRORS = np.geterr()


def _own_copy(module: str):
    """The judge's own copy of a module the kernel names: NumPy, or a module of the standard library other than
    KERNEL_MODULES, which the judge has loaded itself; None for any other (the student's package, a module the
    judge has not loaded), which stays a handle. It never imports a module on the kernel's word: some run code
    when imported (`antigravity` starts a web browser). A test that needs another module imports it itself."""
    top = module.split(".")[0]
    if top == "numpy" or (top in sys.stdlib_module_names and top not in KERNEL_MODULES):
        return sys.modules.get(module)
    return None


class _TestNumpy(types.ModuleType):
    """NumPy as a test sees it: the judge's own, but its file functions are the kernel's, read and set there
    (`np.savez = crash_midway` reaches student code that saves)."""

    def __getattr__(self, name: str):
        if name in NUMPY_FILE_FUNCTIONS:
            return getattr(self.__dict__["_kernel_numpy"](), name)
        raise AttributeError(f"module 'numpy' has no attribute '{name}'")

    def __setattr__(self, name: str, value) -> None:
        if name in NUMPY_FILE_FUNCTIONS:
            setattr(self.__dict__["_kernel_numpy"](), name, value)
        else:
            super().__setattr__(name, value)


class SubmissionNames(dict):
    """The test's builtins: Python's, a few of the judge's (`open`, `type`), then every name of the submission,
    looked up in its kernel once per test. Python looks here for any name the test has not bound itself,
    class bodies included."""

    def __init__(self, judge: Judge, own: dict):
        super().__init__({**builtins.__dict__, **own})
        self.judge = judge
        self.looked_up: dict = {}

    def __missing__(self, name: str):
        if name not in self.looked_up:
            self.looked_up[name] = self.judge.name(name)
        return self.looked_up[name]


SET_GLOBAL = "__tito_set_global__"
KERNEL_CLASS = "__tito_kernel_class__"  # in the judge's class for a student exception class: the kernel's class


class _NotebookGlobals(ast.NodeTransformer):
    """`global NAME` in a test function means the student's notebook's NAME: an assignment to it is sent to the
    kernel (`NAME = value` becomes `__tito_set_global__("NAME", value)`), and reading it looks it up there."""

    def visit_FunctionDef(self, node):
        declared = {name for statement in ast.walk(node) if isinstance(statement, ast.Global) for name in statement.names}
        self.generic_visit(node)
        if declared:
            node.body = [self._sent(statement, declared) for statement in node.body]
            for statement in ast.walk(node):
                for field in ("body", "orelse", "finalbody"):
                    if isinstance(getattr(statement, field, None), list):
                        setattr(statement, field, [self._sent(part, declared) for part in getattr(statement, field)])
        return node

    visit_AsyncFunctionDef = visit_FunctionDef

    @staticmethod
    def _sent(statement, declared: set):
        if (isinstance(statement, ast.Assign) and len(statement.targets) == 1
                and isinstance(statement.targets[0], ast.Name) and statement.targets[0].id in declared):
            call = ast.Call(ast.Name(SET_GLOBAL, ast.Load()), [ast.Constant(statement.targets[0].id), statement.value], [])
            return ast.copy_location(ast.Expr(call), statement)
        return statement


@functools.lru_cache(maxsize=None)
def _compiled(source: str, filename: str):
    tree = ast.fix_missing_locations(_NotebookGlobals().visit(ast.parse(source, filename)))
    return compile(tree, filename, "exec")


def _warn_again(caught) -> None:
    """Warnings student code gave while it answered, given again here, where a test may catch them."""
    for kind, text in caught if type(caught) is list else []:
        category = getattr(builtins, str(kind), None)
        if isinstance(category, type) and issubclass(category, Warning):
            warnings.warn(str(text), category, stacklevel=3)


# ---------------------------------------------------------------------------------------------- handles

class Handle:
    """An object of the submission's kernel, seen from the judge: every operation on it is sent there."""

    __slots__ = ("_judge", "_number", "__weakref__")
    __array_ufunc__ = None  # NumPy hands `array + handle` to the handle's own operator, as for a Tensor

    def __init__(self, judge: Judge, number: int):
        object.__setattr__(self, "_judge", judge)
        object.__setattr__(self, "_number", number)

    def __del__(self):
        with contextlib.suppress(Exception):
            object.__getattribute__(self, "_judge").release(object.__getattribute__(self, "_number"))

    def _ask(self, operation: str, *args):
        return object.__getattribute__(self, "_judge").ask(operation, self, *args)

    def __getattribute__(self, name: str):
        if name in _HANDLE_OWN:
            return object.__getattribute__(self, name)
        if name.startswith(_PROBES):
            raise AttributeError(name)  # NumPy's, IPython's and copy's probes: a handle is none of those
        methods = type(self)._methods
        if name in methods:
            return MethodCall(self, name)  # read and called in one request
        value = self._ask("getattr", name)  # `Node.__hash__` too: the kernel's, not the handle's
        if object.__getattribute__(self, "_judge").answered_method:
            methods.add(name)
        return value

    def __setattr__(self, name: str, value) -> None:
        self._ask("setattr", name, value)

    def __delattr__(self, name: str) -> None:
        self._ask("delattr", name)

    def __call__(self, *args, **kwargs):
        return self._ask("call", list(args), kwargs)

    def __mro_entries__(self, bases):
        return (_KernelSubclass,)

    def __instancecheck__(self, value) -> bool:
        return _plain(self._judge_ask_on("isinstance", value, self), bool, "isinstance")

    def __subclasscheck__(self, value) -> bool:
        return _plain(self._judge_ask_on("issubclass", value, self), bool, "issubclass")

    def _judge_ask_on(self, operation: str, *args):
        return object.__getattribute__(self, "_judge").ask(operation, *args)

    # What a test may decide on is data: a handle's truth and equality are not the submission's to say.
    def __bool__(self):
        raise TypeError(f"the grader does not take the truth of a {type(self).__name__} of the submission; "
                        f"a test compares its data")

    def __eq__(self, other):
        return self is other

    def __ne__(self, other):
        return self is not other

    def __hash__(self):
        return hash(("handle", object.__getattribute__(self, "_number")))

    def __format__(self, spec: str):
        return _plain(self._ask("format", spec), str, "format")

    def __iter__(self):
        return self._ask("iter")

    def __next__(self):
        return self._ask("next")

    def __getitem__(self, key):
        return self._ask("getitem", key)

    def __setitem__(self, key, value):
        self._ask("setitem", key, value)

    def __delitem__(self, key):
        self._ask("delitem", key)

    def __contains__(self, item):
        return _plain(self._ask("contains", item), bool, "in")

    def __enter__(self):
        return self._ask("enter")

    def __exit__(self, *error):
        self._ask("exit")
        return False  # an error of the test is never the submission's to swallow

    def __array__(self, dtype=None, copy=None):
        value = self._ask("array")
        if not isinstance(value, np.ndarray):
            raise TypeError(f"np.asarray of a {type(self).__name__} of the submission did not give a numeric array")
        return value.astype(dtype, copy=False) if dtype is not None else value

    def __neg__(self):
        return self._ask("neg")

    def __pos__(self):
        return self._ask("pos")

    def __abs__(self):
        return self._ask("abs")

    def __invert__(self):
        return self._ask("invert")


_HANDLE_OWN = {"_judge", "_number", "_ask", "_judge_ask_on", "__class__", "__mro_entries__", "__array__",
               "__array_ufunc__"}
_PROBES = ("__array", "_repr_", "__copy", "__deepcopy", "__getstate", "__setstate", "__reduce", "__length_hint",
           "__fspath__", "__dict__", "__weakref__")


def _operator(name: str):
    def operator(self, other):
        return self._ask("operator", name, other)
    operator.__name__ = name
    return operator


for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor", "lshift",
              "rshift"):
    for _form in (f"__{_name}__", f"__r{_name}__", f"__i{_name}__"):
        setattr(Handle, _form, _operator(_form))


def _conversion(operation: str, kind: type):
    def conversion(self):
        return _plain(self._ask(operation), kind, operation)
    conversion.__name__ = f"__{operation}__"
    return conversion


# What Python asks of an object to convert it: answered by the kernel, and refused unless of the very type asked.
for _name, _kind in {"len": int, "index": int, "int": int, "float": float, "complex": complex, "repr": str,
                     "str": str}.items():
    setattr(Handle, f"__{_name}__", _conversion(_name, _kind))


def _plain(value, kind: type, what: str):
    if type(value) is not kind and not (kind is float and type(value) is int):
        raise TypeError(f"{what} of an object of the submission gave a {type(value).__name__}, not a {kind.__name__}")
    return value


class MethodCall:
    """`handle.name`, where the kernel said before that `name` is a method of objects of this class: calling it
    is one request (the kernel reads the method and calls it); anything else reads the method first."""

    __slots__ = ("_owner", "_name", "_method")

    def __init__(self, owner: Handle, name: str):
        self._owner, self._name, self._method = owner, name, None

    def __call__(self, *args, **kwargs):
        return self._owner._ask("callmethod", self._name, list(args), kwargs)

    def method(self):
        if self._method is None:
            self._method = self._owner._ask("getattr", self._name)
        return self._method

    def __getattr__(self, name: str):
        return getattr(self.method(), name)

    def __repr__(self):
        return repr(self.method())


class _KernelSubclassMeta(type):
    """`class Spy(Module): ...` in a test, where Module is the submission's: the class is made in the kernel,
    with the test's methods, which run here."""

    def __new__(mcs, name, bases, namespace):
        if "__orig_bases__" not in namespace:  # _KernelSubclass itself
            return super().__new__(mcs, name, bases, namespace)
        members = []
        for member, value in namespace.items():
            if member in ("__orig_bases__", "__classcell__", "__module__", "__qualname__"):
                continue
            if isinstance(value, property):
                members.append([member, "property", [value.fget, value.fset, value.fdel]])
            elif isinstance(value, (staticmethod, classmethod)):
                members.append([member, type(value).__name__, value.__func__])
            else:
                members.append([member, "value", value])
        kernel_bases = list(namespace["__orig_bases__"])
        judge = next(object.__getattribute__(base, "_judge") for base in kernel_bases if isinstance(base, Handle))
        made = judge.ask("class", name, kernel_bases, members)
        if "__classcell__" in namespace:
            namespace["__classcell__"].cell_contents = made
        return made


class _KernelSubclass(metaclass=_KernelSubclassMeta):
    pass


class RemoteArray(np.ndarray):
    """An array the kernel sent, which writes through to the kernel's own array: item assignment (`a[i] = v`,
    `a[...] += v`) changes both."""

    _owner = None

    def __array_finalize__(self, parent):
        self._owner = None  # an array computed from it, or a view of it, is the judge's own

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        if self._owner is not None:
            self._owner[key] = np.asarray(self[key]).view(np.ndarray)

    def __repr__(self):
        return repr(self.view(np.ndarray))


def _in_place(name: str):
    def operator(self, other):
        result = getattr(np.ndarray, name)(self, other)
        if self._owner is not None:
            self._owner[...] = self.view(np.ndarray)
        return result
    operator.__name__ = name
    return operator


for _name in ("__iadd__", "__isub__", "__imul__", "__itruediv__", "__ifloordiv__", "__ipow__", "__imod__"):
    setattr(RemoteArray, _name, _in_place(_name))

_ARRAYS = (np.ndarray, RemoteArray)  # the array types the judge sends by value
# What the judge passes to student code as a function it may only call; any other object of a test may also
# have its public attributes read and set.
_FUNCTIONS = (types.FunctionType, types.BuiltinFunctionType, types.MethodType, type, functools.partial, np.ufunc)


# ---------------------------------------------------------------------------------------------- errors

def _student_error(message: dict, decode, kind: type | None) -> Exception:
    """The error student code raised: as the judge's class for its class (`exception_class`), or as the builtin
    exception it derives from; with its traceback as a note."""
    kinds = message.get("types") if type(message.get("types")) is list else []
    kind = kind or next((getattr(builtins, name) for name in kinds if type(name) is str and _is_exception(name)),
                        RuntimeError)
    text = str(message.get("message", ""))[:10_000]
    try:
        args = decode(message["args"], []) if message.get("args") is not None else (text,)
        error = kind(*args)
    except Exception:  # arguments the builtin type does not take
        error = kind(text)
    where = str(message.get("traceback", ""))[:20_000]
    if where:
        error.add_note(f"raised in the submission's code:\n{where}")
    return error


def _is_exception(name: str) -> bool:
    kind = getattr(builtins, name, None)
    return isinstance(kind, type) and issubclass(kind, BaseException)


def _described(error: BaseException | None, filename: str) -> dict | None:
    """A test's error as a notebook shows one: name, message and the traceback through the test's own lines."""
    if error is None:
        return None
    frames = [frame for frame in traceback.extract_tb(error.__traceback__) if frame.filename == filename]
    lines = ["Traceback (most recent call last):\n", *traceback.format_list(frames)]
    lines += traceback.format_exception_only(type(error), error)
    name = type(error).__name__ if not isinstance(error, Stop) else "TestNotCompleted"
    return {"ename": name, "evalue": str(error)[:10_000], "traceback": ["".join(lines)[:40_000]]}


# ---------------------------------------------------------------------------------------------- the process

def main(arguments: list[str]) -> int:
    socket_path, tests_file, seconds = arguments
    with open(tests_file, encoding="utf-8") as file:
        tests = json.load(file)
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    commands, judge = Commands(), None
    while (name := commands.line()) is not None:
        if name not in tests:
            continue  # an ABORT that came after its test had ended
        started = time.perf_counter()
        try:
            if judge is None:
                judge = Judge(socket_path, float(seconds), commands)
            result = judge.run(name, tests[name])
        except Exception as error:  # the judge could not reach the kernel: the test did not pass
            result = {"completed": False, "printed": "", "error": _described(Stop(f"the judge could not run "
                                                                                 f"{name}: {error}"), "")}
        result["seconds"] = time.perf_counter() - started
        out.write(json.dumps({"grade_id": name, **result}) + "\n")  # before the kernel hears the test is over
        out.flush()
        stopped = (result["error"] or {}).get("ename") == "TestNotCompleted"
        if judge is not None and not stopped:  # a kernel that stopped serving must not find "done" at its next test
            judge.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
