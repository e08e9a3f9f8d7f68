# Two commands for a fresh machine with Python 3.11: `make book` and `make test`.
# Both create .venv on first use and install labkit with its pinned dependencies.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
TOC    ?= book/_toc.yml

.PHONY: setup test unit notebooks book serve lab bench clean

setup: $(STAMP)

# torch, pinned in pyproject.toml: on Linux PyPI's default wheel carries CUDA
# libraries (gigabytes), so its CPU build comes from TORCH_INDEX, an extra pip index;
# change it (`make setup TORCH_INDEX=https://download.pytorch.org/whl/cu126`) or empty
# it (`TORCH_INDEX=`) for PyPI's default wheel. A torch wheel that pip already finds
# without any index (a local directory in pip's find-links) is taken first, and the
# extra index is then not asked at all: set-up stays offline where pip is configured
# that way. An unreachable index costs one short timeout.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_PIN   := $(shell sed -n 's/^ *"\(torch==[^"]*\)",*$$/\1/p' pyproject.toml)
TORCH_FROM  := $(if $(and $(TORCH_INDEX),$(filter Linux,$(shell uname -s))),\
	--extra-index-url $(TORCH_INDEX) --timeout 20 --retries 1)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-index --no-deps '$(TORCH_PIN)' 2>/dev/null \
		|| $(BIN)/python -m pip install --quiet $(TORCH_FROM) '$(TORCH_PIN)'
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# First, in about a second: the code is formatted as `ruff format` leaves it
# ([tool.ruff] in pyproject.toml), and no line of labkit, its tests or its benchmarks
# is over 88 characters (E501).
# Then each notebook is executed once, by nbval, the notebook test:
# 1. labkit's tests run in parallel (-n auto, one worker per core), with coverage;
# 2. nbval runs every chapter and solution in a fresh kernel, one notebook per worker
#    at a time (--nbval-lax: every cell must run without an error; stored outputs are
#    stripped). conftest.py puts each notebook whose cells all passed, outputs included,
#    into the execution cache the book build reads (book/_build/.jupyter_cache);
# 3. the book build finds every notebook in that cache and executes none; then the
#    built book is read in a browser with the network blocked (tests/test_book.py).
# Coverage leaves out the grader's sandboxed workers: they run in bubblewrap with a
# read-only view that holds no labkit and no coverage, so nothing could be recorded; the
# worker's code that the tests run in-process is measured.
test: $(STAMP)
	$(BIN)/ruff format --check --quiet labkit tests benchmarks chapters solutions
	$(BIN)/ruff check --quiet --select E501 labkit tests benchmarks
	$(BIN)/python -m pytest -n auto tests --ignore=tests/test_book.py \
		--cov=labkit --cov-report=term-missing:skip-covered
	$(MAKE) notebooks
	$(MAKE) book
	BOOK_TOC=$(TOC) $(BIN)/python -m pytest tests/test_book.py -p no:cacheprovider

unit: $(STAMP)
	$(BIN)/python -m pytest -n auto tests --ignore=tests/test_book.py

notebooks: $(STAMP)
	$(BIN)/python -m pytest -n auto --dist loadfile --nbval-lax --nbval-current-env \
		--nbval-cell-timeout=300 -p no:cacheprovider chapters solutions

# Execute every notebook and build the HTML into book/_build/html. Executions are cached in
# book/_build/.jupyter_cache: a notebook whose code (and labkit) is unchanged is not run again.
# Every page is read afresh (--all, seconds) so that every warning is reported on every build;
# warnings, broken references included (-n), fail it. `make book TOC=my_toc.yml` builds a part.
# Then the whole book as one page, printed to book/_build/html/book.pdf by headless Chromium.
book: $(STAMP)
	$(BIN)/python book/execute.py --toc $(TOC)
	$(BIN)/jupyter-book build . --config book/_config.yml --toc $(TOC) --path-output book --all -W -n --keep-going
	$(BIN)/jupyter-book build . --config book/_config.yml --toc $(TOC) --path-output book --builder singlehtml -W -n --keep-going
	$(BIN)/python book/print_pdf.py book/_build/singlehtml book/_build/html/book.pdf

# Serve the built book at http://localhost:$(PORT)/ (search shows excerpts only over http).
PORT ?= 8000
serve:
	$(PYTHON) -m http.server $(PORT) --bind 127.0.0.1 --directory book/_build/html

lab: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,lab]'
	$(BIN)/jupyter lab chapters

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf book/_build .pytest_cache .coverage
