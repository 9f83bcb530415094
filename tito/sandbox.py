"""The grading sandbox: a submission's notebook runs in a kernel that sees only what grading needs.

Built on bubblewrap (Debian's `bubblewrap`, /usr/bin/bwrap). What the kernel sees, and may do:
  - the system's and Python's files, read-only; a tinytorch or tito installed there is hidden;
  - the grader folder, read-only: the reference tinytorch holding only the graded module's prerequisites,
    the grading kernel (tito/grading_kernel.py) and the lesson's locked cells;
  - an empty working folder, the only place it may write (its kernel's sockets live there too);
  - no network, no course folder, no repository, no other submission, no process but its own;
  - limits on memory, CPU time, processes, file size and open files; tito adds a wall-time limit for the
    whole submission and a cap on its printed output.
When tito runs as root the kernel runs as an unprivileged user of its own (one per parallel slot), so process
limits hold. The sandbox has its own pid namespace: killing it ends every process it started.

In: a sanitized notebook, the grader folder, limits. Out: the executed notebook, which locked cells the
grading kernel saw run to their last line, and why the run stopped early (if it did).
"""
from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .errors import TitoError

KERNEL_FILE = Path(__file__).with_name("grading_kernel.py")
LOCKED_PREFIX = "#tito-locked "  # as in grading_kernel.py, which imports nothing from tito
VERDICT_MIME = "application/vnd.tito.verdict+json"
END_MARKER = "_tito_reached_end_"  # as in grading_kernel.py: the call that ends each test, cut from tracebacks
FIRST_SANDBOX_UID = 61000
INSTALL_HINT = "install bubblewrap (`apt-get install bubblewrap`)"


@dataclass(frozen=True)
class Limits:
    cell_seconds: int = 60          # one cell
    notebook_seconds: int = 300   # the whole notebook, kernel start included
    memory_mb: int = 2048           # address space of each process
    processes: int = 64
    file_mb: int = 64               # largest file it may write
    output_kb: int = 1024           # everything it prints, all cells together


@dataclass
class Run:
    notebook: nbformat.NotebookNode
    completed: dict[str, bool]       # locked cell grade id -> ran to its last line, as the grading kernel saw
    stopped: str = ""                # why the run ended before the last cell ("" when it did not)
    seconds: float = 0.0


def bwrap() -> str | None:
    return shutil.which("bwrap")


def require_bwrap() -> str:
    found = bwrap()
    if not found:
        raise TitoError(f"the grading sandbox needs bubblewrap, which is not installed: {INSTALL_HINT}, or pass "
                        f"--no-sandbox to grade without isolation (students' code then runs as you)", 2)
    return found


# ------------------------------------------------------------------------------------------ grader folder

def make_grader_folder(destination: Path, reference_files: dict[str, Path], locked_sources: dict[str, str]) -> Path:
    """The read-only folder a kernel imports from: `reference_files` (package path -> file), the kernel, the tests."""
    destination.mkdir(parents=True)
    for relative, source in reference_files.items():
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    shutil.copyfile(KERNEL_FILE, destination / KERNEL_FILE.name)
    (destination / "locked_cells.json").write_text(json.dumps(locked_sources), encoding="utf-8")
    for path in [destination, *destination.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return destination


# --------------------------------------------------------------------------------------- the command line

def _python_dirs() -> list[Path]:
    """Where this Python and its packages live (the kernel runs the same Python)."""
    candidates = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable)),
                  *sysconfig.get_paths().values()}
    dirs = sorted({Path(os.path.realpath(path)) for path in candidates if path and os.path.isdir(path)})
    return [path for path in dirs if not any(parent in dirs for parent in path.parents)]


def _hidden_packages(python_dirs: list[Path]) -> list[Path]:
    """Installed copies of the course's own packages: a kernel must not import the reference or tito from there."""
    sites = {Path(os.path.realpath(path)) for path in sys.path if path and os.path.isdir(path)}
    found = [site / name for site in sites for name in ("tinytorch", "tito") if (site / name).is_dir()]
    return [path for path in found if any(folder in path.parents for folder in python_dirs)]


def _with_parents(path: Path) -> list[str]:
    """bwrap arguments making the parent folders of `path` traversable by any user."""
    arguments = []
    for parent in reversed(path.parents):
        if parent != Path("/"):
            arguments += ["--perms", "0755", "--dir", str(parent)]
    return arguments


def sandbox_command(command: list[str], grader: Path, work: Path, limits: Limits, uid: int | None,
                    environment: dict[str, str]) -> list[str]:
    """`command` wrapped in bwrap, setpriv (when root) and prlimit, with exactly `environment`."""
    mounts = []
    for top in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc"):
        if os.path.islink(top):
            mounts += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            mounts += ["--ro-bind", top, top]
    python_dirs = _python_dirs()
    for folder in python_dirs:
        if not str(folder).startswith(("/usr/", "/bin/", "/lib")):
            mounts += _with_parents(folder) + ["--ro-bind", str(folder), str(folder)]
    for hidden in _hidden_packages(python_dirs):
        mounts += ["--tmpfs", str(hidden)]
    mounts += _with_parents(grader) + ["--ro-bind", str(grader), str(grader)]
    mounts += _with_parents(work) + ["--bind", str(work), str(work)]
    isolation = ["--proc", "/proc", "--dev", "/dev", "--unshare-pid", "--unshare-net", "--unshare-ipc",
                 "--unshare-uts", "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--chdir", str(work)]
    if uid is None:
        isolation.append("--unshare-user")
        drop = []
    else:
        drop = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
                "--bounding-set=-all", "--no-new-privs", "--"]
    cpu = limits.notebook_seconds + 5
    caps = ["prlimit", f"--as={limits.memory_mb * 2**20}", f"--cpu={cpu}", f"--nproc={limits.processes}",
            f"--fsize={limits.file_mb * 2**20}", "--nofile=256", "--core=0", "--"]
    env = ["env", "-i", *(f"{key}={value}" for key, value in environment.items())]
    return [require_bwrap(), *mounts, *isolation, "--", *drop, *caps, *env, *command]


# -------------------------------------------------------------------------------------------- the kernel

def _kernel_manager_class():
    from jupyter_client.kernelspec import KernelSpec
    from jupyter_client.manager import AsyncKernelManager

    class SandboxedKernelManager(AsyncKernelManager):
        """A kernel started inside the sandbox, reached through unix sockets in its working folder."""

        def __init__(self, argv: list[str], uid: int | None, **kwargs):
            super().__init__(**kwargs)
            self._kernel_spec = KernelSpec(argv=argv, language="python", display_name="tito grading sandbox")
            self.sandbox_uid = uid

        def write_connection_file(self, **kwargs):
            result = super().write_connection_file(**kwargs)
            if self.sandbox_uid is not None:  # the kernel's own user must read its connection file
                os.chown(self.connection_file, self.sandbox_uid, self.sandbox_uid)
            return result

    return SandboxedKernelManager


def _client_class():
    from nbclient import NotebookClient

    class CappedClient(NotebookClient):
        """nbclient that stops a kernel whose printed output passes a cap, instead of holding it all in memory."""

        output_budget = 0
        stop_reason = ""

        def output(self, outs, msg, display_id, cell_index):
            self.output_budget -= len(json.dumps(msg.get("content", {})))
            if self.output_budget < 0:
                if not self.stop_reason:
                    self.stop_reason = "output limit"
                    os.kill(self.km.provisioner.pid, signal.SIGKILL)
                return None
            return super().output(outs, msg, display_id, cell_index)

    return CappedClient


def run_notebook(notebook: nbformat.NotebookNode, grader: Path, limits: Limits, slot: int = 0,
                 sandboxed: bool = True, reference_modules: list[str] = ()) -> Run:
    """Run every code cell of `notebook` in a fresh grading kernel (in the sandbox unless `sandboxed` is False)."""
    started = time.monotonic()
    executed = nbformat.from_dict(json.loads(json.dumps(notebook)))
    tokens = _hand_locked_cells_to_kernel(executed)
    with tempfile.TemporaryDirectory(prefix="tito-sandbox-") as scratch:
        work = Path(scratch) / "work"
        work.mkdir()
        uid = FIRST_SANDBOX_UID + slot if sandboxed and os.geteuid() == 0 else None
        if uid is not None:
            os.chown(work, uid, uid)
        work.chmod(0o700)
        environment = _kernel_environment(grader, work, reference_modules)
        kernel = [sys.executable, "-P", "-m", "ipykernel_launcher", "-f", "{connection_file}",
                  "--IPKernelApp.kernel_class=grading_kernel.GradingKernel", "--HistoryManager.enabled=False"]
        argv = sandbox_command(kernel, grader, work, limits, uid, environment) if sandboxed else kernel
        manager = _kernel_manager_class()(argv, uid, transport="ipc", ip=str(work / "kernel"),
                                          connection_file=str(work / "kernel.json"))
        client = _client_class()(executed, km=manager, allow_errors=True, timeout=limits.cell_seconds,
                                 startup_timeout=120, kernel_name="", resources={"metadata": {"path": str(work)}})
        client.output_budget = limits.output_kb * 1024
        if not sandboxed:
            manager.kernel_spec.env = environment
        try:
            stopped = asyncio.run(_execute_cells(client, executed, limits, started))
        finally:
            if uid is not None:
                _wait_until_gone(uid)
    completed = {}
    for index, (grade_id, token, source) in tokens.items():
        executed.cells[index].source = source
        completed[grade_id] = _verdict(executed.cells[index], token)
    return Run(executed, completed, stopped, time.monotonic() - started)


def _wait_until_gone(uid: int, seconds: float = 10) -> None:
    """Wait for the last process of a killed sandbox to end (its pid namespace is torn down asynchronously)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and _processes_of(uid):
        time.sleep(0.05)


def _processes_of(uid: int) -> list[str]:
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            if f"\nUid:\t{uid}\t" in status.read_text():
                found.append(status.parent.name)
        except OSError:  # the process ended while we looked
            pass
    return found


def _kernel_environment(grader: Path, work: Path, reference_modules) -> dict[str, str]:
    environment = {
        "PATH": os.pathsep.join([os.path.dirname(sys.executable), "/usr/bin", "/bin"]),
        "HOME": str(work), "TMPDIR": str(work), "IPYTHONDIR": str(work / ".ipython"),
        "MPLCONFIGDIR": str(work / ".matplotlib"), "MPLBACKEND": "Agg", "LANG": "C.UTF-8",
        "PYTHONPATH": str(grader), "PYTHONDONTWRITEBYTECODE": "1",
        "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "JUPYTER_PLATFORM_DIRS": "1", "JUPYTER_RUNTIME_DIR": str(work),
        "TITO_LOCKED_CELLS": str(grader / "locked_cells.json"),
        "TITO_REFERENCE_MODULES": ",".join(reference_modules),
    }
    for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # this machine's OpenBLAS needs them (see TOOLCHAIN.md)
        if key in os.environ:
            environment[key] = os.environ[key]
    return environment


def _hand_locked_cells_to_kernel(notebook: nbformat.NotebookNode) -> dict[int, tuple[str, str, str]]:
    """Replace each locked code cell by the line that makes the grading kernel run its trusted source.

    Returns cell index -> (grade id, token, the cell's text to put back after the run).
    """
    tokens = {}
    for index, cell in enumerate(notebook.cells):
        info = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type == "code" and info.get("locked") and info.get("grade_id"):
            token = secrets.token_hex(8)
            tokens[index] = (info["grade_id"], token, cell.source)
            cell.source = f"{LOCKED_PREFIX}{info['grade_id']} {token}"
    return tokens


def _verdict(cell, token: str) -> bool:
    return any(output.get("data", {}).get(VERDICT_MIME, {}).get("token") == token
               and output["data"][VERDICT_MIME].get("completed") is True
               for output in cell.get("outputs", []) if output.get("output_type") == "display_data")


async def _execute_cells(client, notebook, limits: Limits, started: float) -> str:
    """Run the cells in order; the first limit reached, or a dead kernel, ends the run: the reason, or ""."""
    try:
        async with client.async_setup_kernel(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
            return await _each_cell(client, notebook, limits, started + limits.notebook_seconds)
    except RuntimeError as error:  # the kernel did not start
        return f"the grading kernel could not start: {str(error).splitlines()[0][:200]}"
    finally:  # nbclient leaves a kernel it was handed alone: end it, and with it the sandbox
        if client.km.has_kernel:
            await client.km.shutdown_kernel(now=True)


async def _each_cell(client, notebook, limits: Limits, deadline: float) -> str:
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        remaining = deadline - time.monotonic()
        if remaining < 1:
            return f"the submission used up its {limits.notebook_seconds} s before {_name(cell, index)}"
        client.timeout = int(min(limits.cell_seconds, remaining))
        try:
            await client.async_execute_cell(cell, index)
        except CellTimeoutError:
            return (f"{_name(cell, index)} was stopped after {client.timeout} s "
                    f"(a cell may run {limits.cell_seconds} s, the notebook {limits.notebook_seconds} s)")
        except DeadKernelError:
            if client.stop_reason:
                return (f"{_name(cell, index)} printed more than the {limits.output_kb} KB of output "
                        f"a notebook may print, so grading stopped there")
            return (f"the kernel died in {_name(cell, index)} (exit(), os._exit(), a crash or the "
                    f"{limits.memory_mb} MB memory limit), so later cells did not run")
    return ""


def _name(cell, index: int) -> str:
    grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
    return grade_id or f"cell {index + 1}"
