"""The exercise cell behind a function: its source, and the names it takes from
elsewhere.

``check(id, fn)`` grades the cell that defined ``fn``, as the grader will, so it needs
that cell's whole source (its imports and helpers included), and it warns about names
the cell uses but does not define: the grader runs the cell on its own, where they do
not exist. This runs in the learner's own process on the learner's own code.
"""

from __future__ import annotations

import builtins
import inspect
import linecache
import symtable
import textwrap
from typing import Callable

__all__ = ["outside_names", "source_of"]


def source_of(fn: Callable) -> str:
    """The source of the cell (IPython) or of the function (elsewhere) that defined
    ``fn``.

    In IPython, ``fn.__code__.co_filename`` names the cell, whose whole source IPython
    keeps in ``linecache`` (entries without a modification time). Elsewhere, the
    function's own source (``inspect.getsource``). OSError when there is none (a
    function typed at a plain Python prompt, a builtin).
    """
    code = getattr(inspect.unwrap(fn), "__code__", None)
    entry = linecache.cache.get(code.co_filename) if code is not None else None
    if entry is not None and len(entry) == 4 and entry[1] is None:
        return "".join(entry[2])
    try:
        return textwrap.dedent(inspect.getsource(fn))
    except TypeError:
        raise OSError(f"{fn!r} has no Python source") from None


def outside_names(source: str) -> list[str]:
    """Names the code uses at module level or as globals that it never binds (by
    assignment, import, def or class) and that are not builtins; [] if it does not
    parse."""
    try:
        top = symtable.symtable(source, "<cell>", "exec")
    except (SyntaxError, ValueError):
        return []
    bound: set[str] = set()
    used: set[str] = set()
    tables = [top]
    while tables:
        table = tables.pop()
        module = table.get_type() == "module"
        for symbol in table.get_symbols():
            if not (module or symbol.is_global()):
                continue
            name = symbol.get_name()
            if symbol.is_assigned() or symbol.is_imported():
                bound.add(name)
            if module and symbol.is_namespace():  # a def or class at the top
                bound.add(name)
            if symbol.is_referenced():
                used.add(name)
        tables += table.get_children()
    return sorted(
        name
        for name in used - bound
        if not hasattr(builtins, name)
        and not (name.startswith("__") and name.endswith("__"))
    )
