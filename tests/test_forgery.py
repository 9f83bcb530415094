"""Forging routes against `tito nbgrader autograde`: a student who has read every line of tito tries to make the
grader award points their work did not earn. Real nbgrader, real sandbox, real kernel, real judge.

Each route of issue 29 is one student of module 01 (module 06 where the route is the reference gradient checker):
either the untouched release with the attack added, which must score 0, or the solution with one wrong answer
(the arithmetic test's `elementwise`, 3 of 10 points) with an attack that tries to raise it to full marks, which
must score exactly what the wrong solution alone scores. Where an attack can show that it did fool the student's
own process, it prints so, and a test checks that it did: the judge was attacked for real and did not move.
"""
from __future__ import annotations

import asyncio
import copy
import json
import re
import socket
import struct

import nbformat
import pytest

from conftest import copy_course, needs_sandbox
from test_hostile import (_after, _cells, _fingerprint, _graded_honest_first, _hand_in_all, _in_first_solution,
                          _index, _printed_by)
from tito.course import load_course
from tito.coursefolder import course_folder
from tito.grading import wire
from tito.grading.autograde import autograde
from tito.grading.release import release
from tito.grading.sandbox import JudgeProcess, Limits

pytestmark = [pytest.mark.slow, needs_sandbox]

MODULE = "01_tensor"
FULL = 10
ARITHMETIC = 3  # points of test-tensor-arithmetic, the test the wrong answer fails
WRONG = FULL - ARITHMETIC
CONSTRUCTORS = 1  # points of test-tensor-constructors, the last test of module 01
KERNEL = "globals()['get_' + 'ipython']().kernel"  # reached without writing its name, as the student did

# ------------------------------------------------------------------------------------------ the attacks

# The kernel object rewritten: the old table of locked test sources, and verdicts set on the kernel.
REWRITTEN_KERNEL = f"""kernel = {KERNEL}
kernel._locked_sources = {{}}
kernel.verdicts = dict.fromkeys(['test-tensor-creation', 'test-tensor-arithmetic', 'test-tensor-matmul'], True)
print('kernel rewritten', kernel._locked_sources == {{}})"""

# A shell escape and a magic: the test cells' serving replaced by a printout of success.
MAGIC_AND_SHELL = """!true
%time get_ipython().kernel.answer_judge = lambda: print('test_unit_tensor_creation: passed')"""

# The verdict sent by hand on the judge's socket, and a forged verdict line and display.
BY_HAND = """import json
import grading_wire as wire
from IPython.display import display
link = get_ipython().kernel._judge

def answer_judge():
    if link.connection is None:
        link.connection, _ = link.listener.accept()
    print(json.dumps({'grade_id': 'test-tensor-creation', 'completed': True}))
    display({'text/plain': 'test_unit_tensor_creation: passed'}, raw=True)
    for forged in ({'op': 'done'}, {'op': 'return', 'value': True}, {'op': 'value', 'value': True}):
        wire.send(link.connection, forged)
    link.serve()

get_ipython().kernel.answer_judge = answer_judge"""

# Class-level patches of what runs a cell and reports it: the test cell's serving skipped, or its error hidden.
PATCHES = {
    "do_execute": """from ipykernel.ipkernel import IPythonKernel
_execute = IPythonKernel.do_execute
async def do_execute(self, code, *args, **kwargs):
    if 'answer_judge' in code:
        return {'status': 'ok', 'execution_count': self.execution_count, 'user_expressions': {}, 'payload': []}
    return await _execute(self, code, *args, **kwargs)
IPythonKernel.do_execute = do_execute""",
    "run_cell_async": """from IPython.core.interactiveshell import ExecutionInfo, ExecutionResult, InteractiveShell
_run = InteractiveShell.run_cell_async
async def run_cell_async(self, cell, *args, **kwargs):
    if 'answer_judge' in cell:
        return ExecutionResult(ExecutionInfo(cell, False, False, False, None))
    return await _run(self, cell, *args, **kwargs)
InteractiveShell.run_cell_async = run_cell_async""",
    "showtraceback": """from IPython.core.interactiveshell import InteractiveShell
InteractiveShell.showtraceback = lambda self, *args, **kwargs: None""",
    "session_send": """from jupyter_client.session import Session
_send = Session.send
def send(self, stream, message, content=None, *args, **kwargs):
    kind = message if isinstance(message, str) else message.get('msg_type')
    if kind == 'error':
        return None
    if kind == 'execute_reply' and isinstance(content, dict):
        content = {**content, 'status': 'ok'}
    return _send(self, stream, message, content, *args, **kwargs)
Session.send = send""",
    "transform_cell": """from IPython.core.inputtransformer2 import TransformerManager
_transform = TransformerManager.transform_cell
TransformerManager.transform_cell = lambda self, cell: 'pass\\n' if 'answer_judge' in cell else _transform(self, cell)""",
}

# The parent message (the old per-cell token) read while a test runs, and a verdict forged with it.
PARENT_TOKEN = """import json

def forge_verdict(self, *args, **kwargs):
    kernel = get_ipython().kernel
    parent = kernel.get_parent()
    kernel.session.send(kernel.iopub_socket, 'execute_result',
                        {'data': {'text/plain': '1.0'}, 'metadata': {}, 'execution_count': 1}, parent=parent)
    kernel.session.send(kernel.iopub_socket, 'stream', {'name': 'stdout', 'text': json.dumps(
        {'completed': True, 'token': parent['header']['msg_id']})}, parent=parent)

Tensor.__init__ = forge_verdict"""

# A thread that takes the judge's connection and answers every request with True.
THREAD_SERVER = """import threading
import grading_wire as wire
link = get_ipython().kernel._judge

def answer_everything():
    connection, _ = link.listener.accept()
    while True:
        wire.receive(connection)
        wire.send(connection, {'op': 'value', 'value': True})

threading.Thread(target=answer_everything, daemon=True).start()"""

# Every class of the process walked (`__subclasses__`) to find the kernel's side of the judge, patched to say yes.
SUBCLASSES = """import grading_wire as wire

def every_class(root=object, seen=set()):
    for kind in type.__subclasses__(root):
        if kind not in seen:
            seen.add(kind)
            yield kind
            yield from every_class(kind, seen)

for kind in list(every_class()):
    if kind.__name__ == 'JudgeLink':
        kind.answer = lambda self, message, buffers: wire.send(self.connection, {'op': 'value', 'value': True})
        print('patched', kind.__name__)"""

# Builtins shadowed in the notebook and in the kernel's builtins module.
SHADOWED_BUILTINS = """import builtins
def all(*args):
    return True
def abs(value):
    return 0
class AssertionError(Exception):
    pass
builtins.all, builtins.abs = all, abs"""
SHADOWED_ISINSTANCE = SHADOWED_BUILTINS + """
def isinstance(*args):
    return True"""

# A timer that puts a lying NumPy back every 10 ms.
TIMER = """import threading
import numpy

def lie():
    numpy.allclose = numpy.isclose = numpy.array_equal = lambda *args, **kwargs: True
    timer = threading.Timer(0.01, lie)
    timer.daemon = True
    timer.start()

lie()
print('kernel fooled', numpy.allclose(1, 2))"""

# NumPy rebound in the student's namespace to an object whose comparisons lie (the rest is NumPy's).
NUMPY_REBOUND = """import numpy

class LyingNumpy:
    allclose = isclose = array_equal = staticmethod(lambda *args, **kwargs: True)
    def __getattr__(self, name):
        return getattr(numpy, name)

np = LyingNumpy()
print('kernel fooled', np.allclose(1, 2))"""

# The code of NumPy's comparisons replaced in the kernel.
NUMPY_CODE = """import numpy
yes = lambda *args, **kwargs: True
for function in (numpy.isclose, numpy.allclose, numpy.array_equal):
    function._implementation.__code__ = yes.__code__
print('kernel fooled', numpy.allclose(1, 2))"""

# The same, written into the kernel's memory with ctypes: each function's code pointer made that of `yes`.
CTYPES = """import ctypes
import numpy
yes = lambda *args, **kwargs: True
for function in (numpy.isclose._implementation, numpy.allclose._implementation, numpy.array_equal._implementation):
    code = function.__code__
    offset = next(at for at in range(16, 160, 8) if ctypes.c_void_p.from_address(id(function) + at).value == id(code))
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(yes.__code__))
    ctypes.c_void_p.from_address(id(function) + offset).value = id(yes.__code__)
print('kernel fooled', numpy.allclose(1, 2))"""

# Results that lie: an object saying yes to ==, bool, np.asarray, float and NumPy's functions; an ndarray subclass
# whose __array_function__ and == lie. Each wraps what the wrong elementwise computed.
LYING_OBJECT = """class Liar:
    def __init__(self, shape):
        self.shape = shape
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False
    def __bool__(self):
        return True
    def __float__(self):
        return 1.0
    def __array__(self, dtype=None, copy=None):
        return np.array(True)
    def __array_function__(self, function, types, args, kwargs):
        return True
    def tolist(self):
        return self

class LyingTensor(Tensor):
    def numpy(self):
        return Liar(self.shape)
    def __eq__(self, other):
        return Liar(self.shape)
    def __bool__(self):
        return True

wrong_elementwise = elementwise
def elementwise(op, a, b):
    result = wrong_elementwise(op, a, b)
    return result if result is NotImplemented else LyingTensor(result.data)
print('kernel fooled', np.allclose(LyingTensor([5.0]).numpy(), [1.0]))"""
LYING_ARRAY = """class LyingArray(np.ndarray):
    def __array_function__(self, function, types, args, kwargs):
        return True
    def __eq__(self, other):
        return np.ones(self.shape, dtype=bool)

wrong_elementwise = elementwise
def elementwise(op, a, b):
    result = wrong_elementwise(op, a, b)
    if result is not NotImplemented:
        result.data = result.data.view(LyingArray)
    return result
print('kernel fooled', np.allclose(np.zeros(2).view(LyingArray), [1.0, 2.0]))"""

# Student code given one of the test's objects (a random generator) walks from it into the judge: its bit
# generator's ctypes interface holds C function pointers that would run on any address in the judge's process.
WALK = """honest_randn = randn
def randn(*shape, dtype=np.float32, rng=None):
    try:
        face = rng.bit_generator.ctypes
        print('walked into the judge:', type(face.next_uint64).__name__)
    except Exception as error:
        print('walk refused:', type(error).__name__, error)
    return honest_randn(*shape, dtype=dtype, rng=rng)"""

# Every answer to the judge said to be a module (`this`, which prints when imported), as if the judge should use
# its own copy of it: the judge must never import a module on the kernel's word.
MODULE_CLAIMED = """import grading_wire as wire
send = wire.send
def claiming_send(connection, message, buffers=()):
    if message.get('op') == 'value':
        message = {**message, 'module': 'this'}
    return send(connection, message, buffers)
wire.send = claiming_send"""

# The judge held up on one test until tito stops waiting for its verdict, so that (were verdicts read in turn,
# not matched to their test) that late verdict would count for the next test: a thread serves the judge slowly
# while the test cell returns at once; the next test cell waits for it, then serves its own test honestly.
HELD_UP = """import threading, time
kernel = get_ipython().kernel
link = kernel._judge
serve, answer = link.serve, link.answer
slow, served = [0], []

def slow_answer(message, buffers):
    if slow[0] > 0:
        slow[0] -= 1
        time.sleep(4)
    answer(message, buffers)

def answer_judge():
    if not served:
        slow[0] = 3
        served.append(threading.Thread(target=serve))
        served[0].start()
        return
    served[0].join()
    serve()

link.answer = slow_answer
kernel.answer_judge = answer_judge"""


def _wrong(source):
    """The solution with one wrong answer: elementwise adds 0.5 to every result (only the arithmetic test sees it)."""
    wrong = copy.deepcopy(source)
    right = "return Tensor(op(left, right))"
    assert sum(cell.source.count(right) for cell in wrong.cells) == 1, "elementwise's return is not where expected"
    for cell in wrong.cells:
        cell.source = cell.source.replace(right, "return Tensor(op(left, right) + 0.5)")
    return wrong


def _arithmetic_test_last(notebook):
    """`notebook` with the arithmetic test cell moved to the end (nbgrader keeps the order a student hands in)."""
    moved = copy.deepcopy(notebook)
    moved.cells.append(moved.cells.pop(_index(moved, "test-tensor-arithmetic")))
    return moved


def _attacks(course) -> dict[str, tuple[object, float]]:
    """student -> (what they hand in, the points it must get)."""
    source, released = _cells(course)
    wrong = _wrong(source)
    reordered = _arithmetic_test_last(wrong)
    attacks = {
        "honest": (source, FULL),
        "wrong": (wrong, WRONG),
        "reordered": (reordered, WRONG),
        "kernel_rewritten": (_in_first_solution(released, REWRITTEN_KERNEL), 0),
        "kernel_rewritten_wrong": (_in_first_solution(wrong, REWRITTEN_KERNEL), WRONG),
        "magic_and_shell": (_in_first_solution(released, MAGIC_AND_SHELL), 0),
        "by_hand": (_in_first_solution(released, BY_HAND), 0),
        "parent_token": (_after(released, "tensor-class", PARENT_TOKEN), 0),
        "thread_server": (_in_first_solution(released, THREAD_SERVER), 0),
        "subclasses": (_in_first_solution(released, SUBCLASSES), 0),
        "builtins": (_in_first_solution(released, SHADOWED_ISINSTANCE), 0),
        "builtins_wrong": (_in_first_solution(wrong, SHADOWED_BUILTINS), WRONG),
        "timer": (_in_first_solution(wrong, TIMER), WRONG),
        "numpy_rebound": (_in_first_solution(wrong, NUMPY_REBOUND), WRONG),
        "numpy_code": (_in_first_solution(wrong, NUMPY_CODE), WRONG),
        "ctypes": (_in_first_solution(wrong, CTYPES), WRONG),
        "lying_object": (_after(wrong, "tensor-elementwise", LYING_OBJECT), WRONG),
        "lying_array": (_after(wrong, "tensor-elementwise", LYING_ARRAY), WRONG),
        "module_claimed": (_in_first_solution(released, MODULE_CLAIMED), 0),
        "walker": (_after(source, "tensor-constructors", WALK), FULL),
        # the held-up test loses its point (tito stopped waiting for it); its late verdict counts for nothing else
        "held_up": (_after(reordered, "tensor-constructors", HELD_UP), WRONG - CONSTRUCTORS),
    }
    attacks.update({f"patched_{name}": (_in_first_solution(released, patch), 0) for name, patch in PATCHES.items()})
    return attacks


# What an attack prints when it fooled the student's own process (so it was really tried).
FOOLED = {"kernel_rewritten": "kernel rewritten True", "timer": "kernel fooled True", "subclasses": "patched JudgeLink",
          "numpy_rebound": "kernel fooled True", "numpy_code": "kernel fooled True", "ctypes": "kernel fooled True",
          "lying_object": "kernel fooled True", "lying_array": "kernel fooled True",
          "magic_and_shell": "test_unit_tensor_creation: passed", "by_hand": '"completed": true'}


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = copy_course(tmp_path_factory.mktemp("forgery") / "repo")
    settings = root / "settings.ini"
    text = re.sub(r"modules =\n(    .*\n)+", "modules =\n    01_tensor\n    02_activations\n", settings.read_text())
    text = re.sub(r"timeout = \d+", "timeout = 6", text, count=1)
    text = re.sub(r"memory_mb = \d+", "memory_mb = 1024", text)
    settings.write_text(re.sub(r"notebook_seconds = \d+", "notebook_seconds = 90", text))
    loaded = load_course(root)
    release(loaded, loaded.module(MODULE))
    return loaded


@pytest.fixture(scope="module")
def graded(course):
    folder = course_folder(course)
    module = course.module(MODULE)
    attacks = _attacks(course)
    _hand_in_all(folder, module, attacks)
    return (attacks, *_graded_honest_first(course, module, attacks))


@pytest.mark.parametrize("student", [
    "honest", "wrong", "reordered", "kernel_rewritten", "kernel_rewritten_wrong", "magic_and_shell", "by_hand",
    "parent_token", "thread_server", "subclasses", "builtins", "builtins_wrong", "timer", "numpy_rebound",
    "numpy_code", "ctypes", "lying_object", "lying_array", "module_claimed", "walker", "held_up",
    *[f"patched_{name}" for name in PATCHES]])
def test_each_forgery_scores_exactly_its_honest_points(graded, student):
    attacks, grades, _ = graded
    grade = grades[student]
    assert grade.graded, f"{student} was not graded: {grade.error}"
    assert grade.score == attacks[student][1], f"{student}: {grade.score} points, failed {grade.failed}, notes {grade.notes}"


def test_the_wrong_answer_fails_only_its_own_test(graded):
    _, grades, _ = graded
    for student in ("wrong", "reordered", "kernel_rewritten_wrong", "builtins_wrong", "timer", "numpy_rebound",
                    "numpy_code", "ctypes", "lying_object", "lying_array"):
        assert grades[student].failed == ["test-tensor-arithmetic"], (student, grades[student].failed)


@pytest.mark.parametrize("student", sorted(FOOLED))
def test_each_attack_did_fool_the_students_own_process(graded, course, student):
    """The attack ran and worked where it ran: only the judge, out of its reach, kept the score honest."""
    assert FOOLED[student] in "".join(_printed_by(course, student))


def test_student_code_cannot_walk_from_a_tests_object_into_the_judge(graded, course):
    """randn is handed the test's random generator: its methods answer, its bit generator (and through it C function
    pointers of the judge's process) are refused."""
    printed = "".join(_printed_by(course, "walker"))
    assert "walk refused: TypeError the test's Generator offers student code its data and methods, not its " \
           "bit_generator" in printed, printed
    assert "walked into the judge" not in printed


def test_the_judge_imports_no_module_on_the_kernels_word(graded, course):
    """Every answer claimed to be the module `this`: the judge did not import it (it would have printed its poem
    into the test's printout); it uses its own copy only of a module it has loaded itself."""
    assert "Beautiful is better than ugly" not in "".join(_printed_by(course, "module_claimed"))


def test_the_judge_holds_to_the_sandboxs_memory_limit(tmp_path):
    """What a kernel sends, the judge parses: 60 MB of JSON that parses into 21 million lists (over a GB) would
    pass the sandbox's memory limit on to tito's side. The judge runs under the kernel's limit, so the test ends in
    its MemoryError. Here the test is the hostile kernel, speaking the wire format to a real judge process (through
    autograde, the seconds such a bomb takes would race the cell's time limit)."""
    tests = tmp_path / "tests.json"
    tests.write_text(json.dumps({"bombed": "Tensor\n"}))
    path = str(tmp_path / "judge")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    bomb = b'{"op":"value","value":{"list":[' + b'[],' * (20 * 2**20) + b'[]]}}'

    async def bombed() -> dict:
        judge = JudgeProcess(lambda: path, tests, Limits(cell_seconds=60, memory_mb=1024))
        await judge.start_test("bombed")
        connection, _ = await asyncio.to_thread(listener.accept)
        await asyncio.to_thread(wire.receive, connection)  # the judge asks for the name Tensor
        await asyncio.to_thread(connection.sendall, struct.pack("!QQ", len(bomb), 0) + bomb)
        try:
            return await judge.result("bombed", 60)
        finally:
            await judge.close()
            connection.close()

    result = asyncio.run(bombed())
    listener.close()
    assert result["error"]["ename"] == "MemoryError", result["error"]


def test_a_verdict_held_up_counts_for_no_other_test(graded):
    """The held-up constructors test fails (tito stopped waiting); the arithmetic test after it keeps its own
    verdict (wrong), not the late one."""
    _, grades, _ = graded
    assert sorted(grades["held_up"].failed) == ["test-tensor-arithmetic", "test-tensor-constructors"]


def test_nobody_elses_grade_or_file_changes(graded, course):
    attacks, grades, before = graded
    assert _fingerprint(course_folder(course), exclude=set(attacks) - {"honest"}) == before
    assert grades["honest"].score == FULL


# ------------------------------------------------------------------------------------------ module 06

GRADCHECK_TEST = "test-operations-gradcheck"
# The kernel's side of the judge patched to watch the reference checker (its leaves, the weights it passes to
# backward) and answer its finite-difference reads of `_value` with whatever agrees with the student's backward:
# the checker's numbers come from the student's process, so any backward rule passes.
AGREEING_CHECKER = """import numpy as np
link = get_ipython().kernel._judge
perform = type(link).perform
seen = {"made": [], "tracked": []}

def agreeing_value(out):
    # what the checker's finite difference must see to agree with backward: the weighted sum moves by the
    # analytic gradient times the nudge
    tracked, weights = seen["tracked"], seen["weights"]
    for leaf, original, nudged in zip(tracked, seen["originals"], seen["made"][-len(tracked):]):
        step = np.array(_value(nudged), dtype=float) - original
        if step.any():
            k = int(np.argmax(np.abs(step)))
            change = np.asarray(leaf.grad, dtype=float).reshape(-1)[k] * step.reshape(-1)[k]
            return change * weights / np.sum(weights * weights)
    return np.zeros_like(weights)

def lying_perform(self, message, args):
    if message.get("op") != "call":
        return perform(self, message, args)
    target, positional, named = args
    if target is _value and positional and getattr(positional[0], "requires_grad", True) is False and seen["tracked"]:
        return agreeing_value(positional[0])
    result = perform(self, message, args)
    if target is _value:
        seen["made"] = []
    elif target is Variable and "requires_grad" in named:
        seen["made"].append(result)
    elif getattr(target, "__name__", "") == "backward" and positional:
        seen["weights"] = np.asarray(positional[0], dtype=float)
        seen["tracked"] = [v for v in seen["made"] if v.requires_grad]
        seen["originals"] = [np.array(_value(v), dtype=float) for v in seen["tracked"]]
    return result

type(link).perform = lying_perform"""


@pytest.fixture(scope="module")
def operations(tmp_path_factory):
    """Module 06 on its own course copy: its tests check gradients with the lesson's reference checker, which
    only the judge holds (a hidden-tests region of the gradcheck test), so a student may try to fake it."""
    root = copy_course(tmp_path_factory.mktemp("forgery06") / "repo")
    settings = root / "settings.ini"
    settings.write_text(re.sub(r"timeout = \d+", "timeout = 60", settings.read_text(), count=1))
    course = load_course(root)
    module = course.module("06_operations")
    release(course, module)
    folder = course_folder(course)
    source = nbformat.read(folder.source(module), as_version=4)
    released = nbformat.read(folder.release(module), as_version=4)
    wrong = copy.deepcopy(source)
    right_rule, wrong_rule = "(b, lambda g: -g * out / bv))", "(b, lambda g: g * out / bv))"
    assert sum(cell.source.count(right_rule) for cell in wrong.cells) == 1, "divide's rule for b is not where expected"
    for cell in wrong.cells:
        cell.source = cell.source.replace(right_rule, wrong_rule)
    # Redefined in the student's process: the checker's name (unknown there), the student's own checker (whose
    # test has already run) with its code swapped, and the helper that calls the checker.
    checker_name = "reference_gradcheck = lambda *args, **kwargs: True\ncheck_all = lambda cases: None"
    code_swapped = ("reference_gradcheck = gradcheck\n"
                    "reference_gradcheck.__code__ = (lambda *args, **kwargs: True).__code__\n"
                    "print('kernel fooled', gradcheck(None))")
    students = {"solver": source, "plain": wrong,
                "checker_name": _after(wrong, GRADCHECK_TEST, checker_name),
                "code_swapped": _after(wrong, GRADCHECK_TEST, code_swapped),
                "blank_code_swapped": _after(released, GRADCHECK_TEST, code_swapped),
                "agreeing_checker": _after(wrong, GRADCHECK_TEST, AGREEING_CHECKER)}
    for student, notebook in students.items():
        path = folder.submitted(student, module)
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, path)
    return course, {grade.student: grade for grade in autograde(course, module, jobs=2)}


def test_a_redefined_checker_cannot_pass_a_wrong_rule(operations):
    """A wrong divide rule loses exactly the test that checks it, with or without the reference checker's name
    redefined or the code of the student's checker swapped in the student's process."""
    course, grades = operations
    assert grades["solver"].score == grades["solver"].max_score, grades["solver"].notes
    assert grades["plain"].failed == ["test-operations-divide-power"], grades["plain"].failed
    for student in ("checker_name", "code_swapped"):
        assert grades[student].failed == grades["plain"].failed and grades[student].score == grades["plain"].score, \
            (student, grades[student].failed, grades[student].notes)


def test_a_blank_release_with_the_checkers_code_swapped_scores_0(operations):
    course, grades = operations
    assert grades["blank_code_swapped"].score == 0, grades["blank_code_swapped"].notes
    notebook = nbformat.read(course_folder(course).autograded("code_swapped", course.module("06_operations")),
                             as_version=4)
    printed = "".join(output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", []))
    assert "kernel fooled True" in printed, "the swap did not take in the student's process"


def test_a_checker_answered_from_the_students_process_cannot_pass_a_wrong_rule(operations):
    """The reference checker takes its expected values and finite differences from each case's NumPy form, in
    the judge: a kernel answering its reads with numbers that agree with a wrong backward gains nothing."""
    _, grades = operations
    assert grades["agreeing_checker"].failed == grades["plain"].failed, grades["agreeing_checker"].failed
