"""The grading sandbox: a submission's notebook runs in a kernel that sees only what grading needs.

Built on bubblewrap (Debian's `bubblewrap`, /usr/bin/bwrap). What the kernel sees, and may do:
  - the system's and Python's files, read-only; a tinytorch or tito installed there is hidden;
  - the grader folder, read-only: the reference tinytorch holding only the graded module's prerequisites,
    and the grading kernel (tito/grading/kernel.py and wire.py); never the tests;
  - a private scratch file system of its own (a tmpfs of `scratch_mb`), the only place it may write: its working
    folder, HOME and TMPDIR, and its kernel's sockets, which tito reaches through /proc/<pid>/root; nothing
    it writes lands on the real disk or where another sandbox could see it, and a full scratch costs only it;
  - no network, no course folder, no repository, no other submission, no process but its own;
  - no kernel keyring (a seccomp filter refuses add_key, request_key and keyctl): the keyrings of a Unix user
    outlive its processes, so one submission could leave data there for the next run as the same user;
  - limits on memory, CPU time, processes, file size and open files; tito adds a wall-time limit for the
    whole submission and a cap on everything its kernel sends (every message type, all cells together).
When tito runs as root the kernel runs as an unprivileged user of its own, leased for the run from a pool that
every tito on the machine shares (`sandbox_user`), so process limits hold and two gradings never share a user.
The sandbox has its own pid namespace: killing it ends every process it started.

The tests do not run in the sandbox: for each locked test cell the kernel serves tito's judge
(tito/grading/judge.py), a process of tito's outside the sandbox that runs the test and decides its verdict.

In: a sanitized notebook, the grader folder, the lesson's tests, limits. Out: the executed notebook (each test
cell showing what the submission printed while it ran, then the judge's printout and error), which tests the
judge saw pass, and why the run stopped early (if it did).
"""
from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import platform
import shutil
import signal
import stat
import struct
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

from ..errors import TitoError
from ..notebook import TEST, cell_role, grade_id, is_locked
from .judge import ABORT

KERNEL_MODULE = "grading_kernel"  # the kernel's name in the grader folder, where the sandbox's Python imports it
# The grader folder's copies of the kernel and its wire format (kernel.py imports nothing from tito).
KERNEL_FILES = {"kernel.py": f"{KERNEL_MODULE}.py", "wire.py": "grading_wire.py"}
SERVE_JUDGE = "get_ipython().kernel.answer_judge()"  # what a test cell runs in the kernel: serving the judge
FIRST_SANDBOX_UID, SANDBOX_USERS = 61000, 64  # the sandboxes' own Unix users: 61000 to 61063
USER_LEASES = Path("/run/tito-sandbox-users")  # root's lock files, one per user: which of them a running tito holds
SCRATCH = Path("/sandbox")  # inside the sandbox: the kernel's private tmpfs (working folder, HOME, TMPDIR, sockets)
KERNEL_SOCKETS = str(SCRATCH / ".kernel")
JUDGE_SOCKET = ".judge"  # in the kernel's working folder: where it waits for the judge
INSTALL_HINT = "install bubblewrap (`apt-get install bubblewrap`)"


@dataclass(frozen=True)
class Limits:
    cell_seconds: int = 60          # one cell
    notebook_seconds: int = 300   # the whole notebook, kernel start included
    memory_mb: int = 2048           # address space of each process
    processes: int = 64
    file_mb: int = 64               # largest file it may write
    output_kb: int = 1024           # everything it prints, all cells together
    scratch_mb: int = 256           # its private scratch file system (memory-backed)


@dataclass
class Run:
    notebook: nbformat.NotebookNode
    completed: dict[str, bool]       # test grade id -> passed: the judge's run of it reached its end
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


def sandbox_works() -> bool:
    """Whether bubblewrap is installed and can create its namespaces here (a container may forbid them)."""
    found = bwrap()
    if not found:
        return False
    probe = [found, "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--unshare-pid", "--unshare-net",
             "--die-with-parent", "true"]
    if os.geteuid() != 0:
        probe.insert(1, "--unshare-user")
    try:
        return subprocess.run(probe, capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


# ------------------------------------------------------------------------------------------ grader folder

def make_grader_folder(destination: Path, reference_files: dict[str, Path]) -> Path:
    """The read-only folder a kernel imports from: `reference_files` (package path -> file) and the kernel."""
    destination.mkdir(parents=True)
    for relative, source in reference_files.items():
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    for name, copy in KERNEL_FILES.items():
        shutil.copyfile(Path(__file__).with_name(name), destination / copy)
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


def sandbox_command(command: list[str], grader: Path, connection: Path, limits: Limits, uid: int | None,
                    environment: dict[str, str]) -> list[str]:
    """`command` wrapped in bwrap, setpriv (when root) and prlimit, with exactly `environment`.

    `connection` (read-only inside) holds the kernel's connection file and the seccomp filter, which a shell
    opens as file descriptor 3 for bwrap (the kernel launcher closes every other descriptor).
    """
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
    mounts += _with_parents(connection) + ["--ro-bind", str(connection), str(connection)]
    scratch = ["--perms", "01777", "--size", str(limits.scratch_mb * 2**20), "--tmpfs", str(SCRATCH),
               "--size", str(16 * 2**20), "--tmpfs", "/dev/shm"]
    isolation = ["--proc", "/proc", "--dev", "/dev", *scratch, "--unshare-pid", "--unshare-net", "--unshare-ipc",
                 "--unshare-uts", "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--chdir", str(SCRATCH)]
    if _write_seccomp_filter(connection / "seccomp.bpf"):
        isolation += ["--seccomp", "3"]
    if uid is None:
        isolation.append("--unshare-user")
    opener = ["/bin/sh", "-c", 'exec "$@" 3<"$0"', str(connection / "seccomp.bpf")]
    return [*opener, require_bwrap(), *mounts, *isolation, "--", *limited_command(command, limits, uid, environment)]


def limited_command(command: list[str], limits: Limits, uid: int | None, environment: dict[str, str]) -> list[str]:
    """`command` as user `uid` (when given) with no privilege, the limits and exactly `environment`: inside the
    sandbox, or alone where bubblewrap cannot run (the unprivileged fallback, see `run_notebook`)."""
    drop = [] if uid is None else ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                                   "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
    cpu = limits.notebook_seconds + 5
    caps = ["prlimit", f"--as={limits.memory_mb * 2**20}", f"--cpu={cpu}", f"--nproc={limits.processes}",
            f"--fsize={limits.file_mb * 2**20}", "--nofile=256", "--core=0", "--"]
    env = ["env", "-i", *(f"{key}={value}" for key, value in environment.items())]
    return [*drop, *caps, *env, *command]


# Syscalls of the kernel keyrings (add_key, request_key, keyctl) on the machines tito knows, with the audit
# architecture seccomp reports. On another machine the sandbox has no filter and the keyrings stay reachable.
_KEYRING_SYSCALLS = {"x86_64": (0xC000003E, (248, 249, 250)), "aarch64": (0xC00000B7, (217, 218, 219))}


def _write_seccomp_filter(path: Path) -> bool:
    """Write a classic-BPF seccomp program refusing (EPERM) the keyring syscalls, and every syscall of another
    architecture or of x86_64's x32 ABI (which would bypass the numbers); whether this machine has one."""
    known = _KEYRING_SYSCALLS.get(platform.machine())
    if known is None:
        path.write_bytes(b"")
        return False
    arch, numbers = known
    load_word, jump_equal, jump_at_least, ret = 0x20, 0x15, 0x35, 0x06
    program = [(load_word, 0, 0, 4), (jump_equal, 0, "deny", arch), (load_word, 0, 0, 0)]
    if platform.machine() == "x86_64":
        program.append((jump_at_least, "deny", 0, 0x40000000))
    program += [(jump_equal, "deny", 0, number) for number in numbers]
    program += [(ret, 0, 0, 0x7FFF0000), (ret, 0, 0, 0x00050000 | 1)]  # allow; refuse with EPERM
    deny = len(program) - 1
    offset = lambda target, at: deny - at - 1 if target == "deny" else target
    path.write_bytes(b"".join(struct.pack("=HBBI", code, offset(true, at), offset(false, at), k)
                              for at, (code, true, false, k) in enumerate(program)))
    return True


# -------------------------------------------------------------------------------------------- the kernel

def _kernel_manager_class():
    from jupyter_client.kernelspec import KernelSpec
    from jupyter_client.manager import AsyncKernelManager

    class SandboxedKernelManager(AsyncKernelManager):
        """A kernel started inside the sandbox, reached through unix sockets in its private scratch."""

        def __init__(self, argv: list[str], uid: int | None, sandboxed: bool, **kwargs):
            super().__init__(**kwargs)
            self._kernel_spec = KernelSpec(argv=argv, language="python", display_name="tito grading sandbox")
            self.sandbox_uid = uid
            self.sandboxed = sandboxed
            self.root = ""  # the sandbox's root seen from here (its /proc/<pid>/root), once it runs

        def write_connection_file(self, **kwargs):
            result = super().write_connection_file(**kwargs)
            if self.sandbox_uid is not None:  # the kernel's own user must read its connection file
                os.chown(self.connection_file, self.sandbox_uid, self.sandbox_uid)
            return result

        async def _async_post_start_kernel(self, **kw):
            # The kernel binds its sockets in its private scratch: reach them through its root from here on.
            if self.sandboxed:
                self.root = f"/proc/{await _sandbox_pid(self.provisioner)}/root"
                self.ip = f"{self.root}{self.ip}"
            await super()._async_post_start_kernel(**kw)

        def cleanup_ipc_files(self):
            pass  # they live in the sandbox's scratch, gone with it

        def client(self, **kwargs):
            # ZeroMQ reads a whole message before tito could count it: one larger than the notebook's whole output
            # budget is refused at the socket instead (its connection drops), so tito never holds it.
            import zmq

            kernel_client = super().client(**kwargs)
            kernel_client.context.setsockopt(zmq.MAXMSGSIZE, self.largest_message)
            return kernel_client

    return SandboxedKernelManager


async def _sandbox_pid(provisioner, seconds: float = 60) -> int:
    """A process inside the sandbox (whose root is not ours): the first descendant of bwrap that has one."""
    ours = os.stat("/")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and await provisioner.poll() is None:
        for pid in descendants(provisioner.pid):
            try:
                root = os.stat(f"/proc/{pid}/root/")
            except OSError:  # gone, or not ours to look into
                continue
            if (root.st_dev, root.st_ino) != (ours.st_dev, ours.st_ino):
                return pid
        await asyncio.sleep(0.02)
    raise RuntimeError("the sandbox did not start")


def descendants(pid: int) -> list[int]:
    found, pending = [], [pid]
    while pending:
        parent = pending.pop()
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        found += [int(child) for child in children]
        pending += [int(child) for child in children]
    return found


def _client_class():
    from nbclient import NotebookClient

    class CappedClient(NotebookClient):
        """nbclient that counts everything a kernel sends against one budget and stops the kernel past it,
        instead of holding it all in memory. Comm messages (widgets) are counted and ignored: a graded
        notebook has no frontend, and nbclient's widget handling trusts their content."""

        output_budget = 0
        stopped_at: int | None = None  # the cell whose output passed the budget
        running: int = 0  # the cell being executed

        async def async_execute_cell(self, cell, cell_index, **kwargs):
            self.running = cell_index
            return await super().async_execute_cell(cell, cell_index, **kwargs)

        async def async_start_new_kernel_client(self):
            kernel_client = await super().async_start_new_kernel_client()
            self._watcher = asyncio.ensure_future(self._watch_for_refused_messages())
            return kernel_client

        async def _watch_for_refused_messages(self):
            """A message larger than the budget is refused at the socket (see the kernel manager's `client`): the
            connection drops while the kernel lives on. That is the budget passed: stop the kernel there."""
            import zmq

            monitor = self.kc.iopub_channel.socket.get_monitor_socket(zmq.EVENT_DISCONNECTED)
            try:
                await monitor.recv_multipart()
                await asyncio.sleep(0.5)  # a kernel that died closed its sockets too: let it be seen dead first
                if self.stopped_at is None and await self.km.provisioner.poll() is None:
                    self.stopped_at = self.running
                    os.kill(self.km.provisioner.pid, signal.SIGKILL)
            finally:
                monitor.close(linger=0)

        def process_message(self, msg, cell, cell_index):
            if self.stopped_at is not None:
                return None
            if msg["msg_type"] not in ("status", "execute_input"):
                self.output_budget -= _message_size(msg) * self._copies(msg)
                if self.output_budget < 0:
                    self.stopped_at = cell_index
                    os.kill(self.km.provisioner.pid, signal.SIGKILL)
                    return None
            if msg["msg_type"].startswith("comm"):
                return None
            return super().process_message(msg, cell, cell_index)

        def _copies(self, msg) -> int:
            """How many outputs a message writes: a display with an id rewrites every output shown with that id
            (which the notebook then holds, and the feedback page shows, once each)."""
            display_id = (msg["content"].get("transient") or {}).get("display_id")
            if not display_id or msg["msg_type"] not in ("display_data", "update_display_data", "execute_result"):
                return 1
            shown = sum(len(outputs) for outputs in self._display_id_map.get(display_id, {}).values())
            return max(1, shown + (msg["msg_type"] != "update_display_data"))

    return CappedClient


def _message_size(msg: dict) -> int:
    return len(json.dumps(msg.get("content", {}), default=str)) + sum(len(buffer) for buffer in msg.get("buffers", []))


def run_notebook(notebook: nbformat.NotebookNode, grader: Path, tests: Path, limits: Limits,
                 sandboxed: bool = True, unprivileged: bool = False) -> Run:
    """Run every code cell of `notebook` in a fresh grading kernel (in the sandbox unless `sandboxed` is False),
    each locked test cell by the judge, from `tests` (a JSON file: grade id -> the lesson's source of the test).

    `unprivileged` (with `sandboxed` False) is the fallback where bubblewrap cannot create its namespaces (a
    container such as Gradescope's): the kernel runs as an unprivileged user of its own with the same limits,
    seeing what any user may see (no private file system, network or pid namespace, no keyring filter), and every
    process of that user is killed when the run ends. It needs root, to switch to that user.
    """
    if unprivileged and not sandboxed:
        _require_unprivileged_python()
    started = time.monotonic()
    executed = nbformat.from_dict(json.loads(json.dumps(notebook)))
    fallback = unprivileged and not sandboxed
    with tempfile.TemporaryDirectory(prefix="tito-sandbox-") as scratch, \
            (sandbox_user() if sandboxed or fallback else contextlib.nullcontext()) as uid:
        connection = Path(scratch) / "connection"  # read-only in the sandbox: what the kernel needs to start
        connection.mkdir()
        connection.chmod(0o755)
        work = SCRATCH if sandboxed else connection  # without the sandbox, the kernel writes beside its connection
        environment = _kernel_environment(grader, work)
        kernel = [sys.executable, "-P", "-m", "ipykernel_launcher", "-f", "{connection_file}",
                  f"--IPKernelApp.kernel_class={KERNEL_MODULE}.GradingKernel", "--HistoryManager.enabled=False"]
        argv = sandbox_command(kernel, grader, connection, limits, uid, environment) if sandboxed else kernel
        if fallback:  # its own user makes its sockets and HOME here, and must pass through to here and the grader
            Path(scratch).chmod(0o711)
            grader.parent.chmod(grader.parent.stat().st_mode | 0o011)
            os.chown(connection, uid, uid)
            argv = limited_command(kernel, limits, uid, environment)
        sockets = KERNEL_SOCKETS if sandboxed else str(connection / "kernel")
        manager = _kernel_manager_class()(argv, uid, sandboxed, transport="ipc", ip=sockets,
                                          connection_file=str(connection / "kernel.json"))
        client = _client_class()(executed, km=manager, allow_errors=True, timeout=limits.cell_seconds,
                                 startup_timeout=120, kernel_name="", resources={"metadata": {"path": str(connection)}})
        client.output_budget = manager.largest_message = limits.output_kb * 1024
        if not sandboxed:
            manager.kernel_spec.env = environment
        judge = JudgeProcess(lambda: f"{manager.root}{environment['TITO_JUDGE_SOCKET']}", tests, limits)
        try:
            stopped = asyncio.run(_execute_cells(client, executed, judge, limits, started))
        finally:
            if fallback:  # no pid namespace ends what the kernel started: end every process of its user
                _kill_processes_of(uid)
            if uid is not None:
                _wait_until_gone(uid)
    passed = {grade_id(cell): judge.passed.get(grade_id(cell), False) for cell in executed.cells if is_test(cell)}
    return Run(executed, passed, stopped, time.monotonic() - started)


class JudgeProcess:
    """The judge (tito/grading/judge.py) for one submission: a process of tito's, started at the first test,
    that runs each test as the kernel serves it, and says whether it passed."""

    def __init__(self, socket_path, tests: Path, limits: Limits):
        self.socket_path, self.tests, self.limits = socket_path, tests, limits
        self.process: asyncio.subprocess.Process | None = None
        self.passed: dict[str, bool] = {}
        self.started = self.answered = 0  # tests given to the judge, and lines of results read back

    async def start(self) -> None:
        """Start the process (it connects to the kernel at its first test), while the first cells run."""
        if self.process is None:
            environment = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
            # The kernel's memory limit holds for the judge too: what the kernel sends, the judge holds (64 MB of
            # JSON parses into more than a GB of lists), and the sandbox's limit must not be passed on to tito's side.
            self.process = await asyncio.create_subprocess_exec(
                "prlimit", f"--as={self.limits.memory_mb * 2**20}", "--",
                sys.executable, "-m", "tito.grading.judge", self.socket_path(), str(self.tests),
                str(self.limits.cell_seconds), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, env=environment, limit=2**26)

    async def start_test(self, name: str) -> None:
        await self.start()
        self.process.stdin.write(f"{name}\n".encode())
        await self.process.stdin.drain()
        self.started += 1

    async def result(self, name: str, seconds: float) -> dict:
        """The judge's result for the test whose cell just ended in the kernel; a failure with the reason when it
        cannot say. The judge writes it before it tells the kernel the test is over, so it is there at once; when
        it is not, the kernel ended the cell without serving the test, and the judge is told to stop waiting.

        The judge answers its tests in order, one line each. A line that comes after tito stopped waiting for it
        is skipped when it comes: it never counts for a later test."""
        line = await self._line(0.2)  # already written when the kernel served the test to its end
        if line is None:
            self.process.stdin.write(f"{ABORT}\n".encode())
            await self.process.stdin.drain()
            line = await self._line(seconds)
        try:
            result = json.loads(line)
        except (TypeError, ValueError):
            result = {"completed": False, "error": {"ename": "TestNotCompleted", "traceback": [],
                                                    "evalue": "the judge gave no verdict on this test"}}
        self.passed[name] = result.get("completed") is True
        return result

    async def _line(self, seconds: float) -> bytes | None:
        """The line of the test given last, skipping those of earlier tests; None when it does not come in time."""
        deadline = time.monotonic() + seconds
        try:
            while self.answered < self.started:
                line = await asyncio.wait_for(self.process.stdout.readline(), max(0.0, deadline - time.monotonic()))
                self.answered += 1
            return line
        except asyncio.TimeoutError:
            return None

    async def close(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


@contextlib.contextmanager
def sandboxed_python(script: Path, folder: Path, limits: Limits):
    """A Popen of Python running `script` in the sandbox (the kernel's isolation and limits), with `folder` (which
    holds the script) read-only and importable; its stdin and stdout are pipes to tito, its stderr is discarded.
    It is killed, with everything it started, when the block ends (`olympics` scores entries this way)."""
    with tempfile.TemporaryDirectory(prefix="tito-sandbox-") as scratch, sandbox_user() as uid:
        connection = Path(scratch) / "connection"
        connection.mkdir()
        connection.chmod(0o755)
        environment = _kernel_environment(folder, SCRATCH)
        command = sandbox_command([sys.executable, "-P", str(script)], folder, connection, limits, uid, environment)
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            yield process
        finally:
            process.kill()
            process.wait()
            for pipe in (process.stdin, process.stdout):
                with contextlib.suppress(OSError):
                    pipe.close()
            if uid is not None:
                _wait_until_gone(uid)


@contextlib.contextmanager
def sandbox_user():
    """A Unix user of its own for one sandbox while the block runs, or None when tito is not root: the first of the
    SANDBOX_USERS users that no tito on this machine holds, held with `flock` on its file in USER_LEASES (the lock
    goes with the process, even one killed). Ending a run kills or waits for every process of its user, so two
    runs must never share one. A process still running as the user leased is a dead tito's leftover: it is killed
    before the user is handed out."""
    if os.geteuid() != 0:
        yield None
        return
    leases = _lease_folder()
    while True:
        for uid in range(FIRST_SANDBOX_UID, FIRST_SANDBOX_UID + SANDBOX_USERS):
            lease = os.open(leases / str(uid), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            try:
                fcntl.flock(lease, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # another run holds this user
                os.close(lease)
                continue
            try:
                _kill_processes_of(uid)
                _wait_until_gone(uid)
                yield uid
            finally:
                os.close(lease)
            return
        time.sleep(0.1)  # every user is busy: wait for a run to end


def _lease_folder() -> Path:
    """USER_LEASES, made if missing, and checked to be root's alone (a lease file anyone could hold or replace
    would let them stall grading or make two runs share a user)."""
    with contextlib.suppress(FileExistsError):
        USER_LEASES.mkdir(mode=0o700)
    status = USER_LEASES.lstat()
    if not stat.S_ISDIR(status.st_mode) or status.st_uid != 0 or status.st_mode & 0o022:
        raise TitoError(f"{USER_LEASES} must be a folder of root's that no one else may write to: remove it and grade again", 2)
    return USER_LEASES


def _wait_until_gone(uid: int, seconds: float = 10) -> None:
    """Wait for the last process of a killed sandbox to end (its pid namespace is torn down asynchronously)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and _processes_of(uid):
        time.sleep(0.05)


def _require_unprivileged_python() -> None:
    """The fallback's kernel is this Python run by a user of its own: it needs root to switch to that user,
    and a Python that every user can reach."""
    if os.geteuid() != 0:
        raise TitoError("grading as an unprivileged user needs root (to switch to that user)", 2)
    python = Path(os.path.realpath(sys.executable))
    closed = [folder for folder in python.parents if not folder.stat().st_mode & stat.S_IXOTH]
    if closed:
        raise TitoError(f"grading as an unprivileged user needs a Python every user can run, but {python} lies "
                        f"in {closed[-1]}, which other users cannot pass", 2)


def _kill_processes_of(uid: int) -> None:
    for pid in _processes_of(uid):
        with contextlib.suppress(OSError):  # it ended meanwhile
            os.kill(int(pid), signal.SIGKILL)


def _processes_of(uid: int) -> list[str]:
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            if f"\nUid:\t{uid}\t" in status.read_text():
                found.append(status.parent.name)
        except OSError:  # the process ended while we looked
            pass
    return found


def _kernel_environment(grader: Path, work: Path) -> dict[str, str]:
    environment = {
        "PATH": os.pathsep.join([os.path.dirname(sys.executable), "/usr/bin", "/bin"]),
        "HOME": str(work), "TMPDIR": str(work), "IPYTHONDIR": str(work / ".ipython"),
        "MPLCONFIGDIR": str(work / ".matplotlib"), "MPLBACKEND": "Agg", "LANG": "C.UTF-8",
        "PYTHONPATH": str(grader), "PYTHONDONTWRITEBYTECODE": "1",
        "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "JUPYTER_PLATFORM_DIRS": "1", "JUPYTER_RUNTIME_DIR": str(work),
        "TITO_JUDGE_SOCKET": str(work / JUDGE_SOCKET),
    }
    for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # this machine's OpenBLAS needs them (see TOOLCHAIN.md)
        if key in os.environ:
            environment[key] = os.environ[key]
    return environment


async def _execute_cells(client, notebook, judge: JudgeProcess, limits: Limits, started: float) -> str:
    """Run the cells in order; the first limit reached, or a dead kernel, ends the run: the reason, or ""."""
    try:
        async with client.async_setup_kernel(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
            return await _each_cell(client, notebook, judge, limits, started + limits.notebook_seconds)
    except RuntimeError as error:  # the kernel did not start
        return f"the grading kernel could not start: {str(error).splitlines()[0][:200]}"
    finally:  # nbclient leaves a kernel it was handed alone: end it, and with it the sandbox
        await judge.close()
        if client.km is not None and client.km.has_kernel:
            await client.km.shutdown_kernel(now=True)


async def _each_cell(client, notebook, judge: JudgeProcess, limits: Limits, deadline: float) -> str:
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    await judge.start()
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        remaining = deadline - time.monotonic()
        if remaining < 1:
            return f"the submission used up its {limits.notebook_seconds} s before {_name(cell, index)}"
        client.timeout = int(min(limits.cell_seconds, remaining))
        try:
            if is_test(cell):
                await _judged(client, cell, index, judge, remaining)
            else:
                await client.async_execute_cell(cell, index)
        except CellTimeoutError:
            return (f"{_name(cell, index)} was stopped after {client.timeout} s "
                    f"(a cell may run {limits.cell_seconds} s, the notebook {limits.notebook_seconds} s)")
        except DeadKernelError:
            if client.stopped_at is not None:
                where = client.stopped_at
                return (f"{_name(notebook.cells[where], where)} printed more than the {limits.output_kb} KB of "
                        f"output a notebook may print, so grading stopped there")
            return (f"the kernel died in {_name(cell, index)} (exit(), os._exit(), a crash or the "
                    f"{limits.memory_mb} MB memory limit), so later cells did not run")
        except Exception as error:  # a message nbclient cannot read: the kernel, so the submission, sent it
            return (f"{_name(cell, index)} sent a message tito could not read ({type(error).__name__}), "
                    f"so grading stopped there")
    return ""


def is_test(cell) -> bool:
    return cell.cell_type == "code" and is_locked(cell) and cell_role(cell) == TEST


async def _judged(client, cell, index: int, judge: JudgeProcess, remaining: float) -> None:
    """A test cell: the judge runs the lesson's test while the kernel serves it. The cell then shows what the
    submission printed meanwhile, and the judge's printout and error; its verdict is the judge's alone."""
    source = cell.source
    name = grade_id(cell)
    await judge.start_test(name)
    cell.source = SERVE_JUDGE
    try:
        await client.async_execute_cell(cell, index)
    finally:
        cell.source = source
        cell.outputs = [output for output in cell.outputs if output.output_type not in ("error", "execute_result")]
    result = await judge.result(name, max(1.0, min(10.0, remaining)))
    if result.get("printed"):
        cell.outputs.append(nbformat.v4.new_output("stream", name="stdout", text=result["printed"]))
    if result.get("error"):
        cell.outputs.append(nbformat.v4.new_output("error", **result["error"]))


def _name(cell, index: int) -> str:
    return grade_id(cell) or f"cell {index + 1}"
