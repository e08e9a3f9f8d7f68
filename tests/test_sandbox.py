"""The grader's kernel sandbox (bubblewrap): what a submission sees and may do in there.

Each probe is an exercise cell whose function returns True when the sandbox holds, or a
string saying what it found; all probes are graded in one batch on one worker slot, so
the notebooks run one after another in the same warm worker, as in a class. The tests
skip, saying why, only where bubblewrap cannot run.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import grading_fixtures as fx
from grading_fixtures import torch_allowed  # noqa: F401
import labkit
from labkit import exercises
from labkit.exercises import Case, exercise, get
from labkit.grade import Limits, grade_notebooks, sandbox
from labkit.grade.__main__ import main
from labkit.grade.cache import default_directory
from labkit.grade.grader import grade_source

WHY = sandbox.problem()
needs_bwrap = pytest.mark.skipif(WHY is not None, reason=f"bubblewrap: {WHY}")

PROBE = "98.1"
TMP_MARK = "/tmp/left-by-the-previous-notebook"


def _probe(body: str, preamble: str = "") -> str:
    lines = "".join(f"    {line}\n" for line in body.strip("\n").splitlines())
    return f"{preamble}\ndef probe():\n{lines}"


PROBES = {
    "other packages do not exist": _probe(
        "import importlib.util\n"
        "found = [m for m in ('torch', 'scipy', 'labkit', 'IPython', 'pytest')\n"
        "         if importlib.util.find_spec(m) is not None]\n"
        "return found == [] or f'found {found}'"
    ),
    "host paths do not exist": _probe(
        "hits = [p for p in HOST_PATHS if os.path.exists(p)]\n"
        "return hits == [] or f'sees {hits}'",
        "import os",
    ),
    "no process is visible": _probe(
        "return os.listdir('/proc') == [] or f'/proc holds "
        '{os.listdir("/proc")[:5]}\'',
        "import os",
    ),
    "no process can start": _probe(
        "try:\n    pid = os.fork()\nexcept PermissionError:\n    return True\n"
        "if pid == 0:\n    os._exit(0)\nreturn 'forked'",
        "import os",
    ),
    "no namespace can be made": _probe(
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "return libc.unshare(0x10000000) == -1 or 'unshared a user namespace'",
        "import ctypes",
    ),
    "only /tmp is writable": _probe(
        "open('/tmp/mine', 'w').write('x')\n"
        "refused = []\n"
        "for path in ('/mine', os.path.join(os.path.dirname(np.__file__), 'x.py')):\n"
        "    try:\n        open(path, 'w')\n    except OSError:\n"
        "        refused.append(path)\n"
        "return len(refused) == 2 or f'wrote {refused}'",
        "import os\nimport numpy as np",
    ),
    "no network": _probe(
        "try:\n    socket.create_connection(('127.0.0.1', 9), timeout=2)\n"
        "except OSError:\n    return True\nreturn 'connected'",
        "import socket",
    ),
    "a notebook leaves nothing for the next": _probe(
        f"seen = os.path.exists({TMP_MARK!r})\n"
        f"open({TMP_MARK!r}, 'w').write('x')\n"
        "return not seen or 'saw the previous notebook'",
        "import os",
    ),
}


def _register_probe() -> None:
    exercises._REGISTRY.pop(PROBE, None)
    exercises._CASES.pop(PROBE, None)
    exercise(
        PROBE,
        title="Probe the sandbox",
        points=1,
        function="probe",
        reference=lambda: True,
        hints=("Return True.",),
        compare=lambda expected, got: None if got is True else f"found: {got}",
    )(lambda: [Case("the sandbox", (), True)])


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    """Every probe as a notebook; a second copy of the last one, to see the first."""
    _register_probe()
    folder = tmp_path_factory.mktemp("probes")
    host = [
        os.path.dirname(os.path.dirname(np.__file__)),  # site-packages
        os.path.dirname(labkit.__file__),
        str(folder),
        str(default_directory()),  # the grader's caches
        os.path.join(os.path.expanduser("~"), ".cache"),
        "/etc/passwd",
    ]
    names = [*PROBES, "a notebook leaves nothing for the next"]
    paths = []
    for k, name in enumerate(names):
        cell = PROBES[name].replace("HOST_PATHS", repr(host))
        nb = fx.notebook({PROBE: cell}, scratch=False)
        paths.append(folder / f"p{k}.ipynb")
        paths[-1].write_text(json.dumps(nb))
    try:
        graded = grade_notebooks(paths, jobs=1, cache=False, isolation="bwrap")
    finally:
        exercises._REGISTRY.pop(PROBE, None)
        exercises._CASES.pop(PROBE, None)
    results = [s.exercises[0] for s in graded]
    return dict(zip(PROBES, results)), results[-1], graded


@needs_bwrap
@pytest.mark.parametrize("name", PROBES)
def test_the_sandbox_holds(probed, name):
    result = probed[0][name]
    assert result.status == "passed", result.feedback


@needs_bwrap
def test_each_notebook_has_a_fresh_tmpfs(probed):
    again = probed[1]
    assert again.status == "passed", again.feedback


@needs_bwrap
def test_the_gradebook_records_the_isolation(probed):
    assert {s.as_dict()["isolation"] for s in probed[2]} == {"bwrap"}


BYPASSES = {
    "import torch": "import torch\n",
    "host site-packages on sys.path": (
        "import sys\nsys.path.append(SITE)\nimport torch\n"
    ),
    "importlib by path": (
        "import importlib.util\n"
        "spec = importlib.util.spec_from_file_location('torch', SITE + "
        "'/torch/__init__.py')\n"
        "torch = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(torch)\n"
    ),
    "sys.modules": "import sys\ntorch = sys.modules['torch']\n",
    "labkit's exercises": "from labkit.exercises import get\n",
}


@pytest.fixture
def fixtures():
    fx.register()
    yield
    fx.unregister()


@needs_bwrap
@pytest.mark.usefixtures("fixtures")
@pytest.mark.parametrize("name", BYPASSES)
def test_a_module_the_exercise_does_not_allow_cannot_be_reached(name):
    """Exercise 99.1 allows numpy only: torch, scipy and labkit are not in the sandbox
    at all, whichever way the cell reaches for them."""
    site = os.path.dirname(os.path.dirname(np.__file__))
    cell = BYPASSES[name].replace("SITE", repr(site)) + fx.SOLUTIONS["99.1"]
    result = grade_source(get("99.1"), cell, isolation="bwrap")
    assert result.score == 0 and result.status == "error", result.feedback
    if name in ("import torch", "host site-packages on sys.path"):
        assert "exercise 99.1 may use only numpy; your code imports torch" in (
            result.feedback
        )
    if name == "labkit's exercises":
        assert "may use only numpy; your code imports labkit" in result.feedback


@pytest.mark.usefixtures("fixtures", "torch_allowed")
def test_an_exercise_that_allows_torch_sees_it():
    torch_cell = (
        "import torch\n\ndef softmax_rows(Z):\n    Z = torch.tensor(Z)\n"
        "    return {'probs': torch.softmax(Z, 1), 'argmax': Z.argmax(1)}\n"
    )
    result = grade_source(get("99.3"), torch_cell)
    assert result.status == "passed", result.feedback
    numpy_only = torch_cell.replace("softmax_rows", "add_bias")
    result = grade_source(get("99.1"), numpy_only)
    assert "may use only numpy; your code imports torch" in result.feedback


@pytest.mark.usefixtures("fixtures")
def test_check_runs_the_cell_with_the_graders_limits(capsys, monkeypatch):
    """check grades the cell's source (IPython keeps it in linecache) in the sandbox: a
    loop that never ends is a TIMEOUT, not a hung kernel; names from other cells are
    named beforehand; an input changed in place is named."""
    import linecache

    import labkit.check

    monkeypatch.setattr(
        labkit.grade.grader, "Limits", lambda: Limits(timeout=2.0)
    )  # check's limits, shortened for the test
    cells = {
        "loops": "import numpy as np\n\ndef add_bias(X, b, *, scale=1.0):\n"
        "    while True:\n        pass\n",
        "helper": "def add_bias(X, b, *, scale=1.0):\n    return helper(X) + b\n",
        "mutates": "def add_bias(X, b, *, scale=1.0):\n    X += b\n    return X\n",
    }
    outputs = {}
    for name, source in cells.items():
        filename = f"/tmp/ipykernel_0/{name}.py"  # as IPython names a cell
        linecache.cache[filename] = (
            len(source),
            None,
            source.splitlines(True),
            filename,
        )
        namespace: dict = {}
        exec(compile(source, filename, "exec"), namespace)
        try:
            labkit.check.check("99.1", namespace["add_bias"])
        finally:
            del linecache.cache[filename]
        outputs[name] = capsys.readouterr().out
    assert "TIMEOUT" in outputs["loops"] and "ran longer than 2 s" in outputs["loops"]
    assert "this cell uses `helper` without defining or importing" in outputs["helper"]
    assert "NameError" in outputs["helper"]
    assert (
        "your function modified its input `X`; return a new array"
        in (outputs["mutates"])
    )


def test_without_bubblewrap_the_command_line_says_how_to_install_it(
    tmp_path, monkeypatch, capsys
):
    fx.register()
    try:
        path = str(fx.write_notebook(tmp_path / "99_a.ipynb", fx.SOLUTIONS))
        monkeypatch.setattr(
            "labkit.grade.__main__.problem", lambda: "bwrap is not installed"
        )
        assert main([path, "--no-cache"]) == 3
        err = capsys.readouterr().err
        assert "apt-get install bubblewrap" in err and "--isolation none" in err
        out = tmp_path / "g.json"
        assert (
            main([path, "--no-cache", "--isolation", "none", "--json", str(out)]) == 0
        )
        [graded] = json.loads(out.read_text())
        assert graded["isolation"] == "none" and graded["score"] == 6
    finally:
        fx.unregister()


@pytest.mark.usefixtures("fixtures")
def test_no_isolation_shows_the_same_modules():
    """Without bubblewrap the worker sees the same module layout: honest code gets the
    same verdict (an import outside the exercise's modules fails the same way)."""
    cell = "import scipy\n" + fx.SOLUTIONS["99.1"]
    result = grade_source(get("99.1"), cell, isolation="none")
    assert (
        "exercise 99.1 may use only numpy; your code imports scipy" in result.feedback
    )
