"""The sandbox inside a grading child: what an exercise cell may do, and how it is run.

``worker`` forks a child per notebook from a warm server and calls ``run`` in it. The child sets
itself up once, then runs the notebook's exercises one after another:

- its output goes to a file the server reads (stdout and stderr, capped), stdin is /dev/null;
  its working directory is empty and read-only; TMPDIR points there too;
- resource limits: address space beyond the warm baseline (memory), file size (output), CPU
  seconds, no core dumps, no new processes (RLIMIT_NPROC, effective for unprivileged users);
- an audit hook (PEP 578: it cannot be removed) refuses starting processes, signalling other
  processes, ctypes, sockets, tracing, reaching other threads' frames or the garbage collector's
  lists, changing resource limits, importing labkit, writing, creating or deleting any file, and
  reading files outside Python's own installation and the system's libraries.

Each exercise runs in a fresh namespace after the global random generators (random, numpy,
torch) are reseeded. Its function is called on each case's inputs through ``scoring.run_case``,
the outputs are made plain data by ``scoring.to_data`` and sent back as a channel message,
preceded by the exercise's index and the token the server handed out for it. After each
exercise the child compares the state later exercises share (the attributes of numpy, torch,
math, builtins ..., threads, signal handlers, alarms, torch's defaults, warnings filters,
environment) with what it was before the first one; if anything changed, it says so and stops,
and the server runs the remaining exercises in a fresh child.
"""

from __future__ import annotations

import ast
import builtins
import faulthandler
import gc
import os
import random
import resource
import signal
import socket
import sys
import tempfile
import threading
import types
import warnings
from typing import Any, Callable

from labkit.exercises.scoring import run_case
from labkit.grade import channel

STOP = 1  # frame flag: the child stops after this exercise (it changed shared state)
TOKEN = 16  # bytes of the random token that authenticates a reply
HEADER = 4 + TOKEN  # a reply starts with its exercise index (u32) and token
_ERROR_CHARS = 1000  # longest exception message kept from a submission
_PR_SET_PDEATHSIG = 1
_PROCESS_EVENTS = {
    "os.fork",
    "os.forkpty",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.system",
    "subprocess.Popen",
    "os.startfile",
    "os.killpg",
    "resource.setrlimit",
    "resource.prlimit",
    "sys.setprofile",
    "sys.settrace",
}
_PATH_EVENTS = {
    "os.remove",
    "os.rmdir",
    "os.rename",
    "os.mkdir",
    "os.chmod",
    "os.chown",
    "os.link",
    "os.symlink",
    "os.truncate",
    "os.utime",
    "os.chflags",
    "os.lchflags",
    "os.setxattr",
    "os.removexattr",
    "os.mkfifo",
    "os.mknod",
    "shutil.rmtree",
    "shutil.move",
    "shutil.copyfile",
    "shutil.copytree",
    "shutil.make_archive",
    "shutil.unpack_archive",
}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_WATCHED_MODULES = (
    "builtins",
    "math",
    "cmath",
    "random",
    "copy",
    "numbers",
    "operator",
    "functools",
    "itertools",
    "collections",
    "numpy",
    "numpy.linalg",
    "numpy.random",
    "numpy.fft",
    "numpy.lib.stride_tricks",
    "torch",
    "torch.nn",
    "torch.nn.functional",
    "torch.nn.init",
    "torch.linalg",
    "torch.autograd",
    "torch.optim",
)
_WATCHED_SIGNALS = (
    "SIGALRM",
    "SIGVTALRM",
    "SIGPROF",
    "SIGTERM",
    "SIGINT",
    "SIGHUP",
    "SIGUSR1",
    "SIGUSR2",
    "SIGCHLD",
    "SIGPIPE",
    "SIGXFSZ",
    "SIGXCPU",
    "SIGSEGV",
    "SIGFPE",
)

_LABKIT_DIR = ""  # set by configure(): labkit's folder, never readable from a cell
_READABLE: list[str] = []  # set by configure(): folders a cell may read from


def configure(labkit_dir: str) -> None:
    """Record, once in the warm process, what the children may and may not read."""
    global _LABKIT_DIR, _READABLE
    _LABKIT_DIR = labkit_dir
    _READABLE = _readable_roots()


def uses_torch(source: str) -> bool:
    """Whether a cell imports torch (then the workers preload it, and watch it for changes)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return False
    for node in ast.walk(tree):
        names = (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
        if any(name.split(".")[0] == "torch" for name in names):
            return True
    return False


def holds_labkit(path: str) -> bool:
    return bool(path) and os.path.isfile(os.path.join(path, "labkit", "__init__.py"))


def prctl(option: int, value: int) -> None:
    """Linux's prctl (a child's death signal, a subreaper); elsewhere the process group and the
    timeout do without it."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)


# Modules of the grader a cell could reach through frames although they left sys.modules.
_GRADING_MODULES = (sys.modules[__name__], sys.modules[run_case.__module__], channel)


# --------------------------------------------------------------------------- the child


def run(
    exercises: list,
    start: int,
    limits: dict,
    write_end: int,
    token_read: int,
    base: str,
    control: socket.socket | None,
    server: int,
) -> None:
    """In a freshly forked child: set up the sandbox, then run ``exercises[start:]``, writing one
    reply frame per exercise to ``write_end`` after reading its token from ``token_read``."""
    os.setpgid(0, 0)
    prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != server:  # the server died before the line above
        os._exit(1)
    if control is not None:
        control.close()
    _redirect_output(os.path.join(base, "output"))
    root = os.path.join(base, "work")
    os.chdir(root)
    os.environ["TMPDIR"] = root
    tempfile.tempdir = root
    statm = (
        os.open("/proc/self/statm", os.O_RDONLY)
        if os.path.exists("/proc/self/statm")
        else None
    )
    baseline = _address_space(statm)
    _limit_resources(limits, baseline, len(exercises) - start)
    _disarm_process_spawning()
    pristine = _State.capture(any(uses_torch(e["source"]) for e in exercises[start:]))
    sys.addaudithook(_guard(root))
    for index in range(start, len(exercises)):
        token = _read_exactly(token_read, TOKEN)
        os.chdir(root)
        reseed()
        reply = _run_exercise(exercises[index])
        reply["output_bytes"] = _take_output()
        tainted = (
            pristine.differs()
            or _address_space(statm) > baseline + limits["memory"] // 4
        )
        try:
            payload = channel.encode(reply)
        except (TypeError, ValueError, RecursionError, MemoryError) as exc:
            payload = channel.encode({"encode_error": _text(exc)})
        if len(payload) > limits["reply"]:
            payload = channel.encode({"too_large": len(payload)})
        header = index.to_bytes(4, "big") + token
        _write_all(write_end, channel.frame(header + payload, STOP if tainted else 0))
        if tainted:
            return


def _read_exactly(fd: int, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            raise EOFError("the server closed the token pipe")
        data += chunk
    return data


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _redirect_output(path: str) -> None:
    """stdin from /dev/null; stdout and stderr into one capped file the server can read."""
    out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_TRUNC, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    for target, source in ((0, null), (1, out), (2, out)):
        os.dup2(source, target)
    os.close(out)
    os.close(null)
    signal.signal(
        signal.SIGXFSZ, signal.SIG_IGN
    )  # past the cap a write fails; no signal
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    faulthandler.enable(file=sys.__stderr__, all_threads=True)


def _take_output() -> int:
    """Bytes the exercise wrote to stdout/stderr; empties the file for the next exercise."""
    for stream in (sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    size = os.fstat(1).st_size
    os.ftruncate(1, 0)
    return size


def _address_space(statm: int | None) -> int:
    """Bytes of address space in use, from Linux's /proc (0 where there is none)."""
    if statm is None:
        return 0
    return int(os.pread(statm, 128, 0).split()[0]) * resource.getpagesize()


def _limit_resources(limits: dict, baseline: int, count: int) -> None:
    """Address space beyond the warm baseline, output file size, CPU seconds (a backstop to the
    server's wall clock), no core dumps, no new processes. A limit the platform lacks is skipped:
    the audit hook and the wall clock remain."""
    cpu = int(limits["timeout"] * count) + 5
    wanted = [
        ("RLIMIT_FSIZE", limits["output"] + 1, 0),
        ("RLIMIT_CORE", 0, 0),
        ("RLIMIT_CPU", cpu, 1),
        ("RLIMIT_NPROC", 0, 0),
    ]  # CPU: SIGXCPU, then SIGKILL
    if baseline:
        wanted.append(("RLIMIT_AS", baseline + limits["memory"], 0))
    for name, soft, extra in wanted:
        try:
            resource.setrlimit(getattr(resource, name), (soft, soft + extra))
        except (ValueError, OSError, AttributeError):
            pass


def _refuse_process(*_args: Any, **_kwargs: Any) -> None:
    raise PermissionError("exercise cells may not start processes")


def _disarm_process_spawning() -> None:
    """Cut the one route to fork/exec that raises no audit event (subprocess's C helper)."""
    subprocess = sys.modules.get("subprocess")
    if subprocess is not None:
        subprocess._fork_exec = _refuse_process
    sys.modules.pop("_posixsubprocess", None)


def reseed() -> None:
    """Same global random state before every exercise, whatever ran before it."""
    random.seed(0)
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed(0)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.random.default_generator.manual_seed(0)


def _run_exercise(spec: dict) -> dict:
    """Execute one exercise cell in a fresh namespace and call its function on every case."""
    filename = f"<exercise {spec['id']}>"
    cases = channel.decode(spec["cases"])  # before the cell runs: it might patch numpy
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    try:
        exec(compile(spec["source"], filename, "exec", dont_inherit=True), namespace)
    except (
        BaseException
    ) as exc:  # the cell's own error (or exit) is the verdict, not a crash
        return {"cell_error": _describe(exc, filename), "memory": _out_of_memory(exc)}
    function = namespace.get(spec["function"])
    if function is None:
        return {"missing": True}
    if not callable(function):
        return {"not_callable": True}
    seen = {"memory": False}

    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except BaseException as exc:
            seen["memory"] |= _out_of_memory(exc)
            raise

    outcomes = []
    for args, kwargs in cases:
        try:
            outcome = run_case(call, types.SimpleNamespace(args=args, kwargs=kwargs))
            outcomes.append([outcome.kind, outcome.value, outcome.error[:_ERROR_CHARS]])
        except (SystemExit, KeyboardInterrupt, GeneratorExit) as exc:
            return {"exit": _describe(exc, filename)}
        except (
            BaseException
        ) as exc:  # MemoryError while copying, an exception that cannot print
            seen["memory"] |= _out_of_memory(exc)
            outcomes.append(["raised", None, _describe(exc, filename)])
        if seen[
            "memory"
        ]:  # the verdict is decided; the other cases would only fail again
            break
    return {"outcomes": outcomes, "memory": seen["memory"]}


def _out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    message = _text(exc).lower()
    return isinstance(exc, RuntimeError) and (
        "can't allocate memory" in message or "not enough memory" in message
    )


def _describe(exc: BaseException, filename: str) -> str:
    """``Type: message (line N)``, robust to exceptions that misbehave when printed."""
    try:
        name = type(exc).__name__
        name = name if isinstance(name, str) else "Exception"
    except BaseException:
        name = "Exception"
    text = f"{name}: {_text(exc)}" if _text(exc) else name
    line = getattr(exc, "lineno", None) if isinstance(exc, SyntaxError) else None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return f"{text} (line {line})" if isinstance(line, int) else text


def _text(exc: BaseException) -> str:
    try:
        return str.__str__(str(exc))[:_ERROR_CHARS]
    except BaseException:
        return "<an exception whose message cannot be printed>"


class _State:
    """What one exercise could change for the next: module attributes, threads, signals ..."""

    def __init__(self) -> None:
        self.modules: dict[str, tuple[types.ModuleType, dict]] = {}
        self.classes: list[tuple[type, dict]] = []
        self.settings: tuple = ()

    @classmethod
    def capture(cls, torch_too: bool) -> "_State":
        """Copying a module's attributes touches them all (copy-on-write pages after the fork),
        so torch, the largest, is watched only in jobs whose cells mention it."""
        state = cls()
        for name in _WATCHED_MODULES:
            module = sys.modules.get(name)
            if module is not None and (torch_too or not name.startswith("torch")):
                state.modules[name] = (module, dict(vars(module)))
        for (
            module
        ) in _GRADING_MODULES:  # no longer in sys.modules, but reachable from frames
            state.modules[module.__name__] = (module, dict(vars(module)))
        torch = sys.modules.get("torch")
        if torch is not None and torch_too:
            state.classes = [
                (c, dict(vars(c))) for c in (torch.Tensor, torch.nn.Module)
            ]
        state.settings = _settings()
        return state

    def differs(self) -> bool:
        for name, (module, attributes) in self.modules.items():
            if name in _WATCHED_MODULES and sys.modules.get(name) is not module:
                return True
            if _changed(vars(module), attributes):
                return True
        if any(_changed(vars(c), attributes) for c, attributes in self.classes):
            return True
        return _settings() != self.settings or _threads() != 1


def _threads() -> int:
    """Threads of this process, those started from C included where /proc tells."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def _changed(now: Any, before: dict) -> bool:
    """True when an attribute was replaced or deleted, or a non-module attribute was added."""
    missing = object()
    if any(now.get(key, missing) is not value for key, value in before.items()):
        return True
    return any(
        not isinstance(now[key], types.ModuleType) for key in now.keys() - before.keys()
    )


def _settings() -> tuple:
    """Process-wide settings an exercise might change; compared after every exercise."""
    values: list = [
        id(sys.stdout),
        id(sys.stderr),
        id(sys.stdin),
        sys.gettrace(),
        sys.getprofile(),
        sys.getrecursionlimit(),
        tuple(sys.path),
        tuple(map(id, sys.meta_path)),
        gc.isenabled(),
        tuple(warnings.filters),
        dict(os.environ),
        tuple(map(signal.getsignal, _signals())),
        tuple(
            signal.getitimer(t)
            for t in (signal.ITIMER_REAL, signal.ITIMER_VIRTUAL, signal.ITIMER_PROF)
        ),
    ]
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        values.append(tuple(sorted(numpy.geterr().items())))
    torch = sys.modules.get("torch")
    if torch is not None:
        values += [
            torch.get_default_dtype(),
            torch.is_grad_enabled(),
            torch.get_num_threads(),
            torch.are_deterministic_algorithms_enabled(),
        ]
    return tuple(values)


def _signals() -> list[signal.Signals]:
    return [getattr(signal, name) for name in _WATCHED_SIGNALS if hasattr(signal, name)]


def _guard(root: str) -> Callable[[str, tuple], None]:
    """The audit hook of a child: refuse what an exercise cell has no business doing."""
    me = os.getpid()
    readable = [os.path.realpath(root), f"/proc/{me}", *_READABLE]
    labkit_dir = _LABKIT_DIR

    def inside(path: str, roots: list[str]) -> bool:
        return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)

    def refuse_write(target: Any) -> None:
        if target in (1, 2):  # the worker empties its own output between exercises
            return
        raise PermissionError(
            "exercise cells may not write, create or delete files; return "
            "the result instead"
        )

    def guard(event: str, args: tuple) -> None:
        if event in _PROCESS_EVENTS:
            raise PermissionError(f"exercise cells may not do this ({event})")
        if event.startswith(("ctypes.", "socket.", "gc.get_", "sys._current_frames")):
            raise PermissionError(f"exercise cells may not use {event.split('.')[0]}")
        if event == "import":
            name = str(args[0])
            if name == "labkit" or name.startswith("labkit."):
                raise ImportError(
                    f"exercise cells cannot import {name}: the grader runs each "
                    "exercise cell on its own, with numpy, math and torch only "
                    "(labkit holds the reference solutions). Keep "
                    "`from labkit.check import check` in the next cell."
                )
            if name == "_posixsubprocess":
                raise ImportError(f"exercise cells cannot import {name}")
        elif event == "open":
            path, mode, flags = args
            if isinstance(path, int):
                return
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & _WRITE_FLAGS
            )
            if (
                writing and os.fsdecode(path) != os.devnull
            ):  # printing into /dev/null is fine
                refuse_write(path)
            real = os.path.realpath(os.fsdecode(path))
            if not inside(real, readable) or (
                labkit_dir and inside(real, [labkit_dir])
            ):
                raise PermissionError(
                    f"exercise cells may not read {os.fsdecode(path)!r}"
                )
        elif event in _PATH_EVENTS:
            refuse_write(args[0])
        elif event == "os.kill" and args[0] != me:
            raise PermissionError("exercise cells may not signal other processes")

    return guard


def _readable_roots() -> list[str]:
    """Python's installation and the system's libraries; not homes or class folders."""
    roots = {
        "/proc/cpuinfo",
        "/proc/meminfo",
        "/sys",
        "/dev",
        "/etc",
        "/usr",
        "/lib",
        "/lib64",
        "/opt",
        "/bin",
    }
    for prefix in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix):
        roots.add(os.path.realpath(prefix))
    for path in sys.path:
        if path and os.path.isdir(path) and not holds_labkit(path):
            roots.add(os.path.realpath(path))
    for module in list(
        sys.modules.values()
    ):  # packages imported from anywhere else (a conda env)
        location = getattr(module, "__file__", None)
        if isinstance(location, str) and "site-packages" in location:
            roots.add(location.split("site-packages")[0] + "site-packages")
    return sorted({os.path.realpath(r) for r in roots})
