# Two commands for a fresh machine with Python 3.11: `make book` and `make test`.
# Both create .venv on first use and install labkit with its pinned dependencies.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev

.PHONY: setup test unit notebooks book lab bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# Unit tests with coverage, then every chapter and solution notebook executed by nbval.
test: $(STAMP)
	$(BIN)/python -m pytest tests --cov=labkit --cov-report=term-missing:skip-covered
	$(BIN)/python -m pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=300 -p no:cacheprovider chapters solutions

unit: $(STAMP)
	$(BIN)/python -m pytest tests

notebooks: $(STAMP)
	$(BIN)/python -m pytest --nbval-lax --nbval-current-env chapters solutions

# Execute every notebook (cached) and build the HTML into book/_build/html; warnings fail.
book: $(STAMP)
	$(BIN)/jupyter-book build . --config book/_config.yml --toc book/_toc.yml --path-output book -W -n --keep-going

lab: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,lab]'
	$(BIN)/jupyter lab chapters

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf book/_build .pytest_cache .coverage
