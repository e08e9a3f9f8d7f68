# Two commands for a fresh machine with Python 3.11: `make book` and `make test`.
# Both create .venv on first use and install labkit with its pinned dependencies.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
TOC    ?= book/_toc.yml

.PHONY: setup test unit notebooks book lab bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# Unit tests with coverage; the book, built and then read in a browser with the network blocked
# (tests/test_book.py); then every chapter and solution notebook executed by nbval.
test: $(STAMP)
	$(BIN)/python -m pytest tests --ignore=tests/test_book.py --cov=labkit --cov-report=term-missing:skip-covered
	$(MAKE) book
	BOOK_TOC=$(TOC) $(BIN)/python -m pytest tests/test_book.py -p no:cacheprovider
	$(BIN)/python -m pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=300 -p no:cacheprovider chapters solutions

unit: $(STAMP)
	$(BIN)/python -m pytest tests --ignore=tests/test_book.py

notebooks: $(STAMP)
	$(BIN)/python -m pytest --nbval-lax --nbval-current-env chapters solutions

# Execute every notebook and build the HTML into book/_build/html. Executions are cached in
# book/_build/.jupyter_cache: a notebook whose code (and labkit) is unchanged is not run again.
# Every page is read afresh (--all, seconds) so that every warning is reported on every build;
# warnings, broken references included (-n), fail it. `make book TOC=my_toc.yml` builds a part.
book: $(STAMP)
	$(BIN)/jupyter-book build . --config book/_config.yml --toc $(TOC) --path-output book --all -W -n --keep-going

lab: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,lab]'
	$(BIN)/jupyter lab chapters

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf book/_build .pytest_cache .coverage
