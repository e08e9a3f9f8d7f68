"""The runner: executes one notebook's exercise cells and sends back their outputs as
data.

Runs inside the grading sandbox and imports nothing from labkit (only the standard
library, numpy and ``channel``), so that this file and ``channel`` can be mounted into
the sandbox on their own. ``call_case`` and ``to_data`` also serve the grader's
in-process ``evaluate``.

``serve_notebook`` runs in the notebook's runner process (PID 1 of the notebook's PID
namespace under bubblewrap). For each exercise it reads the token the worker hands out,
forks a fresh process from its own warm state, and waits for it. That process restricts
itself (``confine.restrict``: resource limits and a seccomp filter, or the limits alone
without isolation), reseeds the global random generators, executes the cell in a fresh
namespace, calls the function on every case's inputs, and writes one reply frame: the
exercise's index and token, then the outcomes as a channel message. If it dies first,
the runner writes the reply for it (how it died). So an exercise sees nothing another
one did, and the worker sees one reply per exercise, in order.

Inputs are passed read-only (numpy arrays with ``writeable=False``): a function that
changes its input in place is told so, by the name of the argument.
"""

from __future__ import annotations

import builtins
import copy
import faulthandler
import inspect
import numbers
import os
import random
import signal
import sys
from typing import Any, Callable

import numpy as np

from . import channel

TOKEN = 16  # bytes of the random token that authenticates a reply
HEADER = 4 + TOKEN  # a reply starts with its exercise index (u32) and token
REPLIED = 86  # exit status of an exercise process that wrote its reply
_ERROR_CHARS = 1000  # longest exception message kept from a submission
_MAX_ITEMS = 10_000_000  # outputs larger than this many numbers are refused
_MAX_DEPTH = 20


# --------------------------------------------------------------------------- cases


def to_data(obj: Any, _depth: int = 0) -> Any:
    """Plain-data copy of a returned value: arrays, Python numbers, str, bool, None,
    containers.

    Torch tensors become numpy arrays; numpy scalars become Python numbers; tuples stay
    tuples and lists stay lists (so feedback can name what was returned). Anything else
    raises TypeError naming its type.
    """
    if _depth > _MAX_DEPTH:
        raise TypeError(
            f"the returned value is nested more than {_MAX_DEPTH} levels deep"
        )
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, numbers.Integral) and not isinstance(obj, np.ndarray):
        return int(obj)
    if isinstance(obj, numbers.Real) and not isinstance(obj, np.ndarray):
        return float(obj)
    if type(obj).__module__.startswith("torch") and hasattr(obj, "detach"):
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "biuf":
            raise TypeError(
                f"arrays of dtype {obj.dtype} are not accepted; return numbers"
            )
        if obj.size > _MAX_ITEMS:
            raise TypeError(
                f"the returned array has {obj.size} items, more than {_MAX_ITEMS}"
            )
        return np.array(obj, copy=True)
    if isinstance(obj, (tuple, list)):
        items = [to_data(item, _depth + 1) for item in obj]
        return tuple(items) if isinstance(obj, tuple) else items
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            raise TypeError("dictionaries must have string keys")
        return {k: to_data(v, _depth + 1) for k, v in obj.items()}
    raise TypeError(
        f"a {type(obj).__name__} cannot be checked; return numpy arrays or numbers"
    )


def _read_only(value: Any) -> Any:
    """``value`` with every numpy array inside it made read-only (in place)."""
    if isinstance(value, np.ndarray):
        value.flags.writeable = False
    elif isinstance(value, (tuple, list)):
        for item in value:
            _read_only(item)
    elif isinstance(value, dict):
        for item in value.values():
            _read_only(item)
    return value


def call_case(fn: Callable, args: tuple, kwargs: dict) -> tuple[str, Any, str]:
    """Call ``fn`` on read-only private copies of ``args`` and ``kwargs``.

    Returns ``(kind, value, error)``: ``("value", plain data, "")``, ``("raised", None,
    message)``, or ``("not_implemented", None, "")`` for the untouched stub.
    """
    given = _read_only((copy.deepcopy(args), copy.deepcopy(kwargs)))
    try:
        value = fn(*given[0], **given[1])
    except NotImplementedError:
        return "not_implemented", None, ""
    except ValueError as exc:
        if "read-only" in str(exc):
            return "raised", None, _modified(fn, args, kwargs)
        return "raised", None, f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # the learner's bug is feedback, not a crash
        return "raised", None, f"{type(exc).__name__}: {exc}"
    try:
        return "value", to_data(value), ""
    except TypeError as exc:
        return "raised", None, f"the return value: {exc}"


def _modified(fn: Callable, args: tuple, kwargs: dict) -> str:
    """Which input a function writes to: call it again on writable copies and
    compare."""
    given = copy.deepcopy(args), copy.deepcopy(kwargs)
    try:
        fn(*given[0], **given[1])
        bound = inspect.signature(fn).bind(*args, **kwargs).arguments
        changed = inspect.signature(fn).bind(*given[0], **given[1]).arguments
    except Exception:
        bound, changed = {}, {}
    names = [name for name in bound if not _same(bound[name], changed[name])]
    if names:
        which = ", ".join(f"`{name}`" for name in names)
        return f"your function modified its input {which}; return a new array"
    return "your function tried to modify one of its inputs; return a new array"


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and np.array_equal(a, b, equal_nan=True)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return True


# --------------------------------------------------------------------------- the runner


def serve_notebook(
    exercises: list,
    start: int,
    limits: dict,
    reply_fd: int,
    token_fd: int,
    restrict: Callable[[dict[str, int]], None],
) -> None:
    """Run ``exercises[start:]``, one fresh process each; see the module's docstring.

    ``limits`` carries ``timeout``, ``memory`` and ``reply`` as in the grader's
    ``Limits.request()``, and ``baseline``, the worker's address space in bytes.
    """
    for index in range(start, len(exercises)):
        token = _read_exactly(token_fd, TOKEN)
        pid = os.fork()
        if pid == 0:
            code = 70
            try:
                os.close(token_fd)
                _exercise_process(
                    exercises[index], index, token, limits, reply_fd, restrict
                )
                code = REPLIED
            finally:
                os._exit(code)
        status = os.waitpid(pid, 0)[1]
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == REPLIED:
            continue
        died = {"died": _death(status), "timeout": _signal(status) == signal.SIGXCPU}
        _write_all(reply_fd, _frame(index, token, channel.encode(died)))


def _exercise_process(
    spec: dict,
    index: int,
    token: bytes,
    limits: dict,
    reply_fd: int,
    restrict: Callable[[dict[str, int]], None],
) -> None:
    wanted = {"RLIMIT_CPU": int(limits["timeout"]) + 1, "RLIMIT_CORE": 0}
    if limits.get("baseline"):
        wanted["RLIMIT_AS"] = limits["baseline"] + limits["memory"]
    restrict(wanted)
    faulthandler.enable(file=sys.__stderr__, all_threads=True)
    reseed()
    reply = _run_exercise(spec)
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except Exception:
            pass
    try:
        payload = channel.encode(reply)
    except (TypeError, ValueError, RecursionError, MemoryError) as exc:
        payload = channel.encode({"encode_error": _text(exc)})
    if len(payload) > limits["reply"]:
        payload = channel.encode({"too_large": len(payload)})
    _write_all(reply_fd, _frame(index, token, payload))


def _frame(index: int, token: bytes, payload: bytes) -> bytes:
    return channel.frame(index.to_bytes(4, "big") + token + payload)


def _signal(status: int) -> int | None:
    return os.WTERMSIG(status) if os.WIFSIGNALED(status) else None


def _death(status: int) -> str:
    number = _signal(status)
    if number is not None:
        return (
            f"the worker was killed by signal {number} ({signal.Signals(number).name})"
        )
    return f"the worker exited with status {os.waitstatus_to_exitcode(status)}"


def _read_exactly(fd: int, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            raise EOFError("the worker closed the token pipe")
        data += chunk
    return data


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def reseed() -> None:
    """Same global random state before every exercise, whatever ran before it."""
    random.seed(0)
    np.random.seed(0)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.random.default_generator.manual_seed(0)


def _run_exercise(spec: dict) -> dict:
    """Execute one exercise cell in a fresh namespace and call its function on every
    case."""
    filename = f"<exercise {spec['id']}>"
    allowed = set(spec.get("modules", ()))
    cases = channel.decode(spec["cases"])  # before the cell runs: it might patch numpy
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    try:
        exec(compile(spec["source"], filename, "exec", dont_inherit=True), namespace)
    except BaseException as exc:  # the cell's own error (or exit) is the verdict
        return _forbidden(exc, allowed) or {
            "cell_error": _describe(exc, filename),
            "memory": _out_of_memory(exc),
        }
    function = namespace.get(spec["function"])
    if function is None:
        return {"missing": True}
    if not callable(function):
        return {"not_callable": True}
    seen: dict[str, Any] = {"memory": False, "forbidden": None}

    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except BaseException as exc:
            seen["memory"] |= _out_of_memory(exc)
            seen["forbidden"] = seen["forbidden"] or _forbidden(exc, allowed)
            raise

    call.__wrapped__ = function  # type: ignore[attr-defined]  # its parameter names
    outcomes = []
    for args, kwargs in cases:
        try:
            kind, value, error = call_case(call, args, kwargs)
            outcomes.append([kind, value, error[:_ERROR_CHARS]])
        except (SystemExit, KeyboardInterrupt, GeneratorExit) as exc:
            return {"exit": _describe(exc, filename)}
        except BaseException as exc:  # MemoryError while copying, an unprintable error
            seen["memory"] |= _out_of_memory(exc)
            outcomes.append(["raised", None, _describe(exc, filename)])
        if seen["forbidden"]:
            return seen["forbidden"]
        if seen["memory"]:  # the verdict is decided; the other cases would fail again
            break
    return {"outcomes": outcomes, "memory": seen["memory"]}


def _forbidden(exc: BaseException, allowed: set[str]) -> dict | None:
    """The reply for an import of a module the exercise does not allow, if that is
    it."""
    if not isinstance(exc, ImportError) or not isinstance(exc.name, str):
        return None
    top = exc.name.split(".")[0]
    if top in sys.stdlib_module_names or top in allowed:
        return None
    return {"forbidden": top}


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
