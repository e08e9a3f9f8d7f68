"""One citation style: author and year, in the text and in the bibliography.

``bibtex_reference_style: author_year`` writes citations in the text as "[Kingma and Ba,
2015]", but the bibliography's labels come from the pybtex style, and pybtex's styles
number their entries ("[1]") or abbreviate them ("[KB15]"). This extension registers the
pybtex style ``authoryear``: pybtex's ``plain`` (entries sorted by author, then year and
title) with labels "Kingma and Ba, 2015", "Glorot and Bengio, 2010", "He et al., 2015"
(letters after the year tell apart one author's entries of the same year), so the
bibliography reads like the text.
"""

from __future__ import annotations

from collections import Counter

from pybtex.backends.plaintext import Backend as PlainText
from pybtex.plugin import register_plugin
from pybtex.style.formatting.plain import Style as PlainStyle
from pybtex.style.labels import BaseLabelStyle


def _surname(person) -> str:
    """The surname as printed: von part and last names, TeX markup undone."""
    from pybtex.richtext import Text

    parts = person.rich_prelast_names + person.rich_last_names
    return " ".join(str(Text(part).render_as("text")) for part in parts)


def author_year(entry) -> str:
    """``"Surname, 2015"``, ``"Surname and Other, 2015"`` or ``"Surname et al., 2015"``
    (for one, two, three or more authors)."""
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [_surname(person) for person in people]
    if not names:
        who = entry.fields.get("key", entry.key)
    elif len(names) == 1:
        who = names[0]
    elif len(names) == 2:
        who = f"{names[0]} and {names[1]}"
    else:
        who = f"{names[0]} et al."
    return f"{who}, {entry.fields.get('year', 'n.d.')}"


class AuthorYearLabels(BaseLabelStyle):
    """Author-year labels, with a, b, ... appended where two entries would share one."""

    def format_labels(self, sorted_entries):
        entries = list(sorted_entries)
        labels = [author_year(entry) for entry in entries]
        counts, seen = Counter(labels), Counter()
        for label in labels:
            if counts[label] > 1:
                seen[label] += 1
                yield label + "abcdefghijklmnopqrstuvwxyz"[seen[label] - 1]
            else:
                yield label


class AuthorYearStyle(PlainStyle):
    default_label_style = AuthorYearLabels


register_plugin("pybtex.style.formatting", "authoryear", AuthorYearStyle)
# pybtex looks a plugin up among its runtime registrations, then in every installed
# distribution's entry points, and it looks the text backend up each time an entry or
# name is rendered as text (over 200 times a build, seconds in all); registered here, it
# is found at once.
register_plugin("pybtex.backends", "plaintext", PlainText)
register_plugin("pybtex.backends.aliases", "text", PlainText)


def setup(app):
    return {"parallel_read_safe": True, "parallel_write_safe": True}
