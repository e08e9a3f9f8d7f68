"""The grading worker: warm processes that run submitted exercise cells in sandboxed children.

This module runs in a fresh interpreter that the grader starts (``pool.WorkerPool``), never in the
grader's own process. The process tree during a batch::

    grader            holds the exercises, their cases and expected values; judges every output
    └─ master         fresh interpreter: numpy (and torch) imported once; labkit forgotten
       └─ server      one per slot (core), forked from the master, serves one job at a time
          └─ child    forked per notebook from the warm server; runs that notebook's exercises
                      inside the sandbox (``sandbox.run``)

The grader sends a job (the notebook's exercise cells and the *inputs* of each case, never the
expected values) over a socket; the server forks a child and returns, per exercise, either the
child's reply (the outputs, as channel data) or why there is none (a timeout, the child's death,
a corrupted channel). Nothing a child writes is executed or unpickled anywhere: the grader
decodes it with ``channel.decode`` and judges it with its own cases.

The server enforces the wall-clock limit per exercise and kills the child's process group; as a
child subreaper it also finds and kills any process that escaped the group. Each reply carries its
exercise's index and a token the server hands out only after the previous reply, so a cell that
writes into the channel spoils its own verdict and no other. A child that dies, times out or
changed state shared with later exercises is replaced by a fresh one for the exercises left.

This is defence in depth at the level of the interpreter and of POSIX limits, not a kernel
sandbox: grade the submissions of strangers inside a container or a CI runner as well. It is built
for Linux; on macOS the memory limit, the child's death signal and the subreaper are missing.
"""

from __future__ import annotations

import gc
import importlib
import os
import select
import shutil
import signal
import socket
import sys
import time
import traceback
from typing import Any, Callable

from labkit.grade import channel, sandbox

_TAIL_BYTES = 2000  # how much of a dead child's output the server reports
_EXIT_GRACE = 2.0  # seconds a child gets to exit after its last reply
_PR_SET_CHILD_SUBREAPER = 36


# --------------------------------------------------------------------------- master and servers


def main(argv: list[str]) -> None:
    """Entry point: ``base preload fd [fd ...]``; one server per socket file descriptor.

    ``base`` is a temporary directory of this worker's own; it is removed when the servers end,
    which they do when the grader closes their sockets, or dies.
    """
    base, preload, *fds = argv
    try:
        _serve_all(base, preload, [int(fd) for fd in fds])
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _serve_all(base: str, preload: str, sockets: list[int]) -> None:
    """Import and warm up; make sure no exercise is loaded and forget labkit; then serve each
    socket, in a server forked from this warm process when there are several."""
    for name in filter(None, preload.split(",")):
        importlib.import_module(name)
    _warm_up()
    import labkit.exercises as registry

    if (
        registry._REGISTRY or registry._CASES
    ):  # the worker must never hold expected values
        raise RuntimeError("the grading worker has exercises loaded; refusing to serve")
    labkit_dir = os.path.dirname(os.path.realpath(registry.__path__[0]))
    for name in [m for m in sys.modules if m == "labkit" or m.startswith("labkit.")]:
        del sys.modules[name]
    sys.path[:] = [p for p in sys.path if not sandbox.holds_labkit(p)]
    sandbox.configure(labkit_dir)
    gc.collect()
    gc.freeze()  # keep the warm heap shared with the children (no copy-on-write by the collector)
    if len(sockets) == 1:
        serve(sockets[0], base)
        return
    servers = []
    for slot, fd in enumerate(sockets):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                for other in sockets:
                    if other != fd:
                        os.close(other)
                serve(fd, os.path.join(base, f"slot{slot}"))
                code = 0
            except BaseException:
                traceback.print_exc()  # into the log the grader shows if the worker fails
            finally:
                os._exit(code)
        servers.append(pid)
    for fd in sockets:
        os.close(fd)
    for pid in servers:
        os.waitpid(pid, 0)


def _warm_up() -> None:
    """Run the lazy first-time initialisations once here, not in every child (none starts a
    thread, so forking stays safe)."""
    sandbox.reseed()
    numpy = sys.modules["numpy"]
    a = numpy.ones((4, 4))
    numpy.isclose(a @ a, numpy.exp(a)).any()
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)
        x = torch.ones(3, 3, dtype=torch.float64, requires_grad=True)
        torch.softmax(x @ x, dim=1).sum().backward()


def serve(fd: int, base: str) -> None:
    """Answer job requests on socket ``fd`` until the grader closes it."""
    os.makedirs(os.path.join(base, "work"), exist_ok=True)
    os.chmod(os.path.join(base, "work"), 0o555)  # empty, and not writable even from C
    sandbox.prctl(_PR_SET_CHILD_SUBREAPER, 1)
    control = socket.socket(fileno=fd)
    control.setblocking(True)
    reader = channel.FrameReader(max_bytes=1 << 34)
    control.sendall(channel.frame(channel.encode({"ready": os.getpid()})))
    while True:
        frames: list = []
        while not frames:
            chunk = control.recv(1 << 20)
            if not chunk:
                return
            frames = reader.feed(chunk)
        for _, payload in frames:
            request: dict = {}
            try:
                request = channel.decode(payload, allow_bytes=True)
                reply = {
                    "nonce": request["nonce"],
                    "entries": run_job(request, control, base),
                }
            except _GraderGone:
                return
            except Exception as exc:  # a bug here must reach the grader, not hang it
                reply = {
                    "nonce": request.get("nonce"),
                    "error": f"{type(exc).__name__}: {exc}",
                }
            control.sendall(channel.frame(channel.encode(reply, allow_bytes=True)))


def run_job(request: dict, control: socket.socket | None, base: str) -> list[dict]:
    """One entry per exercise of the job, in order; forks a fresh child after any failure."""
    exercises, limits = request["exercises"], request["limits"]
    entries: list[dict] = []
    while len(entries) < len(exercises):
        entries += _run_child(exercises, len(entries), limits, control, base)
    return entries


def _run_child(
    exercises: list, start: int, limits: dict, control: socket.socket | None, base: str
) -> list[dict]:
    """Fork a child for ``exercises[start:]``; collect its replies until it stops or fails.

    Every reply carries its exercise's index and a random token that the server sends to the
    child only once the previous reply has been accepted; so a cell that writes to the channel
    can spoil only its own verdict. A reply out of turn, or bytes that are not a frame, end the
    child and are charged to the exercise that wrote them.
    """
    read_end, write_end = os.pipe()
    token_read, token_write = os.pipe()
    server = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child never returns from here
        code = 70
        try:
            os.close(read_end)
            os.close(token_write)
            sandbox.run(
                exercises, start, limits, write_end, token_read, base, control, server
            )
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    os.close(token_read)
    tokens = {start: _send_token(token_write)}
    entries: list[dict] = []
    ended, stopping = None, False
    reader = channel.FrameReader(max_bytes=limits["reply"] + sandbox.HEADER)
    poller = select.poll()
    poller.register(read_end, select.POLLIN)
    if control is not None:
        poller.register(control.fileno(), select.POLLIN)
    deadline = time.monotonic() + limits["timeout"]
    try:
        while start + len(entries) < len(exercises) and not stopping:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                ended = "timeout"
                break
            ready = False
            for fd, _ in poller.poll(remaining * 1000):
                if fd == read_end:
                    ready = True
                elif _grader_gone(control):
                    raise _GraderGone
                else:
                    poller.unregister(fd)
            if not ready:
                continue
            chunk = os.read(read_end, 1 << 20)
            if not chunk:
                ended = "eof"
                break
            try:
                frames = reader.feed(chunk)
            except channel.ChannelError:
                ended = "channel"
                break
            for flags, payload in frames:
                index = int.from_bytes(payload[:4], "big")
                expected = start + len(entries)
                token = payload[4 : sandbox.HEADER]
                if index != expected or tokens.get(index) != token:
                    ended = "channel"
                    if index < expected and tokens.get(index) == token:
                        del entries[
                            index - start :
                        ]  # a second reply from an answered exercise
                    break
                now = time.monotonic()
                entries.append({"state": "done", "payload": payload[sandbox.HEADER :]})
                deadline = time.monotonic() + limits["timeout"]
                stopping = bool(flags & sandbox.STOP)
                if stopping or start + len(entries) == len(exercises):
                    break
                tokens[index + 1] = _send_token(token_write)
            if ended:
                break
    finally:  # also when the grader is gone: the child is killed, never left behind
        status, killed = _finish(pid, wait=ended in (None, "eof"))
        tail = _tail(os.path.join(base, "output"))
        os.close(read_end)
        os.close(token_write)
        _empty(os.path.join(base, "work"))
    if ended is not None and start + len(entries) < len(exercises):
        entries.append(_failure(ended, status, killed, tail))
    return entries


def _send_token(fd: int) -> bytes:
    token = os.urandom(sandbox.TOKEN)
    try:
        os.write(fd, token)
    except OSError:  # the child is gone; the read loop will see it
        pass
    return token


class _GraderGone(Exception):
    """The grader closed its socket (or died) while a job was running."""


def _grader_gone(control: socket.socket) -> bool:
    """The grader sends nothing during a job, so a readable socket means end of stream."""
    try:
        return not control.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False
    except OSError:
        return True


def _finish(pid: int, wait: bool) -> tuple[int, bool]:
    """Wait (briefly) for the child to exit, then kill its process group and escaped descendants.

    Returns the wait status and whether the child had to be killed. The group is killed while the
    child is still an unreaped zombie, so its process id cannot have been reused by then.
    """
    exited = wait and _wait_exit(pid, _EXIT_GRACE)
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if not exited:
        os.kill(pid, signal.SIGKILL)
    status = os.waitpid(pid, 0)[1]
    _reap_orphans()
    return status, not exited


def _wait_exit(pid: int, seconds: float) -> bool:
    """True once ``pid`` has exited (left as a zombie, not reaped), False after ``seconds``."""
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    try:
        limit = time.monotonic() + seconds
        while True:
            if (
                os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
                is not None
            ):
                return True
            remaining = limit - time.monotonic()
            if remaining <= 0:
                return False
            if pidfd is not None:
                select.select([pidfd], [], [], remaining)
            else:
                time.sleep(min(remaining, 0.001))
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _reap_orphans() -> None:
    """As a subreaper we inherit processes that left the child's group; kill and reap them."""
    for _ in range(100):
        children = _children()
        if not children:
            return
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in children:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass


def _children() -> list[int]:
    me = os.getpid()
    try:
        with open(f"/proc/{me}/task/{me}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        pass
    found = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == me:
                        found.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return found


def _failure(ended: str, status: int, killed: bool, tail: str) -> dict:
    """The entry for the exercise a child was running when it stopped without replying."""
    if ended == "timeout" or (
        os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGXCPU
    ):
        return {"state": "timeout", "detail": "", "output": tail}
    if ended == "channel":
        detail = "the worker's reply was not a well-formed frame"
    elif killed:
        detail = "the worker closed its channel and did not exit"
    elif os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        detail = (
            f"the worker was killed by signal {number} ({signal.Signals(number).name})"
        )
    else:
        detail = f"the worker exited with status {os.WEXITSTATUS(status)}"
    return {
        "state": "died" if ended == "eof" else "channel",
        "detail": detail,
        "output": tail,
    }


def _tail(path: str) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - _TAIL_BYTES))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _empty(folder: str) -> None:
    """Remove anything a child managed to leave in the working directory (normally nothing)."""
    if not os.listdir(folder):
        return

    def retry(func: Callable, target: str, _exc: Any) -> None:
        try:  # a submission may have taken away permissions inside its sandbox
            os.chmod(os.path.dirname(target), 0o700)
            func(target)
        except OSError:
            pass

    try:
        os.chmod(folder, 0o700)
        for entry in os.scandir(folder):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, onerror=retry)
            else:
                os.unlink(entry.path)
        os.chmod(folder, 0o555)
    except OSError:
        pass  # what cannot be removed is removed with the whole folder when the grader ends
