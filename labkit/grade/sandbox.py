"""Where the grading worker runs: inside bubblewrap, with a view of only what it needs.

``command(modules, isolation, args)`` gives the command line that starts the worker
interpreter (``worker.main``) for exercises that may import ``modules``.

With ``isolation="bwrap"`` (the default on Linux) the worker starts in a bubblewrap
sandbox: new user, PID, network, IPC, UTS and cgroup namespaces, ``--die-with-parent``
and ``--new-session``, an empty environment, and a read-only filesystem that holds only

- the Python interpreter, its shared libraries and its standard library (any
  ``site-packages`` inside it covered by an empty directory),
- the allowed packages and the distributions they require, in ``/lk/site``,
- the worker's own four files (``worker``, ``runner``, ``confine``, ``channel``, which
  import nothing from labkit) as the package ``_lkgrade`` in ``/lk/run``,

plus a fresh ``/proc`` and ``/dev`` and a small private tmpfs on ``/tmp``. Labkit, its
exercises, the caches, the gradebooks, the submissions and every other package do not
exist in there: an exercise that imports torch while only numpy is allowed gets
``ModuleNotFoundError``, whatever it tries. Each notebook is then confined further by
the worker (``confine``: namespaces of its own, a fresh tmpfs, no capabilities,
seccomp).

With ``isolation="none"`` the worker is a plain process; it sees the same module layout
(a temporary folder of symbolic links), so honest code gets the same verdict, but
nothing is enforced: grade only your own work this way.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from . import confine

__all__ = ["ISOLATIONS", "IsolationError", "command", "default_isolation"]
__all__ += ["fallback_isolation", "problem"]

ISOLATIONS = ("bwrap", "none")
PACKAGE = "_lkgrade"  # the worker's files, as a package inside the sandbox
FILES = ("worker.py", "runner.py", "confine.py", "channel.py")
SITE, RUN = "/lk/site", "/lk/run"
SCRATCH_BYTES = 64 * 2**20  # the worker's tmpfs; each notebook gets its own as well
INSTALL = (
    "install bubblewrap (Debian or Ubuntu: `sudo apt-get install bubblewrap`; Fedora: "
    "`sudo dnf install bubblewrap`), or grade your own work without the sandbox with "
    "`--isolation none`"
)
_HIDDEN = ("site-packages", "dist-packages")
_UNSHARE = ["--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc"]
_UNSHARE += ["--unshare-uts", "--unshare-cgroup-try"]
_SYSTEM_LIBRARIES = ("/lib", "/usr/lib", "/lib64", "/usr/lib64", "/usr/local/lib")
_SANDBOX_ID = "65534"  # nobody, inside the sandbox
_ENV = {
    "HOME": "/tmp",
    "TMPDIR": "/tmp",
    "LANG": "C.UTF-8",
    "PYTHONHASHSEED": "0",
    "PYTHONDONTWRITEBYTECODE": "1",
    "CUDA_VISIBLE_DEVICES": "",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
}
_BOOT = (
    "import sys; sys.path[:0] = sys.argv[1].split(':'); "
    f"from {PACKAGE}.worker import main; main(sys.argv[2:])"
)


class IsolationError(RuntimeError):
    """The requested isolation cannot work on this machine; the message says what to
    do."""


def default_isolation() -> str:
    """``"bwrap"`` on Linux, ``"none"`` elsewhere (macOS has no bubblewrap)."""
    return "bwrap" if sys.platform.startswith("linux") else "none"


@functools.lru_cache(maxsize=None)
def fallback_isolation() -> str:
    """For grading one's own work: bubblewrap where it works, else "none", said once."""
    if default_isolation() == "bwrap" and problem() is None:
        return "bwrap"
    print(
        f"note: {problem() or 'bubblewrap needs Linux'}, so your code runs without the "
        "grader's sandbox here; the verdict is the same for code that only computes, "
        "but an instructor's grader runs it in bubblewrap "
        f"({INSTALL.split(', or')[0]})."
    )
    return "none"


@functools.lru_cache(maxsize=None)
def problem() -> str | None:
    """Why bubblewrap cannot sandbox the worker here, or None when it can.

    Starts a throw-away sandbox that checks what the worker needs: the namespaces, and a
    nested user namespace per notebook.
    """
    if not sys.platform.startswith("linux"):
        return f"bubblewrap needs Linux, and this is {sys.platform}"
    if not confine.supported():
        return "the sandbox knows Linux on x86_64 and aarch64 only"
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bubblewrap (the `bwrap` command) is not installed"
    probe = (
        "import ctypes, sys; libc = ctypes.CDLL(None, use_errno=True); "
        "sys.exit(0 if libc.unshare(0x10000000 | 0x20000 | 0x20000000) == 0 "
        "else 'nested user namespace: error %d' % ctypes.get_errno())"
    )
    python = os.path.realpath(sys._base_executable)
    argv = [bwrap, *_UNSHARE, "--die-with-parent", "--ro-bind", "/", "/"]
    argv += ["--proc", "/proc", "--dev", "/dev", python, "-S", "-c", probe]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap could not be started ({exc})"
    if done.returncode != 0:
        reason = done.stderr.decode("utf-8", "replace").strip()[-500:]
        return f"bubblewrap cannot create the sandbox here ({reason or 'no reason'})"
    return None


def command(
    modules: tuple[str, ...], isolation: str, args: list[str], fds: list[str]
) -> tuple[list[str], dict[str, str], str | None]:
    """``(argv, environment, temporary folder or None)`` to start the worker.

    ``args`` then the view folder then ``fds`` go to ``worker.main``. The temporary
    folder (isolation "none") is removed by the worker when it ends, or by the caller.
    """
    if isolation not in ISOLATIONS:
        raise ValueError(f"isolation must be one of {ISOLATIONS}, got {isolation!r}")
    python = os.path.realpath(sys._base_executable)
    entries = package_entries(modules)
    if isolation == "none":
        folder = tempfile.mkdtemp(prefix="labkit-grade-view-")
        site, run = os.path.join(folder, "site"), os.path.join(folder, "run")
        os.makedirs(os.path.join(run, PACKAGE))
        os.makedirs(site)
        for name, path in entries.items():
            os.symlink(path, os.path.join(site, name))
        for name in FILES:
            os.symlink(_own(name), os.path.join(run, PACKAGE, name))
        env = dict(_ENV, HOME=folder, TMPDIR=folder)
        argv = [python, "-S", "-s", "-B", "-P", "-c", _BOOT, f"{site}:{run}"]
        return argv + [*args, folder, *fds], env, folder
    problem_here = problem()
    if problem_here is not None:
        raise IsolationError(f"{problem_here}; {INSTALL}")
    view = _View()
    for library in sorted(_libraries()):
        view.expose(library)
    view.expose(python)
    interpreter = _elf_interpreter(python)
    if interpreter:
        view.expose(interpreter)
    for directory in _stdlib_directories():
        view.expose(directory)
        view.hide_sites(directory)
    for name, path in entries.items():
        view.bind(path, f"{SITE}/{name}")
    for name in FILES:
        view.bind(_own(name), f"{RUN}/{PACKAGE}/{name}")
    argv = [shutil.which("bwrap") or "bwrap", *_UNSHARE, "--die-with-parent"]
    argv += ["--new-session", "--uid", _SANDBOX_ID, "--gid", _SANDBOX_ID, "--clearenv"]
    for name, value in _ENV.items():
        argv += ["--setenv", name, value]
    argv += view.arguments
    argv += ["--proc", "/proc", "--dev", "/dev"]
    argv += ["--size", str(SCRATCH_BYTES), "--tmpfs", "/tmp", "--chdir", "/tmp"]
    argv += ["--remount-ro", "/", python, "-S", "-s", "-B", "-P", "-c", _BOOT]
    return argv + [f"{SITE}:{RUN}", *args, "", *fds], {}, None


def _own(name: str) -> str:
    return str(Path(__file__).with_name(name).resolve())


class _View:
    """bubblewrap arguments that make host paths appear read-only at the same place."""

    def __init__(self) -> None:
        self.arguments: list[str] = []
        self._done: set[str] = set()

    def bind(self, source: str, destination: str) -> None:
        if destination not in self._done:
            self._done.add(destination)
            self.arguments += ["--ro-bind", source, destination]

    def expose(self, path: str) -> None:
        """Bind ``path``, recreating every symbolic link on the way as on the host."""
        if any(path.startswith(done + os.sep) for done in self._done):
            return  # inside a folder already bound
        current = "/"
        parts = Path(os.path.abspath(path)).parts[1:]
        for position, part in enumerate(parts):
            current = os.path.join(current, part)
            if os.path.islink(current):
                target = os.readlink(current)
                if current not in self._done:
                    self._done.add(current)
                    self.arguments += ["--symlink", target, current]
                resolved = os.path.join(os.path.dirname(current), target)
                rest = parts[position + 1 :]
                self.expose(os.path.normpath(os.path.join(resolved, *rest)))
                return
        if os.path.exists(current):
            self.bind(current, current)

    def hide_sites(self, directory: str) -> None:
        """Cover the package folders inside a bound folder with empty read-only ones."""
        for name in _HIDDEN:
            inside = os.path.join(directory, name)
            if os.path.isdir(inside) and inside not in self._done:
                self._done.add(inside)
                self.arguments += ["--tmpfs", inside, "--remount-ro", inside]


def _elf_interpreter(path: str) -> str | None:
    """The dynamic loader an ELF executable names (its PT_INTERP), e.g.
    /lib64/ld-linux..."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if head[:4] != b"\x7fELF" or head[4] != 2:  # 64-bit ELF only
                return None
            order = "<" if head[5] == 1 else ">"
            offset, size, count = (
                struct.unpack_from(order + "Q", head, 0x20)[0],
                *struct.unpack_from(order + "HH", head, 0x36),
            )
            f.seek(offset)
            table = f.read(size * count)
            for i in range(count):
                kind, _, place = struct.unpack_from(order + "IIQ", table, i * size)
                if kind == 3:  # PT_INTERP
                    length = struct.unpack_from(order + "Q", table, i * size + 32)[0]
                    f.seek(place)
                    return f.read(length).rstrip(b"\0").decode()
    except (OSError, struct.error, UnicodeDecodeError):
        return None
    return None


def _stdlib_directories() -> list[str]:
    """The standard library and its compiled modules (lib-dynload), real paths."""
    stdlib = os.path.realpath(os.path.dirname(os.__file__))
    found = [stdlib]
    import _struct  # a compiled standard module, in lib-dynload unless built in

    compiled = getattr(_struct, "__file__", None)
    if compiled and not os.path.realpath(compiled).startswith(stdlib + os.sep):
        found.append(os.path.dirname(os.path.realpath(compiled)))
    return found


@functools.lru_cache(maxsize=None)
def _libraries() -> frozenset[str]:
    """The shared libraries this interpreter has loaded from outside any Python path,
    from /proc/self/maps: the folders of the system's (the C library, the dynamic loader
    ...), and single files of the Python installation's own (libpython)."""
    python_paths = [os.path.realpath(p) for p in sys.path if p and os.path.isdir(p)]
    python_paths.append(os.path.realpath(os.path.dirname(os.__file__)))
    installation = {
        os.path.realpath(p) for p in (sys.base_prefix, sys.base_exec_prefix)
    }
    found = set()
    try:
        with open("/proc/self/maps") as maps:
            lines = maps.read().splitlines()
    except OSError:
        lines = []
    for line in lines:
        fields = line.split(maxsplit=5)
        if len(fields) < 6 or not re.search(r"\.so(\.|$)", fields[5]):
            continue
        path = os.path.realpath(fields[5])
        if any(path.startswith(p + os.sep) for p in python_paths):
            continue
        if path.startswith(_SYSTEM_LIBRARIES):
            found.add(os.path.dirname(path))
        elif any(path.startswith(p + os.sep) for p in installation):
            found.add(path)
    return frozenset(found)


@functools.lru_cache(maxsize=None)
def package_entries(modules: tuple[str, ...]) -> dict[str, str]:
    """Name in the site folder -> host path, for the installed distributions that
    provide ``modules`` and every distribution they require (their packages, bundled
    libraries such as ``numpy.libs`` and metadata)."""
    providers = metadata.packages_distributions()
    todo = [d for module in modules for d in providers.get(module, [])]
    missing = [m for m in modules if m not in providers]
    if missing:
        raise IsolationError(
            f"the exercises allow {', '.join(missing)}, which is not installed here"
        )
    seen: set[str] = set()
    entries: dict[str, str] = {}
    while todo:
        name = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # an optional requirement that is not installed
        for file in dist.files or []:
            top = file.parts[0]
            if top not in ("..", "__pycache__") and not top.endswith(".pth"):
                entries.setdefault(top, str(Path(dist.locate_file(top)).resolve()))
        for requirement in dist.requires or []:
            if "extra ==" not in requirement:
                todo.append(re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)[0])
    return entries
