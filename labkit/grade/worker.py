"""The grading worker: a warm interpreter that runs each notebook in a confinement of
its own.

This module runs in a fresh interpreter that the grader starts (``pool.WorkerPool``,
through ``sandbox.command``), never in the grader's process, and imports nothing from
labkit: it sees only the standard library, the exercises' allowed packages and its own
four files. The process tree during a batch, with bubblewrap::

    grader          holds the exercises, their cases and expected values; judges outputs
    └─ bwrap        the worker's sandbox (``sandbox``): namespaces, read-only view, /tmp
       └─ master    imports the allowed packages once (warm)
          └─ server  one per slot (core), forked from the master; one notebook at a time
             └─ monitor   forked per notebook; enters new namespaces (``confine``)
                └─ runner   PID 1 of the notebook's PID namespace, own tmpfs, no
                            privileges
                   └─ exercise   forked per exercise; limits and seccomp; runs the
                                 cell

The grader sends a job (the notebook's exercise cells and the *inputs* of each case,
never the expected values) over a socket; the server forks the monitor and returns, per
exercise, either the runner's reply (the outputs, as channel data, with what the
exercise printed) or why there is none (a timeout, the printing limit, a corrupted
channel, the runner's death). Nothing a notebook writes is executed or unpickled
anywhere: the grader decodes it with ``channel.decode`` and judges it with its own
cases.

The server enforces, from outside the notebook's namespaces, the wall-clock limit per
exercise and the limit on printed output, and then kills the monitor: the kernel then
ends the notebook's PID namespace, so no process of it survives. Each reply carries its
exercise's index and a token the server hands out only after the previous reply, so an
exercise that writes into the channel spoils its own verdict and no other. When a
notebook is stopped early, the exercises left run in a fresh confinement.

With ``isolation="none"`` there is no bubblewrap and no confinement: the runner is a
plain child in a process group of its own, with the resource limits only.
"""

from __future__ import annotations

import gc
import importlib
import os
import resource
import select
import shutil
import signal
import socket
import sys
import tempfile
import time
import traceback

from . import channel, confine, runner

_TAIL_BYTES = 2000  # how much of an exercise's output the server reports
_EXIT_GRACE = 2.0  # seconds a notebook gets to exit after its last reply
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


# ------------------------------------------------------------------- master and servers


def main(argv: list[str]) -> None:
    """Entry point: ``isolation preload scratch view fd [fd ...]``; one server per
    socket.

    ``preload`` is a comma-separated list of modules imported once here; ``scratch`` the
    size in bytes of each notebook's private tmpfs; ``view`` a folder to remove when the
    servers end (the module view of isolation "none"), or empty.
    """
    isolation, preload, scratch, view, *fds = argv
    try:
        _serve_all(isolation, preload, int(scratch), [int(fd) for fd in fds])
    finally:
        if view:
            shutil.rmtree(view, ignore_errors=True)


def _serve_all(isolation: str, preload: str, scratch: int, sockets: list[int]) -> None:
    for name in filter(None, preload.split(",")):
        importlib.import_module(name)
    _warm_up()
    gc.collect()
    # keep the warm heap shared with the children (no copy-on-write by the GC)
    gc.freeze()
    settings = {"isolated": isolation == "bwrap", "scratch": scratch}
    if len(sockets) == 1:
        serve(sockets[0], settings)
        return
    servers = []
    for fd in sockets:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                for other in sockets:
                    if other != fd:
                        os.close(other)
                serve(fd, settings)
                code = 0
            except BaseException:
                # into the log the grader shows if the worker fails
                traceback.print_exc()
            finally:
                os._exit(code)
        servers.append(pid)
    for fd in sockets:
        os.close(fd)
    for pid in servers:
        os.waitpid(pid, 0)


def _warm_up() -> None:
    """Run the lazy first-time initialisations once here, not in every child (none
    starts a thread, so forking stays safe)."""
    runner.reseed()
    numpy = sys.modules["numpy"]
    a = numpy.ones((4, 4))
    numpy.isclose(a @ a, numpy.exp(a)).any()
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)
        x = torch.ones(3, 3, dtype=torch.float64, requires_grad=True)
        torch.softmax(x @ x, dim=1).sum().backward()


def serve(fd: int, settings: dict) -> None:
    """Answer job requests on socket ``fd`` until the grader closes it."""
    confine.prctl(_PR_SET_CHILD_SUBREAPER, 1)
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
                    "entries": run_job(request, control, settings),
                }
            except _GraderGone:
                return
            except Exception as exc:  # a bug here must reach the grader, not hang it
                reply = {
                    "nonce": request.get("nonce"),
                    "error": f"{type(exc).__name__}: {exc}",
                }
            control.sendall(channel.frame(channel.encode(reply, allow_bytes=True)))


def run_job(request: dict, control: socket.socket | None, settings: dict) -> list[dict]:
    """One entry per exercise of the job, in order; a fresh notebook after any
    failure."""
    exercises, limits = request["exercises"], request["limits"]
    entries: list[dict] = []
    while len(entries) < len(exercises):
        entries += _run_notebook(exercises, len(entries), limits, control, settings)
    return entries


class _Output:
    """What the notebook printed (stdout and stderr share one pipe): counted, tail
    kept."""

    def __init__(self, fd: int):
        self.fd = fd
        self.count = 0
        self.tail = b""
        os.set_blocking(fd, False)

    def drain(self) -> bool:
        """Read what is there (at most 1 MiB, so that a flood cannot keep the server
        here); False at end of stream."""
        for _ in range(16):
            try:
                chunk = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                return True
            if not chunk:
                return False
            self.count += len(chunk)
            self.tail = (self.tail + chunk)[-_TAIL_BYTES:]
        return True

    def take(self) -> dict:
        """The output of the exercise that just ended; starts counting the next one."""
        self.drain()
        taken = {
            "output": self.tail.decode("utf-8", "replace"),
            "output_bytes": self.count,
        }
        self.count, self.tail = 0, b""
        return taken


def _run_notebook(
    exercises: list, start: int, limits: dict, control: socket.socket | None, settings
) -> list[dict]:
    """Confine a fresh notebook for ``exercises[start:]``; collect its replies until it
    stops or fails.

    Every reply carries its exercise's index and a random token that the server sends
    only once the previous reply has been accepted. A reply out of turn, or bytes that
    are not a frame, end the notebook and are charged to the exercise that wrote them.
    """
    read_end, write_end = os.pipe()
    token_read, token_write = os.pipe()
    output_read, output_write = os.pipe()
    server = os.getpid()
    scratch = None if settings["isolated"] else tempfile.mkdtemp(prefix="notebook-")
    baseline = _address_space()
    pid = os.fork()
    if pid == 0:  # the monitor; never returns from here
        code = 70
        try:
            for fd in (read_end, token_write, output_read):
                os.close(fd)
            if control is not None:
                control.close()
            _prepare(output_write, server)
            _close_all_but(write_end, token_read)
            if settings["isolated"]:
                confine.isolate()  # from here on: the runner
                confine.private_filesystem(settings["scratch"])
                restrict = confine.restrict
            else:
                os.chdir(scratch)
                os.environ.update(TMPDIR=scratch, HOME=scratch)
                tempfile.tempdir = scratch
                restrict = _limits_only
            job_limits = dict(limits, baseline=baseline)
            runner.serve_notebook(
                exercises, start, job_limits, write_end, token_read, restrict
            )
            code = 0
        finally:
            os._exit(code)
    for fd in (write_end, token_read, output_write):
        os.close(fd)
    output = _Output(output_read)
    tokens = {start: _send_token(token_write)}
    entries: list[dict] = []
    ended = None
    reader = channel.FrameReader(max_bytes=limits["reply"] + runner.HEADER)
    poller = select.poll()
    poller.register(read_end, select.POLLIN)
    poller.register(output_read, select.POLLIN)
    if control is not None:
        poller.register(control.fileno(), select.POLLIN)
    deadline = time.monotonic() + limits["timeout"]
    try:
        while start + len(entries) < len(exercises) and ended is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                ended = "timeout"
                break
            ready = False
            for fd, _ in poller.poll(remaining * 1000):
                if fd == read_end:
                    ready = True
                elif fd == output_read:
                    if not output.drain():
                        poller.unregister(fd)
                    if output.count > limits["output"]:
                        ended = "output"
                elif _grader_gone(control):
                    raise _GraderGone
                else:
                    poller.unregister(fd)
            if ended or not ready:
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
            for _, payload in frames:
                index = int.from_bytes(payload[:4], "big")
                expected = start + len(entries)
                token = payload[4 : runner.HEADER]
                if index != expected or tokens.get(index) != token:
                    ended = "channel"
                    if index < expected and tokens.get(index) == token:
                        del entries[index - start :]  # a second reply for one exercise
                    break
                entry = {"state": "done", "payload": payload[runner.HEADER :]}
                entries.append(dict(entry, **output.take()))
                deadline = time.monotonic() + limits["timeout"]
                if start + len(entries) == len(exercises):
                    break
                tokens[index + 1] = _send_token(token_write)
    finally:  # also when the grader is gone: the notebook is killed, never left behind
        status, killed = _finish(pid, wait=ended in (None, "eof"))
        tail = output.take()
        for fd in (read_end, token_write, output_read):
            os.close(fd)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    if ended is not None and start + len(entries) < len(exercises):
        entries.append(dict(_failure(ended, status, killed), **tail))
    return entries


def _prepare(output: int, server: int) -> None:
    """In the monitor: its own process group, death with the server, stdin from
    /dev/null, stdout and stderr into the output pipe, default signal handlers."""
    os.setpgid(0, 0)
    confine.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != server:  # the server died before the line above
        os._exit(1)
    null = os.open(os.devnull, os.O_RDONLY)
    for target, source in ((0, null), (1, output), (2, output)):
        os.dup2(source, target)
    os.close(null)
    os.close(output)
    for name in ("SIGINT", "SIGPIPE", "SIGXFSZ"):
        signal.signal(getattr(signal, name), signal.SIG_DFL)


def _close_all_but(*keep: int) -> None:
    """Close every file descriptor above 2 except ``keep``: the notebook inherits no
    other."""
    start = 3
    for fd in sorted(keep):
        os.closerange(start, fd)
        start = fd + 1
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    os.closerange(start, 2**20 if limit in (resource.RLIM_INFINITY, 0) else limit)


def _limits_only(limits: dict[str, int]) -> None:
    """Without isolation: the resource limits the platform has, and nothing else."""
    for name, soft in limits.items():
        hard = soft + 1 if name == "RLIMIT_CPU" else soft
        try:
            resource.setrlimit(getattr(resource, name), (soft, hard))
        except (ValueError, OSError, AttributeError):
            pass


def _address_space() -> int:
    """Bytes of address space in use, from Linux's /proc (0 where there is none)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return 0


def _send_token(fd: int) -> bytes:
    token = os.urandom(runner.TOKEN)
    try:
        os.write(fd, token)
    except OSError:  # the notebook is gone; the read loop will see it
        pass
    return token


class _GraderGone(Exception):
    """The grader closed its socket (or died) while a job was running."""


def _grader_gone(control: socket.socket) -> bool:
    """The grader sends nothing during a job, so a readable socket means end of
    stream."""
    try:
        return not control.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False
    except OSError:
        return True


def _finish(pid: int, wait: bool) -> tuple[int, bool]:
    """Wait (briefly) for the monitor to exit, then kill its group and whatever is left.

    Returns the wait status and whether the monitor had to be killed. The group is
    killed while the monitor is still an unreaped zombie, so its id cannot have been
    reused. The runner, orphaned to this subreaper, is killed and reaped last: its PID
    namespace ends with it, and its exit is seen only once every process in there is
    gone.
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
    """True once ``pid`` has exited (left as a zombie, not reaped), False after
    ``seconds``."""
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    try:
        limit = time.monotonic() + seconds
        while True:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
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
    """As a subreaper we inherit the notebook's processes that outlived the monitor."""
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


def _failure(ended: str, status: int, killed: bool) -> dict:
    """The entry for the exercise a notebook was running when it stopped without
    reply."""
    if ended == "timeout":
        return {"state": "timeout", "detail": ""}
    if ended == "output":
        return {"state": "output", "detail": ""}
    if ended == "channel":
        return {"state": "channel", "detail": "the reply was not a well-formed frame"}
    if killed:
        detail = "the worker closed its channel and did not exit"
    elif os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        detail = (
            f"the worker was killed by signal {number} ({signal.Signals(number).name})"
        )
    else:
        detail = f"the worker exited with status {os.WEXITSTATUS(status)}"
    return {"state": "died", "detail": detail}
