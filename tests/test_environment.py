"""The conda route and the pip route install the same pinned versions."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;]+)$")


def _pins(requirements) -> dict[str, str]:
    pins = {}
    for req in requirements:
        match = PIN.match(req.strip())
        assert match, f"{req!r} is not pinned exactly with =="
        pins[match.group(1).lower()] = match.group(2)
    return pins


def pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    return _pins(reqs)


def conda_pins() -> dict[str, str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = lines.index("  - pip:") + 1
    reqs = [line.strip()[2:] for line in lines[start:] if line.strip().startswith("- ")]
    return _pins(r for r in reqs if not r.startswith("-"))  # "-e .", pip options


def test_every_dependency_is_pinned_and_both_routes_agree():
    assert pyproject_pins() == conda_pins()


def test_torch_is_the_cpu_release_the_course_pins():
    assert pyproject_pins()["torch"] == "2.13.0"


def test_jupyter_book_is_version_one():
    assert pyproject_pins()["jupyter-book"].startswith("1.")


def test_both_routes_ask_for_the_same_torch_index():
    """environment.yml's extra index is the Makefile's default TORCH_INDEX."""
    index = re.search(r"^TORCH_INDEX \?= (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert index, "the Makefile sets no default TORCH_INDEX"
    assert (
        f"- --extra-index-url {index.group(1)}"
        in (ROOT / "environment.yml").read_text()
    )
