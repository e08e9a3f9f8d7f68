"""The API pages: show a class's public ancestors, not labkit's private base classes.

``RNN`` and ``LSTM`` share a private ``_RecurrentLayer``, the losses a private
``_Loss``: those bases are implementation details with no page of their own, so "Bases:"
lists the nearest public classes they derive from (``Module``) instead.
"""

from __future__ import annotations


def _public(bases) -> list[type]:
    public = []
    for base in bases:
        candidates = (
            _public(base.__bases__) if base.__name__.startswith("_") else [base]
        )
        public += [c for c in candidates if c not in public]
    return public


def public_bases(app, name, obj, options, bases: list) -> None:
    """autodoc-process-bases: replace private bases, in place, by public ancestors."""
    bases[:] = _public(bases)


def setup(app):
    app.connect("autodoc-process-bases", public_bases)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
