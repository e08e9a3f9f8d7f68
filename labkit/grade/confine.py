"""Kernel confinement of one notebook, from inside the slot's sandbox (Linux only).

Runs in the grading worker, never in the grader, and imports nothing from labkit: this
file is mounted into the sandbox on its own. ``isolate()`` is called in a process forked
from the warm worker for one notebook. It moves that process into new user, mount, PID,
network, IPC and UTS namespaces of its own, and forks the notebook's *runner*, which is
PID 1 of the new PID namespace; the caller stays behind as a monitor that waits for the
runner and exits with its status. When the monitor or the runner is killed, the kernel
kills every process of the namespace: nothing of the notebook outlives its verdict.

The runner then calls ``private_filesystem()``: fresh, size-limited tmpfs on ``/tmp``
(its working folder) and ``/dev/shm`` (its only writable places), ``/proc`` covered by
an empty read-only tmpfs (no view of any process), then every capability dropped and
``no_new_privs`` set. Each exercise runs in a child of the runner that calls
``restrict()``: resource limits, then a seccomp filter that refuses new processes (fork,
vfork, clone without CLONE_THREAD, clone3), ``execve``, ``unshare``, ``setns``, and
reaching into another process (``ptrace``, ``process_vm_readv``/``writev``). Threads
remain allowed; the address-space limit bounds them.
"""

from __future__ import annotations

import ctypes
import os
import platform
import resource
import signal
import struct
import sys

__all__ = ["isolate", "prctl", "private_filesystem", "restrict"]

_CLONE_NEWNS = 0x00020000
_CLONE_NEWUTS = 0x04000000
_CLONE_NEWIPC = 0x08000000
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWPID = 0x20000000
_CLONE_NEWNET = 0x40000000
_CLONE_THREAD = 0x00010000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_REC, _MS_PRIVATE = 0x4000, 1 << 18
_PR_SET_PDEATHSIG = 1
_PR_CAPBSET_DROP = 24
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
_SECCOMP_MODE_FILTER = 2
_CAPABILITY_VERSION_3 = 0x20080522
_EPERM, _ENOSYS = 1, 38

# (audit architecture, {syscall: action}) per machine; "thread" marks clone, allowed
# only with CLONE_THREAD. Numbers from the kernel's syscall tables.
_SYSCALLS = {
    "x86_64": (
        0xC000003E,
        {56: "thread", 57: _EPERM, 58: _EPERM, 59: _EPERM, 272: _EPERM, 308: _EPERM}
        | {322: _EPERM, 435: _ENOSYS, 101: _EPERM, 310: _EPERM, 311: _EPERM},
    ),
    "aarch64": (
        0xC00000B7,
        {220: "thread", 221: _EPERM, 97: _EPERM, 268: _EPERM, 281: _EPERM}
        | {435: _ENOSYS, 117: _EPERM, 270: _EPERM, 271: _EPERM},
    ),
}

_libc = None


def _call(name: str, *args) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if getattr(_libc, name)(*args) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{name}: {os.strerror(errno)}")


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def prctl(option: int, value: int) -> None:
    """Linux's prctl (a death signal, a subreaper); elsewhere nothing (the process group
    and the wall clock do without it)."""
    if sys.platform.startswith("linux"):
        _call("prctl", option, value, 0, 0, 0)


def supported() -> bool:
    """Whether this machine's kernel confinement is known here (Linux,
    x86_64/aarch64)."""
    return platform.system() == "Linux" and platform.machine() in _SYSCALLS


def isolate() -> None:
    """Enter new namespaces and fork the runner; returns in the runner only.

    The calling process becomes the monitor: it waits for the runner (PID 1 of the new
    PID namespace) and exits with the runner's status, or dies of the runner's signal.
    """
    uid, gid = os.geteuid(), os.getegid()
    flags = _CLONE_NEWUSER | _CLONE_NEWNS | _CLONE_NEWPID | _CLONE_NEWNET
    _call("unshare", flags | _CLONE_NEWIPC | _CLONE_NEWUTS)
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{uid} {uid} 1")
    _write("/proc/self/gid_map", f"{gid} {gid} 1")
    runner = os.fork()
    if runner == 0:
        _call("prctl", _PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        return
    os.closerange(3, _max_fd())
    status = os.waitpid(runner, 0)[1]
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


def _max_fd() -> int:
    return min(resource.getrlimit(resource.RLIMIT_NOFILE)[0], 65536)


def private_filesystem(scratch_bytes: int) -> None:
    """In the runner: a fresh /tmp and /dev/shm, no /proc, then no capabilities and no
    new privileges."""
    _call("mount", b"none", b"/", None, _MS_REC | _MS_PRIVATE, None)
    flags = _MS_NOSUID | _MS_NODEV
    options = f"size={scratch_bytes},mode=0700".encode()
    _call("mount", b"tmpfs", b"/tmp", b"tmpfs", flags, options)
    # the worker's /dev/shm would be shared by every notebook it grades: one each
    _call("mount", b"tmpfs", b"/dev/shm", b"tmpfs", flags, options)
    hidden = flags | _MS_NOEXEC | _MS_RDONLY
    _call("mount", b"tmpfs", b"/proc", b"tmpfs", hidden, b"size=4k,mode=0555")
    os.chdir("/tmp")
    _drop_capabilities()


def _drop_capabilities() -> None:
    for cap in range(64):
        try:
            _call("prctl", _PR_CAPBSET_DROP, cap, 0, 0, 0)
        except OSError:
            break  # past the last capability this kernel knows
    _call("prctl", _PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    _call(
        "capset",
        ctypes.byref(Header(_CAPABILITY_VERSION_3, 0)),
        (ctypes.c_uint32 * 6)(),
    )
    _call("prctl", _PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)


def restrict(limits: dict[str, int]) -> None:
    """In an exercise's process: resource limits (``RLIMIT_*`` name -> soft limit; the
    hard limit is the same, one more second for CPU), then the seccomp filter."""
    for name, soft in limits.items():
        hard = soft + 1 if name == "RLIMIT_CPU" else soft
        resource.setrlimit(getattr(resource, name), (soft, hard))
    _call("prctl", _PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    program = _filter()
    prog = struct.pack("HxxxxxxP", len(program) // 8, ctypes.addressof(program))
    buffer = ctypes.create_string_buffer(prog)
    _call("prctl", _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, buffer, 0, 0)


def _filter() -> ctypes.Array:
    """The BPF program: the machine's audit architecture or death; then per syscall."""
    arch, rules = _SYSCALLS[platform.machine()]
    ld_w_abs, jeq_k, jset_k, ret_k = 0x20, 0x15, 0x45, 0x06
    allow, kill = 0x7FFF0000, 0x80000000
    errno = 0x00050000

    def op(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
        return struct.pack("HBBI", code, jt, jf, k)

    code = [op(ld_w_abs, 4), op(jeq_k, arch, 1, 0), op(ret_k, kill), op(ld_w_abs, 0)]
    if arch == 0xC000003E:  # x32 system calls (bit 30) are refused altogether
        code += [op(0x35, 0x40000000, 0, 1), op(ret_k, errno | _EPERM)]  # jge
    for number, action in rules.items():
        if action == "thread":
            code += [
                op(jeq_k, number, 0, 4),
                op(ld_w_abs, 16),  # the low half of the first argument: the flags
                op(jset_k, _CLONE_THREAD, 0, 1),
                op(ret_k, allow),
                op(ret_k, errno | _EPERM),
            ]
        else:
            code += [op(jeq_k, number, 0, 1), op(ret_k, errno | action)]
    code.append(op(ret_k, allow))
    data = b"".join(code)
    return ctypes.create_string_buffer(data, len(data))
