"""The grader's side of the worker processes: start them warm, send jobs, get replies.

``WorkerPool(size, modules, isolation)`` starts one fresh interpreter
(``worker.main``), in the bubblewrap sandbox that ``sandbox.command`` describes (or as a
plain process with isolation "none"), which imports the allowed ``modules`` once and
forks ``size`` servers; each server is a *slot* that grades one job (a notebook's
exercises) at a time, each in a confinement of its own. ``run(request)`` borrows an idle
slot, sends the request as a channel frame over the slot's socket and waits for the
reply. A slot that dies, stalls or answers out of turn is closed and replaced by a
freshly started one; the job is then reported lost (``WorkerLost``).

The workers start in their own session (Ctrl-C in the terminal reaches only the
grader), with an environment of their own (none of the grader's variables: no tokens or
passwords), single-threaded numerical libraries and no GPU, and exit when their socket
closes, which also happens if the grader dies (bubblewrap's ``--die-with-parent`` then
kills them as well).
"""

from __future__ import annotations

import os
import queue
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
from typing import Any

from . import channel, sandbox

__all__ = ["WorkerPool", "WorkerLost", "WorkerStartError", "default_jobs"]

_ENTRY_BYTES = 2**16  # beside each exercise's reply: its output's tail, its verdict
_START_SECONDS = 180.0  # importing torch on a cold disk can take a while


class WorkerLost(RuntimeError):
    """A worker slot died, stalled or broke the protocol while grading a job."""


class WorkerStartError(RuntimeError):
    """The worker interpreter could not start: the grader itself cannot work here."""


def default_jobs() -> int:
    """The number of cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class _Slot:
    """One server process's socket, and the master process it belongs to."""

    def __init__(self, sock: socket.socket, master: "_Master"):
        self.sock = sock
        self.master = master
        self.ready = False
        self.reader = channel.FrameReader(max_bytes=1 << 36)

    def call(self, message: bytes, seconds: float, max_bytes: int) -> Any:
        """Send one job; its reply, refused unread if it announces over
        ``max_bytes``."""
        if not self.ready:
            try:
                self._receive(_START_SECONDS)
            except WorkerLost as exc:
                raise WorkerStartError(
                    f"the grading worker could not start: {exc}"
                ) from None
            self.ready = True
        self.reader.max_bytes = max_bytes
        self.sock.settimeout(seconds)
        try:
            self.sock.sendall(channel.frame(message))
        except OSError as exc:
            raise WorkerLost(f"could not send the job to the worker ({exc})") from None
        return self._receive(seconds)

    def _receive(self, seconds: float) -> Any:
        self.sock.settimeout(seconds)
        frames: list = []
        try:
            while not frames:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    raise WorkerLost(
                        "the worker process ended unexpectedly"
                        + self.master.describe_failure()
                    )
                frames = self.reader.feed(chunk)
        except socket.timeout:
            raise WorkerLost(
                f"the worker did not answer within {seconds:.0f} s"
            ) from None
        except channel.ChannelError as exc:
            raise WorkerLost(f"the worker's reply was malformed ({exc})") from None
        except (
            OSError
        ) as exc:  # the socket was closed under us: the pool is shutting down
            raise WorkerLost(f"the connection to the worker was lost ({exc})") from None
        if len(frames) != 1 or self.reader.pending:
            raise WorkerLost("the worker sent more than one reply")
        try:
            return channel.decode(frames[0][1], allow_bytes=True)
        except channel.ChannelError as exc:
            raise WorkerLost(f"the worker's reply was malformed ({exc})") from None

    def close(self) -> None:
        try:  # wakes a thread blocked receiving on this socket
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class _Master:
    """The worker interpreter: started once (in its sandbox), forks its slots'
    servers."""

    def __init__(self, slots: int, modules: tuple[str, ...], isolation: str):
        pairs = [socket.socketpair() for _ in range(slots)]
        theirs = [b.fileno() for _, b in pairs]
        self.log = tempfile.TemporaryFile(prefix="labkit-grade-worker-")
        argv, env, self.folder = sandbox.command(
            modules,
            isolation,
            [isolation, ",".join(modules), str(sandbox.SCRATCH_BYTES)],
            [str(fd) for fd in theirs],
        )
        try:
            self.process = subprocess.Popen(
                argv,
                pass_fds=theirs,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self.log,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            raise WorkerStartError(
                f"the grading worker could not start: {exc}"
            ) from None
        finally:
            for _, b in pairs:
                b.close()
        self.slots = [_Slot(a, self) for a, _ in pairs]

    def describe_failure(self) -> str:
        """The last lines the worker interpreter wrote to stderr, if any, for error
        messages."""
        try:
            self.log.seek(0)
            text = self.log.read()[-2000:].decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""
        return f":\n{text}" if text else ""

    def stop(self, seconds: float = 2.0) -> None:
        """Close the sockets (servers exit on end of stream), then kill whatever is
        left.

        A master that never finished starting is killed at once: it has nothing to
        finish.
        """
        started = all(slot.ready for slot in self.slots)
        for slot in self.slots:
            slot.close()
        try:
            self.process.wait(seconds if started else 0)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.process.pid, 9)
            except ProcessLookupError:
                pass
            self.process.wait()
        self.log.close()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def _reply_budget(request: dict) -> int:
    """The most bytes a worker may answer one job with: each exercise's reply limit,
    with room for its output's tail and verdict; more is a broken worker, refused before
    any of it is buffered, so one job costs the grader a bounded amount of memory."""
    return (
        len(request["exercises"]) * (request["limits"]["reply"] + _ENTRY_BYTES) + 2**20
    )


class WorkerPool:
    """``size`` warm worker slots; ``run(request)`` grades one job on whichever slot is
    free."""

    def __init__(
        self,
        size: int,
        modules: tuple[str, ...] = ("numpy",),
        isolation: str | None = None,
    ):
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"size must be a positive integer, got {size!r}")
        if not hasattr(os, "fork"):
            raise WorkerStartError(
                "grading needs a system with fork (Linux or macOS); on "
                "Windows, grade inside WSL, or use check() on each exercise"
            )
        self.size = size
        self.modules = tuple(modules)
        self.isolation = isolation or sandbox.default_isolation()
        self._masters: list[_Master] = []
        self._idle: queue.Queue[_Slot] = queue.Queue()
        self._lock = threading.Lock()
        self._closed = False
        self._start(size)

    def _start(self, slots: int) -> None:
        master = _Master(slots, self.modules, self.isolation)
        self._masters.append(master)
        for slot in master.slots:
            self._idle.put(slot)

    def run(self, request: dict, seconds: float) -> dict:
        """Send ``request`` (a job) to an idle slot and return its reply's entries."""
        nonce = secrets.token_hex(16)
        message = channel.encode(dict(request, nonce=nonce), allow_bytes=True)
        slot = self._borrow()
        try:
            reply = slot.call(message, seconds, _reply_budget(request))
            if not isinstance(reply, dict) or reply.get("nonce") != nonce:
                raise WorkerLost("the worker's reply did not match the job")
            if "error" in reply:
                raise WorkerLost(f"the worker failed: {reply['error']}")
        except WorkerStartError:
            slot.close()
            raise
        except BaseException:
            slot.close()
            with self._lock:
                if not self._closed:
                    self._start(1)
            raise
        self._idle.put(slot)
        return reply

    def _borrow(self) -> _Slot:
        while True:
            try:
                return self._idle.get(timeout=0.2)
            except queue.Empty:
                if self._closed:
                    raise WorkerLost("the worker pool was closed") from None

    def close(self) -> None:
        """Stop every worker process and remove their temporary directories."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for master in self._masters:
            master.stop()

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
