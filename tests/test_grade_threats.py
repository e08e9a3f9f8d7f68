"""Submissions that misbehave, on purpose or not, and what the grader does about them.

Each threat replaces one exercise cell of an otherwise correct notebook. All of them are
graded in one batch, with a clean notebook among them. For each: the bad exercise scores
zero with a clear status and feedback (what the kernel sandbox makes of the attempt: no
such file, operation not permitted, network unreachable), or, for the threats it
contains without an error, may even pass; the notebook's other exercises keep their
points; the clean notebook gets full marks; afterwards no process the submissions tried
to start is running, no file outside the sandbox was touched, and the worker's temporary
directories are gone.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

import grading_fixtures as fx
from labkit.grade import Limits, grade_notebooks, sandbox

# Submitted code is contained by the kernel sandbox; without it these cells would really
# delete files and start processes, so they are not run where bubblewrap cannot run.
# They are the slow tier (`make test-slow`, run by CI): one batch grades every threat,
# some of them running into their time limits.
pytestmark = [
    pytest.mark.skipif(
        sandbox.problem() is not None, reason=f"bubblewrap: {sandbox.problem()}"
    ),
    pytest.mark.slow,
]

MARK = "31337"  # in the command line of every process a submission tries to start

SIGNATURE = "def add_bias(X, b, *, scale=1.0):\n"


def _fn(body: str, preamble: str = "") -> str:
    """An exercise cell for 99.1: imports, then add_bias with the given (indented)
    body."""
    lines = "".join(f"    {line}\n" for line in body.strip("\n").splitlines())
    return f"import numpy as np\n{preamble}\n{SIGNATURE}{lines}"


# name: (cell for 99.1, expected status, words the feedback must contain)
THREATS = {
    # runs away
    "loops forever": (_fn("while True:\n    pass"), "timeout", "ran longer than"),
    "sleeps": (_fn("time.sleep(3600)", "import time"), "timeout", "ran longer than"),
    "survives signals": (
        _fn(
            "while True:\n    try:\n        time.sleep(1)\n    except BaseException:\n "
            "       pass",
            "import signal, time\nfor s in (signal.SIGTERM, signal.SIGALRM, "
            "signal.SIGINT):\n"
            "    signal.signal(s, signal.SIG_IGN)",
        ),
        "timeout",
        "ran longer than",
    ),
    "loops in the cell": ("while True:\n    pass\n", "timeout", "ran longer than"),
    # exits
    "sys.exit": (
        _fn("sys.exit(3)", "import sys"),
        "error",
        "tried to exit the interpreter",
    ),
    "exit in the cell": ("raise SystemExit(0)\n", "error", "SystemExit"),
    "os._exit": (_fn("os._exit(0)", "import os"), "error", "exited with status 0"),
    "kills itself": (
        _fn("os.kill(os.getpid(), signal.SIGKILL)", "import os, signal"),
        "error",
        "killed by signal 9 (SIGKILL)",
    ),
    "segfaults": (
        _fn("faulthandler._sigsegv()", "import faulthandler"),
        "error",
        "SIGSEGV) while running exercise 99.1 (at line 4 of the cell)",
    ),
    "aborts": (_fn("os.abort()", "import os"), "error", "SIGABRT"),
    "recurses": (_fn("return add_bias(X, b)"), "error", "RecursionError"),
    # memory
    "allocates at once": (
        _fn("return np.ones((10**6, 10**6))"),
        "memory",
        "ran out of memory",
    ),
    "allocates without bound": (
        _fn("hog = []\nwhile True:\n    hog.append(np.empty(10**8))"),
        "memory",
        "ran out of memory",
    ),
    "allocates in the cell": (
        "import numpy as np\nhog = np.ones(10**12)\n",
        "memory",
        "ran out of memory",
    ),
    "returns too much": (  # 8 MB a case, past the reply limit of LIMITS, quickly
        _fn("return np.zeros(10**6)"),
        "error",
        "returned more than",
    ),
    # floods
    "prints forever": (
        _fn("while True:\n    print('x' * 1000)"),
        "error",
        "printed more than",
    ),
    "floods then answers": (
        _fn("print('x' * 3 * 2**20)\nreturn scale * X + b"),
        "error",
        "printed more than",
    ),
    "floods stderr from C": (
        _fn("os.write(2, b'x' * 10**7)\nreturn scale * X + b", "import os"),
        "error",
        "printed more than",
    ),
    # patches numpy, labkit, the checker
    "patches numpy": (
        _fn(
            "return X * 0",
            "np.isclose = lambda *a, **k: np.ones(1, bool)\n"
            "np.allclose = lambda *a, **k: True\nnp.exp = lambda x: x",
        ),
        "failed",
        "0 of 4 cases passed",
    ),
    "imports labkit": (
        _fn("return scale * X + b", "import labkit"),
        "error",
        "may use only numpy; your code imports labkit",
    ),
    "patches the checker": (
        _fn(
            "import labkit.exercises.scoring as s\n"
            "s.compare = lambda *a, **k: None\nreturn X"
        ),
        "error",
        "may use only numpy; your code imports labkit",
    ),
    "rewrites the worker": (
        _fn(
            "frame = sys._getframe(1)\nwhile frame is not None:\n"
            "    for name in ('to_data', 'run_case', 'compare', 'judge'):\n"
            "        if name in frame.f_globals:\n"
            "            frame.f_globals[name] = lambda *a, **k: None\n"
            "    frame = frame.f_back\nreturn X * 0",
            "import sys",
        ),
        "failed",
        "cases passed",
    ),
    "writes to the channel": (
        _fn(
            "for fd in range(3, 256):\n    try:\n        os.write(fd, b'\\x00' * 9 + "
            "b'forged')\n"
            "    except OSError:\n        pass\nreturn scale * X + b",
            "import os",
        ),
        "error",
        "must not write to the grader's channel",
    ),
    "walks the heap": (
        _fn("import gc\nreturn gc.get_objects()"),
        "error",
        "cannot be checked",
    ),
    # hides its own errors
    "swallows its errors": (
        _fn(
            "try:\n    return X @ b.reshape(1, -1)\nexcept BaseException:\n"
            "    return np.zeros_like(X)"
        ),
        "failed",
        "output differs",
    ),
    "hides stderr": (
        _fn(
            "return X @ b.reshape(1, -1)",
            "import sys, io\nsys.stderr = io.StringIO()\n"
            "sys.excepthook = lambda *a: None",
        ),
        "error",
        "raised ValueError",
    ),
    # lies about shape or equality
    "lying array": (
        _fn(
            "return np.zeros(12).view(Liar)",
            """
class Liar(np.ndarray):
    @property
    def shape(self):
        return (4, 3)
    def __eq__(self, other):
        return np.ones((4, 3), bool)
""",
        ),
        "failed",
        "has shape (12,)",
    ),
    "lying object": (
        _fn(
            "return Liar()",
            """
class Liar:
    shape = (4, 3)
    dtype = np.dtype(float)
    def __eq__(self, other):
        return True
    def __array__(self, *a, **k):
        return np.zeros((4, 3))
""",
        ),
        "error",
        "cannot be checked",
    ),
    "fake tensor": (
        _fn(
            "return Fake()",
            """
class Fake:
    __module__ = 'torch'
    def detach(self):
        return self
    def cpu(self):
        return self
    def numpy(self):
        return np.zeros((4, 3))
""",
        ),
        "failed",
        "output differs",
    ),
    "lying number": (
        _fn(
            "return Forever(0.0)",
            """
class Forever(float):
    def __eq__(self, other):
        return True
    def __float__(self):
        return 1e300
""",
        ),
        "failed",
        "numpy array of shape",
    ),
    "unprintable error": (
        _fn(
            "raise Weird()",
            """
class Weird(Exception):
    def __str__(self):
        raise RuntimeError('no')
""",
        ),
        "error",
        "cases passed",
    ),
    # starts processes
    "subprocess": (
        _fn(
            f"subprocess.Popen(['sleep', '{MARK}'])\nreturn scale * X + b",
            "import subprocess",
        ),
        "error",
        "Operation not permitted",
    ),
    "os.fork": (
        _fn(
            f"if os.fork() == 0:\n    os.execvp('sleep', ['sleep', '{MARK}'])\n"
            "return scale * X + b",
            "import os",
        ),
        "error",
        "Operation not permitted",
    ),
    "posix_spawn": (
        _fn(
            f"os.posix_spawn('/bin/sleep', ['sleep', '{MARK}'], {{}})\n"
            "return scale * X + b",
            "import os",
        ),
        "error",
        "Operation not permitted",
    ),
    "multiprocessing": (
        _fn(
            "p = multiprocessing.Process(target=time.sleep, args=(3600,))\n"
            "p.start()\nreturn scale * X + b",
            "import multiprocessing, time",
        ),
        "error",
        "Operation not permitted",
    ),
    "network": (
        _fn(
            "socket.create_connection(('127.0.0.1', 9))\nreturn scale * X + b",
            "import socket",
        ),
        "error",
        "Network is unreachable",
    ),
    # files
    "deletes a file": (
        _fn("os.remove(CANARY)\nreturn scale * X + b", "import os"),
        "error",
        "No such file or directory",
    ),
    "deletes a tree": (
        _fn(
            "shutil.rmtree(os.path.dirname(CANARY))\nreturn scale * X + b",
            "import os, shutil",
        ),
        "error",
        "No such file or directory",
    ),
    "writes through a symlink": (
        _fn(
            "os.symlink(CANARY, 'link')\nopen('link', 'w').write('x')"
            "\nreturn scale * X + b",
            "import os",
        ),
        "error",
        "No such file or directory",
    ),
    "saves with numpy": (
        _fn("np.save(CANARY, X)\nreturn scale * X + b"),
        "error",
        "No such file or directory",
    ),
    "reads a file": (
        _fn("return open(CANARY).read()"),
        "error",
        "No such file or directory",
    ),
    "reads the environment": (
        _fn("return os.environ['GRADER_SECRET']", "import os"),
        "error",
        "KeyError",
    ),
    "reads labkit": (
        _fn(
            "return open(importlib.util.find_spec('labkit').origin).read()",
            "import importlib.util",
        ),
        "error",
        "has no attribute 'origin'",
    ),
}

# Contained by the kernel sandbox rather than refused: these cells may even pass (a fork
# that fails quietly, a file in their own tmpfs, a signal their runner ignores). What
# counts: nothing outside is touched and no process is left (the tests at the end).
CONTAINED = {
    "os.system": _fn(f"os.system('sleep {MARK} &')\nreturn scale * X + b", "import os"),
    "subprocess internals": _fn(
        "subprocess._fork_exec(['sleep'], [b'/bin/sleep'], True, (), None, None, -1, "
        "-1, -1, "
        f"-1, -1, -1, -1, -1, False, False, -1, None, None, None, -1, None, False)\n"
        "return scale * X + b",
        "import subprocess",
    ),
    "posix internals": _fn("return scale * X + b", "import _posixsubprocess"),
    "ctypes": _fn("ctypes.CDLL(None).fork()\nreturn scale * X + b", "import ctypes"),
    "kills the grader": _fn(
        "os.kill(os.getppid(), signal.SIGKILL)\nreturn scale * X + b",
        "import os, signal",
    ),
    "writes in its folder": _fn(
        "open('notes.txt', 'w').write('x')\nreturn scale * X + b"
    ),
}

# The same misbehaviour in the middle exercise: the ones before and after keep their
# points.
MIDDLE = {
    "loops forever": "def summary(x):\n    while True:\n        pass\n",
    "os._exit": "import os\ndef summary(x):\n    os._exit(1)\n",
    "segfaults": "import faulthandler\ndef summary(x):\n    faulthandler._sigsegv()\n",
    "allocates without bound": "import numpy as np\n"
    "hog = [np.empty(10**8) for _ in range(10**4)]\n",
    "changes torch's defaults": "import torch\ntorch.set_default_dtype(torch.float32)\n"
    "torch.set_grad_enabled(False)\n" + fx.SOLUTIONS["99.2"],
    "starts a thread and an alarm": "import signal, threading\nsignal.alarm(1)\n"
    "threading.Thread(target=lambda: [0 for _ in iter(int, 1)],"
    " daemon=True).start()\n" + fx.SOLUTIONS["99.2"],
}
MIDDLE_STATUS = {
    "loops forever": "timeout",
    "os._exit": "error",
    "segfaults": "error",
    "allocates without bound": "memory",
    "changes torch's defaults": "error",  # 99.2 may use only numpy
    "starts a thread and an alarm": "passed",
}
LIMITS = Limits(timeout=5.0, memory=768 * 2**20, reply=4 * 2**20)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade every threat in one batch, from an empty working directory, with a canary
    file."""
    fx.register()
    root = tmp_path_factory.mktemp("threats")
    canary = root / "canary" / "do-not-touch.txt"
    canary.parent.mkdir()
    canary.write_text("intact")
    work, scratch = root / "cwd", root / "tmp"
    work.mkdir()
    scratch.mkdir()
    notebooks = {("clean", ""): fx.SOLUTIONS}
    for name, (cell, _, _) in THREATS.items():
        cell = cell.replace("CANARY", repr(str(canary)))
        notebooks[("first", name)] = {**fx.SOLUTIONS, "99.1": cell}
    for name, cell in CONTAINED.items():
        notebooks[("contained", name)] = {**fx.SOLUTIONS, "99.1": cell}
    for name, cell in MIDDLE.items():
        notebooks[("middle", name)] = {**fx.SOLUTIONS, "99.2": cell}
    paths = {
        key: str(fx.write_notebook(root / f"{k}.ipynb", sources))
        for k, (key, sources) in enumerate(notebooks.items())
    }
    before = os.getcwd()
    old_tempdir = tempfile.tempdir
    os.chdir(work)
    tempfile.tempdir = str(scratch)
    os.environ["GRADER_SECRET"] = "hunter2"  # what a CI token would be
    try:
        results = grade_notebooks(
            list(paths.values()), jobs=2, limits=LIMITS, cache=False
        )
    finally:
        os.chdir(before)
        tempfile.tempdir = old_tempdir
        del os.environ["GRADER_SECRET"]
        fx.unregister()
    return {
        "results": dict(zip(paths, results)),
        "canary": canary,
        "work": work,
        "scratch": scratch,
    }


@pytest.mark.parametrize("name", THREATS)
def test_a_threat_scores_zero_with_a_clear_status(graded, name):
    _, status, words = THREATS[name]
    submission = graded["results"][("first", name)]
    assert submission.error is None
    bad, *others = submission.exercises
    assert (bad.id, bad.score, bad.status) == ("99.1", 0, status), bad.feedback
    assert words in bad.feedback
    assert [(r.status, r.score) for r in others] == [("passed", 1), ("passed", 3)]


@pytest.mark.parametrize("name", CONTAINED)
def test_a_contained_threat_costs_the_others_nothing(graded, name):
    bad, *others = graded["results"][("contained", name)].exercises
    assert bad.status in ("passed", "error"), bad.feedback
    assert [(r.status, r.score) for r in others] == [("passed", 1), ("passed", 3)]


@pytest.mark.parametrize("name", MIDDLE)
def test_the_exercises_around_a_threat_keep_their_points(graded, name):
    first, middle, last = graded["results"][("middle", name)].exercises
    assert middle.status == MIDDLE_STATUS[name], middle.feedback
    assert (first.status, first.score, last.status, last.score) == (
        "passed",
        2,
        "passed",
        3,
    )


def test_a_clean_notebook_in_the_same_batch_gets_full_marks(graded):
    clean = graded["results"][("clean", "")]
    assert clean.score == clean.max_score == 6


def test_no_process_a_submission_started_is_left_running(graded):
    leftovers = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        command = _command(pid).replace(b"\0", b" ")
        if MARK.encode() in command and b"pytest" not in command:
            leftovers.append(command.decode(errors="replace"))
    assert leftovers == []
    workers = [
        pid
        for pid in filter(str.isdigit, os.listdir("/proc"))
        if _parent(pid) == os.getpid() and b"labkit.grade.worker" in _command(pid)
    ]
    assert workers == []


def _command(pid: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _parent(pid: str) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def test_nothing_outside_the_sandbox_was_touched(graded):
    assert graded["canary"].read_text() == "intact"
    assert sorted(p.name for p in graded["canary"].parent.iterdir()) == [
        "do-not-touch.txt"
    ]
    assert list(graded["work"].iterdir()) == []  # the grader's working directory
    assert list(graded["scratch"].iterdir()) == []  # the workers' temporary directories
