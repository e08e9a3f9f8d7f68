"""Attacks on the grader by a hostile submission, each in a batch with correct victims.

Every test here grades a small batch through the real command line, isolation on
(bubblewrap): one attacker notebook (its exercise 99.1 is the attack, 99.2 and 99.3 are
solved) and correct victims. Each attack returns the right answer for 99.1 only if it
got what it was after (a secret, another submission's notebook, the expected values, a
connection, a file written outside), so the attacker's score says whether it won. Every
test also checks the victims' marks, the exit status, the files on disk and the
processes left behind. The attacks on the grader's own process (what it parses and
prints) run once more with ``--isolation none``: no sandbox is needed to hold them.

Attacks first try their payload in the exercise's own process, then in a fresh
interpreter they start (``subprocess``, or ``_posixsubprocess`` loaded under another
name when ``subprocess`` is refused): nothing inside the interpreter can stop the second
route, only the kernel can.

Signals are aimed only at this test's own grader and its workers (found by a marker in
the grader's command line), or at every process id when the attacker sits in a
process-id namespace of its own: without isolation they cannot reach anything else on
the machine.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import grading_fixtures as fx
import pytest

from labkit.grade import sandbox

TESTS = Path(__file__).resolve().parent
# The slow tier (`make test-slow`, run by CI): each attack grades a whole batch.
pytestmark = pytest.mark.slow


BWRAP_PROBLEM = sandbox.problem()  # why the isolated tests skip, if they do

# ------------------------------------------------------------------ the attacker's kit

# Defined in every attack cell: start a fresh interpreter, read what it prints.
KIT = r'''
import os, select, sys, time

_KEEP = []


def spawn(code, *extra, output=True):
    """A fresh interpreter running ``code``; its pid and the read end of its stdout."""
    argv = [sys.executable, "-c", code, *extra]
    try:
        import subprocess

        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if output else subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        _KEEP.append(process)
        return process.pid, process.stdout.fileno() if output else None
    except Exception:
        pass
    import importlib.machinery
    import importlib.util

    path = next(
        os.path.join(folder, name)
        for folder in sys.path
        if os.path.isdir(folder)
        for name in os.listdir(folder)
        if name.startswith("_posixsubprocess.")
    )
    name = "renamed._posixsubprocess"  # the same init function, another name
    loader = importlib.machinery.ExtensionFileLoader(name, path)
    module = loader.create_module(importlib.util.spec_from_loader(name, loader))
    read, write = os.pipe()
    error_read, error_write = os.pipe()
    pid = module.fork_exec(
        argv, [os.fsencode(sys.executable)], True, (), None, None,
        -1, -1, -1, write if output else -1, -1, -1, error_read, error_write,
        True, True, -1, None, None, None, -1, None, False,
    )
    os.close(write)
    os.close(error_write)
    return pid, read


def run(code, *extra, seconds=20.0):
    """What a fresh interpreter running ``code`` prints (waits at most ``seconds``)."""
    _, fd = spawn(code, *extra)
    data, end = b"", time.monotonic() + seconds
    while time.monotonic() < end:
        if select.select([fd], [], [], max(0.0, end - time.monotonic()))[0]:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            data += chunk
    return data


def attempt(payload):
    """Run ``payload`` (it sets WON) here, then in a fresh interpreter: did it win?"""
    try:
        scope = dict(globals())
        exec(payload, scope)
        if scope.get("WON"):
            return True
    except BaseException:
        pass
    try:
        out = run(KIT_SOURCE + payload + "\nprint('ATTACK' + '-WON' if WON else '')")
        return b"ATTACK-WON" in out
    except BaseException:
        return False
'''

CELL = '''import numpy as np
KIT_SOURCE = {kit!r}
exec(KIT_SOURCE)
PAYLOAD = {payload!r}
_won = []


def add_bias(X, b, *, scale=1.0):
    """The right answer only if the attack won."""
    if not _won:
        _won.append(attempt(PAYLOAD))
    return scale * X + b if _won[0] else X * 0
'''


def attack_cell(payload: str, forever: bool = False, **values: object) -> str:
    """An exercise cell for 99.1 that runs ``payload`` with ``values`` bound as
    constants (and then, ``forever``, burns CPU until it is stopped)."""
    constants = "".join(f"{name} = {value!r}\n" for name, value in values.items())
    cell = CELL.format(kit=KIT, payload=constants + payload)
    if forever:
        cell = cell.replace(
            "    return scale", "    while True:\n        pass\n    return scale"
        )
    return cell


# ------------------------------------------------------------------ running the grader

# The grader's command line, with the fixture exercises registered and its peak memory
# kept.
RUNNER = """
import sys
sys.path[:0] = [{tests!r}, {root!r}]
import grading_fixtures
grading_fixtures.register()
from labkit.grade.__main__ import main
code = main(sys.argv[1:])
with open("/proc/self/status") as f:
    peak = [line.split()[1] for line in f if line.startswith("VmHWM:")][0]
with open({peak!r}, "w") as f:
    f.write(peak)
sys.exit(code)
"""


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    peak: (
        int  # the grader process's peak resident memory, in bytes (0 if it was killed)
    )
    grades: dict  # from the JSON gradebook: file name -> its entry
    csv_rows: list
    json_bytes: bytes
    csv_bytes: bytes


class Class:
    """A folder of submissions, a secret beside it, a cache, the grader's own places."""

    def __init__(self, root: Path, isolation: str = "bwrap"):
        self.root = root
        self.isolation = isolation
        self.marker = "m" + secrets.token_hex(8)  # in the grader's command line only
        self.token = "t" + secrets.token_hex(16)  # the secret the attackers want
        for name in ("class", "secret", "cache", "cwd", "tmp", "home", "out"):
            (root / name).mkdir()
        self.submissions = root / "class"
        self.secret = root / "secret" / "token.txt"
        self.secret.write_text(self.token)
        self.cache = root / "cache"
        self.out = root / "out" / self.marker
        self.out.mkdir()
        self.json = self.out / "grades.json"
        self.csv = self.out / "grades.csv"

    def notebook(self, name: str, **cells: str) -> Path:
        sources = {**fx.SOLUTIONS, **cells}
        return fx.write_notebook(self.submissions / f"{name}.ipynb", sources)

    def victims(self, count: int = 2) -> list[Path]:
        return [self.notebook(f"victim{k}") for k in range(count)]

    def grade(
        self,
        notebooks: list,
        *options: str,
        timeout: float = 10.0,
        jobs: int = 2,
        cache: bool = True,
        env: dict | None = None,
        seconds: float = 600.0,
    ) -> Run:
        peak = self.root / "peak"
        peak.unlink(missing_ok=True)
        command = [
            sys.executable,
            "-c",
            RUNNER.format(tests=str(TESTS), root=str(TESTS.parent), peak=str(peak)),
            *notebooks,
            "--isolation",
            self.isolation,
            "--jobs",
            str(jobs),
            "--timeout",
            str(timeout),
            "--json",
            str(self.json),
            "--csv",
            str(self.csv),
            "--color",
            "never",
            *(["--cache-dir", str(self.cache)] if cache else []),
            *options,
        ]
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.root / "home"),
            "TMPDIR": str(self.root / "tmp"),
            "LANG": "C.UTF-8",
            "OMP_NUM_THREADS": "1",
            "GRADER_SECRET": self.token,
            **(env or {}),
        }
        try:
            done = subprocess.run(
                command,
                cwd=self.root / "cwd",
                env=environment,
                capture_output=True,
                timeout=seconds,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            self.kill_leftovers()
            raise AssertionError(f"the grader did not finish in {seconds} s") from exc
        json_bytes = self.json.read_bytes() if self.json.exists() else b""
        csv_bytes = self.csv.read_bytes() if self.csv.exists() else b""
        grades = {}
        if json_bytes:
            for entry in _entries(json.loads(json_bytes)):
                grades[os.path.basename(entry["submission"])] = entry
        rows = list(csv.reader(io.StringIO(csv_bytes.decode("utf-8"))))
        return Run(
            done.returncode,
            done.stdout.decode("utf-8"),
            done.stderr.decode("utf-8", "replace"),
            int(peak.read_text()) * 1024 if peak.exists() else 0,
            grades,
            rows,
            json_bytes,
            csv_bytes,
        )

    def leftovers(self, seconds: float = 10.0) -> list[str]:
        """Command lines of this class's processes still running after ``seconds``."""
        end = time.monotonic() + seconds
        while True:
            found = [
                command.decode("utf-8", "replace")
                for _, command in self._processes()
                if command
            ]
            if not found or time.monotonic() > end:
                return found
            time.sleep(0.2)

    def kill_leftovers(self) -> None:
        for pid, _ in self._processes():
            for sig in (signal.SIGCONT, signal.SIGKILL):
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass

    def _processes(self) -> list[tuple[int, bytes]]:
        """Processes of this test: their command line or environment names its folder
        or marker (the attackers' processes carry the marker or inherit the folder)."""
        found = []
        needles = (str(self.root).encode(), self.marker.encode())
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            seen = b""
            for part in ("cmdline", "environ"):
                try:
                    seen += Path(f"/proc/{entry}/{part}").read_bytes()
                except OSError:
                    pass
            if any(needle in seen for needle in needles):
                command = _read(f"/proc/{entry}/cmdline").replace(b"\0", b" ")
                found.append((int(entry), command or b"?"))
        return found

    def snapshot(self, *folders: Path) -> dict:
        """Every file under ``folders`` (recursively) with its bytes."""
        files = {}
        for folder in folders:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    files[str(path)] = path.read_bytes()
        return files


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError:
        return b""


def _entries(gradebook) -> list:
    """The submissions of a JSON gradebook (a list, or an object holding one)."""
    if isinstance(gradebook, dict):
        return gradebook["submissions"]
    return gradebook


def _school(tmp_path: Path, isolation: str):
    if isolation == "bwrap" and BWRAP_PROBLEM is not None:
        pytest.skip(BWRAP_PROBLEM)
    fx.register()
    made = Class(tmp_path, isolation)
    yield made
    fx.unregister()
    made.kill_leftovers()


@pytest.fixture
def school(tmp_path):
    """A class graded with isolation on: the attacks that only the kernel stops."""
    yield from _school(tmp_path, "bwrap")


@pytest.fixture(params=["bwrap", "none"])
def any_school(tmp_path, request):
    """A class graded with isolation on, then off: what the grader's own process
    holds."""
    yield from _school(tmp_path, request.param)


def score(run: Run, name: str, exercise: str | None = None) -> float:
    entry = run.grades[f"{name}.ipynb"]
    if exercise is None:
        return entry["score"]
    return {e["id"]: e["score"] for e in entry["exercises"]}[exercise]


def assert_victims_full(run: Run, count: int = 2) -> None:
    for k in range(count):
        entry = run.grades[f"victim{k}.ipynb"]
        assert entry["score"] == entry["max_score"] == 6, entry


def assert_attacker_lost(run: Run, name: str = "attacker") -> None:
    entry = run.grades[f"{name}.ipynb"]
    first = {e["id"]: e for e in entry["exercises"]}["99.1"]
    assert first["score"] == 0, (name, first)


def grade_attack(school: Class, attackers: list, victims: list) -> Run:
    """Grade the attackers among the victims: the batch ends normally, every victim
    keeps full marks and every attacker's attacking exercise (99.1) scores nothing."""
    run = school.grade([*attackers, *victims], timeout=30)
    assert run.code == 0, run.stderr
    assert_victims_full(run)
    for attacker in attackers:
        assert_attacker_lost(run, attacker.stem)
    return run


def assert_no_leftovers(school: Class) -> None:
    assert school.leftovers() == []


# -------------------------------------------------------------------------------- read

READ_DIRFD = """
import os
WON = False
folder = os.open(SECRET_DIR, os.O_RDONLY | os.O_DIRECTORY)
WON |= TOKEN.encode() in os.read(os.open("token.txt", os.O_RDONLY, dir_fd=folder), 999)
others = os.open(CLASS_DIR, os.O_RDONLY | os.O_DIRECTORY)
victim = os.open("victim0.ipynb", os.O_RDONLY, dir_fd=others)
WON |= b"add_bias" in os.read(victim, 99999)
"""

READ_LISTING = """
import os
WON = "token.txt" in os.listdir(SECRET_DIR)
WON |= any(entry.name.startswith("victim") for entry in os.scandir(CLASS_DIR))
WON |= "secret" in os.listdir(os.path.dirname(SECRET_DIR))
"""

READ_PROC = """
import os
WON = False
proc = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY)
for pid in os.listdir(proc):
    if not pid.isdigit():
        continue
    for name in (
        pid + "/environ", pid + "/root" + SECRET_FILE, pid + "/cwd/../secret/token.txt"
    ):
        try:
            fd = os.open(name, os.O_RDONLY, dir_fd=proc)
            WON |= TOKEN.encode() in os.read(fd, 1 << 20)
        except OSError:
            pass
"""


def test_an_attacker_reads_nothing_outside_its_sandbox(school):
    """Another folder through a directory descriptor, a listing, other processes'
    /proc."""
    values = {
        "SECRET_DIR": str(school.secret.parent),
        "SECRET_FILE": str(school.secret),
        "CLASS_DIR": str(school.submissions),
        "TOKEN": school.token,
    }
    victims = school.victims()
    attackers = [
        school.notebook(name, **{"99.1": attack_cell(payload, **values)})
        for name, payload in (
            ("attacker-dirfd", READ_DIRFD),
            ("attacker-listing", READ_LISTING),
            ("attacker-proc", READ_PROC),
        )
    ]
    before = school.snapshot(school.submissions, school.secret.parent)
    run = grade_attack(school, attackers, victims)
    for attacker in attackers:
        assert score(run, attacker.stem) == 4  # its honest exercises keep their points
    assert school.snapshot(school.submissions, school.secret.parent) == before
    assert_no_leftovers(school)


# Reads the expected values of 99.1 from the grader's case cache and returns them.
CHEAT = '''import json, os
import numpy as np
KIT_SOURCE = {kit!r}
exec(KIT_SOURCE)
CACHE = {cache!r}
STEAL = """
import base64, os
WON, FILES = False, []
for folder, _, names in os.walk(CACHE):
    for name in names:
        if name.startswith("99.1-"):
            with open(os.path.join(folder, name), "rb") as f:
                FILES.append(f.read())
            WON = True
print(" ".join(base64.b64encode(data).decode() for data in FILES))
"""


def stolen():
    files = []
    try:
        scope = dict(globals())
        exec(STEAL, scope)
        files = scope["FILES"]
    except BaseException:
        pass
    if not files:
        try:
            import base64
            out = run(KIT_SOURCE + "CACHE = " + repr(CACHE) + "\\n" + STEAL)
            files = [base64.b64decode(word) for word in out.split()]
        except BaseException:
            pass
    cases = []
    for data in files:
        try:
            body = data[data.index(b"LKGRADE1"):]
            size = int.from_bytes(body[8:16], "big")
            tree, area = json.loads(body[16 : 16 + size]), body[16 + size :]

            def array(node):
                dtype, shape, offset, nbytes = node["A"]
                raw = area[offset : offset + nbytes]
                return np.frombuffer(raw, dtype=dtype).reshape(shape)

            for case in tree["L"]:  # (label, args, kwargs, expected, ...)
                items = case["T"]
                cases.append((array(items[1]["T"][0]), array(items[3])))
        except BaseException:
            pass
    return cases


_cases = []


def add_bias(X, b, *, scale=1.0):
    """Nothing implemented: the answer comes from the grader's case cache."""
    if not _cases:
        _cases.append(stolen())
    for given, expected in _cases[0]:
        if given.shape == X.shape and np.array_equal(given, X):
            return expected.copy()
    return X * 0
'''


@pytest.mark.parametrize("no_cache", [False, True], ids=["cache", "no-cache"])
def test_an_attacker_cannot_read_the_case_cache(school, no_cache):
    """The expected values are on disk (cached cases) but not in any sandbox's view;
    with ``--no-cache`` the grader writes nothing at all."""
    # The cases of the batch's exercises, cached by a first, honest run.
    school.grade(school.victims(), cache=True)
    before = school.snapshot(school.cache)
    assert any("cases" in path for path in before)
    attacker = school.notebook(
        "attacker", **{"99.1": CHEAT.format(kit=KIT, cache=str(school.cache))}
    )
    victims = school.victims()
    if no_cache:
        shutil.rmtree(school.cache)
        school.cache.mkdir()
        run = school.grade([attacker, *victims], "--no-cache")
        assert school.snapshot(school.cache) == {}
    else:
        run = school.grade([attacker, *victims])
    assert run.code == 0, run.stderr
    assert_victims_full(run)
    assert_attacker_lost(run)
    assert_no_leftovers(school)


# ------------------------------------------------------------------------------- write


WRITE_SHIFTY_PATH = """
import os
class Shifty:
    calls = 0
    def __init__(self, first):
        self.first = first
    def __fspath__(self):
        Shifty.calls += 1
        return (os.devnull, TARGET)[(Shifty.calls + self.first) % 2]
for first in (0, 1):
    try:
        with open(Shifty(first), "w") as f:
            f.write("pwned")
    except OSError:
        pass
WON = os.path.exists(TARGET)
"""

WRITE_SQLITE = """
import os, sqlite3
connection = sqlite3.connect(TARGET)
connection.execute("create table pwned (x)")
connection.commit()
WON = os.path.exists(TARGET)
"""

WRITE_OPEN = """
import os
with open(TARGET, "w") as f:
    f.write("pwned")
WON = os.path.exists(TARGET)
"""


def test_an_attacker_writes_no_file_outside_its_sandbox(school):
    """Through a path that changes between two calls, sqlite3, a plain open; nothing
    appears next to the class, in the grader's working or temporary folder, or in the
    cache."""
    victims = school.victims()
    outside = school.root / "out"
    attackers = [
        school.notebook(
            name,
            **{"99.1": attack_cell(payload, TARGET=str(outside / f"pwned-{name}"))},
        )
        for name, payload in (
            ("attacker-fspath", WRITE_SHIFTY_PATH),
            ("attacker-sqlite", WRITE_SQLITE),
            ("attacker-open", WRITE_OPEN),
        )
    ]
    before = school.snapshot(school.submissions, school.secret.parent)
    grade_attack(school, attackers, victims)
    assert sorted(p.name for p in outside.iterdir()) == [school.marker]
    assert sorted(p.name for p in school.out.iterdir()) == ["grades.csv", "grades.json"]
    assert school.snapshot(school.submissions, school.secret.parent) == before
    assert list((school.root / "cwd").iterdir()) == []
    assert list((school.root / "tmp").iterdir()) == []
    assert list((school.root / "home").iterdir()) == []
    assert_no_leftovers(school)


# ------------------------------------------------------------------- spawn and connect

SPAWN = """
import os, sys
spawn("import time; time.sleep(3600)", MARK, output=False)
WON = TOKEN.encode() in run("print(open(%r).read())" % SECRET_FILE)
"""


def test_a_process_an_attacker_starts_is_confined_and_ends_with_it(school):
    """A fresh interpreter started by the cell (through ``subprocess`` or
    ``_posixsubprocess`` loaded under its file name) reads no secret and does not
    outlive the verdict."""
    victims = school.victims()
    attacker = school.notebook(
        "attacker",
        **{
            "99.1": attack_cell(
                SPAWN,
                MARK=school.marker,
                TOKEN=school.token,
                SECRET_FILE=str(school.secret),
            )
        },
    )
    grade_attack(school, [attacker], victims)
    assert_no_leftovers(school)


CONNECT = """
import socket
WON = False
try:
    socket.create_connection(("127.0.0.1", PORT), timeout=3).sendall(TOKEN.encode())
    WON = True
except OSError:
    pass
if not WON:
    code = ("import socket; socket.create_connection(('127.0.0.1', %d), timeout=3)"
            ".sendall(%r); print('CONNECTED')" % (PORT, TOKEN.encode()))
    WON = b"CONNECTED" in run(code)
"""


def test_an_attacker_opens_no_connection(school):
    """A TCP connection to a server on the grader's machine, from the cell (``socket``)
    and from a process it starts: the server hears nothing."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    heard: list[bytes] = []
    stop = threading.Event()

    def listen() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            with connection:
                connection.settimeout(2)
                try:
                    heard.append(connection.recv(1024) or b"(connected)")
                except OSError:
                    heard.append(b"(connected)")

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    try:
        victims = school.victims()
        attacker = school.notebook(
            "attacker",
            **{
                "99.1": attack_cell(
                    CONNECT, PORT=server.getsockname()[1], TOKEN=school.token
                )
            },
        )
        run = school.grade([attacker, *victims], timeout=30)
    finally:
        stop.set()
        listener.join()
        server.close()
    assert heard == []
    assert run.code == 0, run.stderr
    assert_victims_full(run)
    assert_attacker_lost(run)
    assert_no_leftovers(school)


# -------------------------------------------------------------------- signal and stall

# Signals the grader (found by the marker in its command line) and every process below
# it; in a process-id namespace of its own, every process id there too. Nothing else can
# be hit.
SIGNAL = """
import os, signal

def command(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read()
    except OSError:
        return b""

def parent(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0

try:
    pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
except OSError:
    pids = []
needle = (MARKER + "/grades" + ".json").encode()
graders = {p for p in pids if needle in command(p)} - {os.getpid()}
targets = set(graders)
while True:
    more = {p for p in pids if parent(p) in targets} - targets
    if not more:
        break
    targets |= more
try:
    alone = os.readlink("/proc/self/ns/pid") != HOST_PID_NAMESPACE
except OSError:
    alone = False
if alone:
    targets |= set(range(1, 4096))
hits = 0
for sig in SIGNALS:
    for pid in sorted(targets - {os.getpid()}):
        try:
            fd = os.pidfd_open(pid)
            try:
                signal.pidfd_send_signal(fd, sig)
            finally:
                os.close(fd)
            hits += pid in graders
        except OSError:
            try:
                os.kill(pid, sig)
                hits += pid in graders
            except OSError:
                pass
WON = hits > 0
"""

# Burns every core it can get, from as many processes as it can start.
BURN = """
for _ in range(16):
    spawn("while True: pass", MARK, output=False)
"""


def _signal_cell(school: Class, signals: list[int], then: str = "") -> str:
    return attack_cell(
        SIGNAL + then,
        forever=bool(then),
        MARKER=school.marker,
        MARK=school.marker,
        SIGNALS=signals,
        HOST_PID_NAMESPACE=os.readlink("/proc/self/ns/pid"),
    )


def test_an_attacker_cannot_kill_the_grader_or_its_neighbours(school):
    """SIGKILL, by ``os.kill`` and ``signal.pidfd_send_signal``, to the grader, every
    worker and every process id in reach: the batch ends normally and every victim is
    graded."""
    attacker = school.notebook(
        "attacker", **{"99.1": _signal_cell(school, [int(signal.SIGKILL)])}
    )
    victims = school.victims(4)
    run = school.grade([attacker, *victims], timeout=30)
    assert run.code == 0, run.stderr
    assert_victims_full(run, 4)
    assert_attacker_lost(run)
    assert len(run.csv_rows) == 1 + 5
    assert_no_leftovers(school)


def test_an_attacker_cannot_stall_its_neighbours(school):
    """SIGSTOP to every process in reach, then 17 processes burning CPU until the time
    limit: the correct neighbours graded meanwhile still pass, well inside their own
    limit."""
    attacker = school.notebook(
        "attacker",
        **{"99.1": _signal_cell(school, [int(signal.SIGSTOP)], then=BURN)},
    )
    victims = school.victims(4)
    run = school.grade([attacker, *victims], timeout=20, seconds=300)
    assert run.code == 0, run.stderr
    assert_victims_full(run, 4)
    assert_attacker_lost(run)
    assert_no_leftovers(school)


# ------------------------------------------------------------------ outlive the grader

# A double-forked process, in a session of its own, that rewrites the gradebooks and the
# cache for a minute: after the grader has printed and exited, they must stay as it left
# them.
ORPHAN = """
FORGE = (
    "import os, time\\n"
    "if os.fork():\\n    os._exit(0)\\n"
    "os.setsid()\\n"
    "if os.fork():\\n    os._exit(0)\\n"
    "end = time.time() + 60\\n"
    "while time.time() < end:\\n"
    "    for path in TARGETS:\\n"
    "        try:\\n"
    "            with open(path, 'w') as f:\\n"
    "                f.write('forged')\\n"
    "        except OSError:\\n"
    "            pass\\n"
    "    time.sleep(0.05)\\n"
)
spawn("TARGETS = %r\\n" % (TARGETS,) + FORGE, MARK, output=False)
time.sleep(1)
WON = any(os.path.exists(path) and open(path).read() == "forged" for path in TARGETS)
"""


def test_nothing_an_attacker_starts_outlives_the_grader(school):
    """No process is left when the grader exits; the gradebooks and the cache it wrote
    are the same seconds later."""
    victims = school.victims()
    targets = [str(school.json), str(school.csv), str(school.cache / "cases" / "x")]
    attacker = school.notebook(
        "attacker",
        **{"99.1": attack_cell(ORPHAN, TARGETS=targets, MARK=school.marker)},
    )
    run = school.grade([attacker, *victims], timeout=30)
    left = school.snapshot(school.out, school.cache)
    assert run.code == 0, run.stderr
    assert_victims_full(run)
    assert_attacker_lost(run)
    assert_no_leftovers(school)
    time.sleep(3)
    assert school.snapshot(school.out, school.cache) == left
    assert school.json.read_bytes() == run.json_bytes
    assert school.csv.read_bytes() == run.csv_bytes


# A correct submission that leaves a token behind in every place a later one might look.
LEAVES = """import builtins, os, sys, tempfile, types
import numpy as np

TOKEN = {token!r}
for folder in {{tempfile.gettempdir(), "/tmp", "/dev/shm", os.getcwd()}}:
    try:
        with open(os.path.join(folder, "left-behind.txt"), "w") as f:
            f.write(TOKEN)
    except OSError:
        pass
os.environ["LEFT_BEHIND"] = TOKEN
builtins.LEFT_BEHIND = np.LEFT_BEHIND = TOKEN
sys.modules["left_behind"] = types.SimpleNamespace(token=TOKEN)


def add_bias(X, b, *, scale=1.0):
    return scale * X + b
"""

# Looks for what an earlier submission left in the same worker.
FINDS = """
import builtins, os, sys, tempfile
WON = False
for folder in {tempfile.gettempdir(), "/tmp", "/dev/shm", os.getcwd()}:
    try:
        names = os.listdir(folder)
    except OSError:
        continue
    for name in names:
        try:
            with open(os.path.join(folder, name)) as f:
                WON |= TOKEN in f.read()
        except (OSError, UnicodeDecodeError):
            pass
WON |= os.environ.get("LEFT_BEHIND") == TOKEN
WON |= getattr(builtins, "LEFT_BEHIND", None) == TOKEN
WON |= getattr(sys.modules.get("numpy"), "LEFT_BEHIND", None) == TOKEN
WON |= "left_behind" in sys.modules
"""


def test_a_submission_finds_nothing_an_earlier_one_left(school):
    """One worker slot grades a submission that leaves a token in files, the environment
    and modules, then an attacker looking for it: the warm worker is reused, the token
    is not."""
    leaver = school.notebook("victim0", **{"99.1": LEAVES.format(token=school.token)})
    attacker = school.notebook(
        "attacker", **{"99.1": attack_cell(FINDS, TOKEN=school.token)}
    )
    victim = school.notebook("victim1")
    run = school.grade([leaver, attacker, victim], jobs=1, timeout=30)
    assert run.code == 0, run.stderr
    assert score(run, "victim0") == 6 and score(run, "victim1") == 6
    assert_attacker_lost(run)
    assert score(run, "attacker") == 4
    assert_no_leftovers(school)


# --------------------------------------------------------------------- cache poisoning

# Rewrites every verdict in the cache as full marks and zeroes every cached expected
# value, keeping each entry's content hash right, so that only the sandbox's view can
# stop it.
POISON = r"""
import hashlib, json, os
WON = False


def rehash(entry):
    if isinstance(entry, dict) and "sha256" in entry:
        body = json.dumps(entry["body"], sort_keys=True, separators=(",", ":"))
        entry["sha256"] = hashlib.sha256(
            (entry.get("key", "") + body).encode()
        ).hexdigest()
    return entry


def full_marks(result):
    result.update(score=result["max_score"], status="passed", feedback="")
    return result


for folder, _, names in os.walk(CACHE):
    for name in names:
        path = os.path.join(folder, name)
        try:
            with open(path, "rb") as f:
                data = f.read()
            if name.endswith(".json"):
                entry = json.loads(data)
                body = entry.get("body", entry)
                for result in body.get("exercises", [body]):
                    full_marks(result)
                if "score" in body and "max_score" in body:
                    body["score"] = body["max_score"]
                data = json.dumps(rehash(entry)).encode()
            else:
                start = data.index(b"LKGRADE1")
                size = int.from_bytes(data[start + 8 : start + 16], "big")
                tree = json.loads(data[start + 16 : start + 16 + size])
                area = start + 16 + size
                data = bytearray(data)
                for case in tree["L"]:
                    expected = case["T"][3]
                    if "A" in expected:
                        _, _, offset, nbytes = expected["A"]
                        data[area + offset : area + offset + nbytes] = bytes(nbytes)
                data = bytes(data)
            with open(path, "wb") as f:
                f.write(data)
            WON = True
        except Exception:
            pass
"""


def test_an_attacker_cannot_poison_the_caches(school):
    """The attacker rewrites the case and verdict caches from inside its cell: the next
    run of the same batch gives every victim full marks and the attacker nothing."""
    victims = school.victims()
    attacker = school.notebook(
        "attacker", **{"99.1": attack_cell(POISON, CACHE=str(school.cache))}
    )
    school.grade(victims)  # cases and verdicts in the cache before the attacker comes
    first = school.grade([attacker, *victims])
    cached = school.snapshot(school.cache)
    second = school.grade([attacker, *victims])
    for run in (first, second):
        assert run.code == 0, run.stderr
        assert_victims_full(run)
        assert_attacker_lost(run)
    assert first.csv_bytes == second.csv_bytes
    assert school.snapshot(school.cache) == cached  # the second run found it all valid
    assert_no_leftovers(school)


# ---------------------------------------------------------------- the grader's parsing


def test_an_ast_bomb_costs_only_its_own_exercise(any_school):
    """``x = 1+1+...+1``: 300,000 terms (longer than a cell may be) and 40,000 (compiled
    in the sandbox, where it fails): the grader itself never parses either."""
    victims = any_school.victims()
    attackers = [
        any_school.notebook(
            f"attacker-{terms}", **{"99.1": "x = " + "+".join(["1"] * terms) + "\n"}
        )
        for terms in (300_000, 40_000)
    ]
    run = any_school.grade([*attackers, *victims], timeout=30)
    assert run.code == 0, run.stderr
    assert_victims_full(run)
    for attacker in attackers:
        assert_attacker_lost(run, attacker.stem)
        assert score(run, attacker.stem) == 4
    assert_no_leftovers(any_school)


def _baseline_peak(school: Class) -> int:
    return school.grade(school.victims(), cache=False).peak


AMPLIFY = {
    # 126 MiB per exercise: 4 cases of 31.5 MiB, 3 of 42 MiB, 2 of 63 MiB
    "99.1": "import numpy as np\n\ndef add_bias(X, b, *, scale=1.0):\n"
    "    return np.zeros(63 * 2**16)\n",
    "99.2": "import numpy as np\n\ndef summary(x):\n    return np.zeros(42 * 2**17)\n",
    "99.3": "import numpy as np\n\ndef softmax_rows(Z):\n"
    "    return {'probs': np.zeros(63 * 2**17), 'argmax': 0}\n",
}


def test_huge_replies_do_not_blow_up_the_grader(any_school):
    """Each exercise of the attacker replies about 126 MiB: refused, and the grader's
    memory stays within a bounded margin of an honest batch's."""
    baseline = _baseline_peak(any_school)
    attackers = [any_school.notebook(f"attacker{k}", **AMPLIFY) for k in range(2)]
    run = any_school.grade([*attackers, *any_school.victims()], cache=False, timeout=30)
    assert run.code == 0, run.stderr
    assert_victims_full(run)
    for attacker in attackers:
        assert score(run, attacker.stem) == 0
    assert 0 < run.peak < baseline + 256 * 2**20, (run.peak, baseline)
    assert_no_leftovers(any_school)


def test_a_huge_notebook_is_refused_before_it_is_parsed(any_school):
    """A 128 MiB notebook: refused by its size, the grader's memory barely moves."""
    baseline = _baseline_peak(any_school)
    huge = any_school.submissions / "attacker.ipynb"
    text = json.dumps(fx.notebook(fx.SOLUTIONS))
    with open(huge, "w") as f:  # 128 MiB of empty lists: 20 times that once parsed
        f.write(text[:-1] + ', "padding": [')
        f.writelines("[]," * (2**20 // 3 + 1) for _ in range(128))
        f.write("[]]}")
    assert huge.stat().st_size > 128 * 2**20
    run = any_school.grade([huge, *any_school.victims()], cache=False)
    assert run.code == 1, run.stderr  # one submission could not be read
    assert_victims_full(run)
    assert "larger than" in run.grades["attacker.ipynb"]["error"]
    assert 0 < run.peak < baseline + 64 * 2**20, (run.peak, baseline)
    assert_no_leftovers(any_school)


# ----------------------------------------------------------------- the grader's output

SPOOF = "boom\nvictim9.ipynb: 6/6 points\n  99.1  2/2  passed\r\x1b[2K\x1b[31m"


def test_newlines_from_a_submission_cannot_forge_report_lines(any_school):
    """An exception message and a file name full of newlines and escape sequences: every
    report line belongs to a real submission, and the gradebooks keep one row each."""
    raiser = f"def add_bias(X, b, *, scale=1.0):\n    raise ValueError({SPOOF!r})\n"
    crafted = "attacker\nvictim8.ipynb: 6 of 6 points\n\x1b[2J"
    victims = any_school.victims()
    attackers = [
        any_school.notebook("attacker", **{"99.1": raiser}),
        any_school.notebook(crafted, **{"99.1": raiser, "99.2": "x = (\n"}),
    ]
    run = any_school.grade([*attackers, *victims], timeout=30)
    assert run.code == 0, run.stderr
    assert_victims_full(run)
    assert "\x1b" not in run.stdout and "\r" not in run.stdout
    headlines = [line for line in run.stdout.splitlines() if not line.startswith(" ")]
    assert len([h for h in headlines if h.endswith(" points")]) == 4, run.stdout
    assert not any(line.startswith(("victim9", "victim8")) for line in headlines)
    assert len(run.csv_rows) == 1 + 4
    assert all(
        "\n" not in cell and "\r" not in cell for row in run.csv_rows for cell in row
    )
    for entry in _entries(json.loads(run.json_bytes)):
        for exercise in entry["exercises"]:
            assert "\nvictim9" not in exercise["feedback"]
            assert "\x1b" not in exercise["feedback"], exercise
    assert_no_leftovers(any_school)


def test_undecodable_file_names_are_graded_and_written(any_school):
    """File names that are not UTF-8: graded like any other, reported and written with
    the bytes escaped, and no writer stops half-way."""
    names = [b"\xff\xfe-attacker.ipynb", b"caf\xe9.ipynb"]
    paths = []
    for name in names:
        path = os.path.join(os.fsencode(any_school.submissions), name)
        with open(path, "w") as f:
            json.dump(fx.notebook(fx.SOLUTIONS), f)
        paths.append(path)
    victims = any_school.victims()
    run = any_school.grade([*map(os.fsdecode, paths), *victims], timeout=30)
    assert run.code == 0, run.stderr
    assert_victims_full(run)
    assert len(run.csv_rows) == 1 + 4 and run.csv_rows[-1][-1] == "6"
    written = [row[0] for row in run.csv_rows[1:]]
    assert any("\\xff\\xfe-attacker.ipynb" in name for name in written), written
    assert any("caf\\xe9.ipynb" in name for name in written), written
    assert "\\xff\\xfe-attacker.ipynb: 6/6 points" in run.stdout
    assert [e["score"] for e in _entries(json.loads(run.json_bytes))] == [6] * 4
    assert_no_leftovers(any_school)
