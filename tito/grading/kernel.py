"""The kernel that runs a submission inside the grading sandbox: ipykernel's kernel with the grader's hand on tests.

This file is copied, read-only, into the sandbox and loaded by ipykernel (`--IPKernelApp.kernel_class`); it
imports nothing from tito. tito sends each locked cell (a test, or given code) as one line,
`#tito-locked <grade id> <token>`, never as the notebook's text. For such a line the kernel:

1. puts back what a student's code may have changed to fool a test: IPython's input and AST transformers and
   event hooks, builtins, sys hooks, the attributes of numpy and of the reference tinytorch, and every name an
   earlier locked cell defined (a reference checker, a test helper);
2. runs the cell's own source, read from the grader's read-only copy of the lesson;
3. reports, as a display message tito looks for, whether the cell's last line was reached without an error.

A point is awarded only on that report, never on the mere absence of an error. All of this runs in the
student's process, so it stops generic tricks (an emptied cell, a patched `np.allclose`, a redefined checker),
not an attacker who studies this file: tito also flags solution code that reaches for this machinery.
"""
import builtins
import json
import os
import secrets
import sys

from ipykernel.ipkernel import IPythonKernel

LOCKED_PREFIX = "#tito-locked "
VERDICT_MIME = "application/vnd.tito.verdict+json"
# The call appended to each test to see it run to its last line; feedback shows tracebacks without it.
END_MARKER = "_tito_reached_end_"
# Modules whose attributes a test relies on; snapshotted before any student code runs.
GUARDED_PACKAGES = ("numpy", "tinytorch")


def _guarded_modules() -> dict:
    return {name: module for name, module in list(sys.modules.items())
            if module is not None and name.split(".")[0] in GUARDED_PACKAGES}


class GradingKernel(IPythonKernel):
    implementation = "tito-grading"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        with open(os.environ["TITO_LOCKED_CELLS"], encoding="utf-8") as file:
            self._locked_sources = json.load(file)
        self._import_guarded()
        self._clean = self._snapshot()
        self._locked_names: dict = {}

    # ------------------------------------------------------------------------------ the clean state

    def _import_guarded(self) -> None:
        import numpy  # noqa: F401  (imported here so that its clean state is the one restored)
        import numpy.linalg  # noqa: F401
        import numpy.random  # noqa: F401
        reference = os.environ.get("TITO_REFERENCE_MODULES", "")
        for name in filter(None, reference.split(",")):
            try:
                __import__(name)
            except Exception:  # a reference module that cannot load fails where the notebook imports it
                pass

    def _snapshot(self) -> dict:
        shell = self.shell
        return {
            "builtins": dict(builtins.__dict__),
            "modules": {name: (module, dict(vars(module))) for name, module in _guarded_modules().items()},
            "cleanup": list(shell.input_transformers_cleanup),
            "post": list(shell.input_transformers_post),
            "ast": list(shell.ast_transformers),
            "events": {name: list(callbacks) for name, callbacks in shell.events.callbacks.items()},
            "sys": {name: getattr(sys, name) for name in ("excepthook", "displayhook", "stdout", "stderr")},
            "meta_path": list(sys.meta_path),
            "overrides": {owner: _method_overrides(owner) for owner in (shell, self)},
        }

    def _restore(self) -> None:
        clean, shell = self._clean, self.shell
        _restore_dict(builtins.__dict__, clean["builtins"])
        for name, (module, saved) in clean["modules"].items():
            sys.modules[name] = module
            _restore_dict(vars(module), saved, keep_added_modules=True)
        shell.input_transformers_cleanup[:] = clean["cleanup"]
        shell.input_transformers_post[:] = clean["post"]
        shell.ast_transformers[:] = clean["ast"]
        for name, callbacks in clean["events"].items():
            shell.events.callbacks[name][:] = callbacks
        for name, value in clean["sys"].items():
            setattr(sys, name, value)
        sys.meta_path[:] = clean["meta_path"]
        sys.settrace(None)
        sys.setprofile(None)
        # A method replaced on the shell or kernel object (run_cell, showtraceback, ...) is an instance
        # attribute that hides the class's: drop it, unless it was there from the start.
        for owner, saved in clean["overrides"].items():
            for name in _method_overrides(owner):
                if name in saved:
                    setattr(owner, name, saved[name])
                else:
                    delattr(owner, name)
        shell.user_ns.update(self._locked_names)

    # ------------------------------------------------------------------------------ running a locked cell

    async def do_execute(self, code, silent, store_history=True, user_expressions=None, allow_stdin=False, *,
                         cell_meta=None, cell_id=None):
        kwargs = {"cell_meta": cell_meta, "cell_id": cell_id}
        if not code.startswith(LOCKED_PREFIX):
            reply = await super().do_execute(code, silent, store_history, user_expressions, allow_stdin, **kwargs)
            if self.shell.exit_now:  # exit() would end the kernel at some later moment: end it here, every time
                os._exit(0)
            return reply
        _, grade_id, token = code.split()
        self._restore()
        reached = []
        marker = f"{END_MARKER}{secrets.token_hex(8)}"
        self.shell.user_ns[marker] = lambda: reached.append(True)
        before = dict(self.shell.user_ns)
        source = self._locked_sources[grade_id]
        try:
            reply = await super().do_execute(f"{source}\n{marker}()", silent, store_history, user_expressions,
                                             allow_stdin, **kwargs)
        finally:
            self.shell.user_ns.pop(marker, None)
        self._remember_names(before)
        completed = bool(reached) and reply.get("status") == "ok"
        self.session.send(self.iopub_socket, "display_data",
                          {"data": {VERDICT_MIME: {"grade_id": grade_id, "token": token, "completed": completed}},
                           "metadata": {}, "transient": {}},
                          parent=self.get_parent(), ident=self._topic("display_data"))
        return reply

    def _remember_names(self, before: dict) -> None:
        """The names a locked cell bound are put back before every later locked cell."""
        for name, value in self.shell.user_ns.items():
            if not name.startswith("_") and (name not in before or before[name] is not value):
                self._locked_names[name] = value


def _restore_dict(current: dict, saved: dict, keep_added_modules: bool = False) -> None:
    for name, value in saved.items():
        if current.get(name, _MISSING) is not value:
            current[name] = value
    for name in [name for name in current if name not in saved]:
        if not (keep_added_modules and type(current[name]).__name__ == "module"):
            del current[name]


def _method_overrides(owner) -> dict:
    return {name: value for name, value in vars(owner).items() if callable(getattr(type(owner), name, None))}


_MISSING = object()
