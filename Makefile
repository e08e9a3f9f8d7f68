# Two commands for a fresh machine with Python 3.11: `make book` and `make test`
# (`make check` adds the slow tier: what CI runs).
# Both create .venv on first use and install labkit with its pinned dependencies.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
TOC    ?= book/_toc.yml

.PHONY: setup test unit notebooks test-book test-slow coverage check book html pdf serve lab \
	bench clean

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

# `make test`, the quick suite (minutes), and `make test-slow`, the slow tier; CI runs
# both, the slow tier's tests under coverage (`make check`). Every test belongs to one tier: the
# slow tier is the tests marked `slow` (the grader attacked end to end, every threat in
# one batch, whole LMS batches) and the PDF.
# `make test`:
# 1. in about a second, the code is formatted as `ruff format` leaves it ([tool.ruff] in
#    pyproject.toml), and no line of code (labkit, its tests and benchmarks, the
#    notebooks' code cells, the book's build scripts) is over 88 characters (E501);
# 2. two pipelines side by side, so that neither leaves a core idle (the site build uses
#    one); make prints each one's report when it ends:
#    - `make unit`: labkit's tests (tests/, but the book's);
#    - `make test-book`: nbval, the notebook test, runs every chapter and solution in a
#      fresh kernel (--nbval-lax: every cell must run without an error; stored outputs
#      are stripped). conftest.py puts each notebook whose cells all passed, outputs
#      included, into the execution cache the book build reads
#      (book/_build/.jupyter_cache), so each notebook is executed once. Then the site,
#      built from that cache (`make html`), is read in a browser with the network
#      blocked (tests/test_book.py): every chapter, solution and book page at a phone's
#      width, and the shortest page of each kind (one of the API pages among them) at
#      tablet and desktop widths too; the slow tier reads every page at every width.
#      One visit per page and width, shared by the checks of that visit.
#    One thread per process (OMP_NUM_THREADS=1): processes are the parallelism. The
#    notebooks run on one worker per core (-n auto), labkit's tests on half as many
#    beside them, one on two cores (`make unit` alone takes one per core): the tests
#    then last about as long as the notebooks and fill the core the site build leaves
#    idle, and two pytest runs do not share two cores four ways (on two cores this took
#    `make test` from 4.5 to 3.7 minutes, and its CPU time down by a sixth). The
#    browser's run is one process: Chromium's own processes keep more than a core busy,
#    and a second browser would cost a fifth more CPU time.
PYTEST := $(BIN)/python -m pytest -p no:cacheprovider
CODE   := labkit tests benchmarks chapters solutions book conftest.py
NBVAL  := --nbval-lax --nbval-current-env --nbval-cell-timeout=300
unit notebooks test-book test-slow coverage: export OMP_NUM_THREADS = 1

test: $(STAMP)
	$(BIN)/ruff format --check --quiet $(CODE)
	$(BIN)/ruff check --quiet --select E501 $(CODE)
	@echo "make test: labkit's tests and the book's (notebooks, site, browser) run side by side"
	$(MAKE) --no-print-directory -j2 --output-sync=target test-book unit \
		UNIT_WORKERS=$(HALF_THE_CORES)

UNIT_WORKERS   ?= auto
HALF_THE_CORES  = $(shell n=$$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2); \
	echo $$(( n > 3 ? n / 2 : 1 )))
unit: $(STAMP)
	$(PYTEST) -n $(UNIT_WORKERS) --dist loadgroup -m "not slow" tests --ignore=tests/test_book.py

notebooks: $(STAMP)
	$(PYTEST) -n auto --dist loadgroup $(NBVAL) chapters solutions

test-book: $(STAMP)
	$(MAKE) --no-print-directory notebooks
	$(MAKE) --no-print-directory html
	BOOK_TOC=$(TOC) $(PYTEST) -m "not slow" tests/test_book.py

test-slow: $(STAMP)
	$(MAKE) pdf
	BOOK_TOC=$(TOC) $(PYTEST) -n auto --dist loadgroup -m slow tests

# labkit's line coverage under all its tests (the slow ones included). Tracing makes
# them about a third slower, so `make test` does not trace; `make check` (CI) runs the
# slow tier's tests here, once, under coverage, rather than in `make test-slow`. The
# grader's sandboxed workers are not measured: they run in bubblewrap with a read-only
# view that holds no labkit and no coverage, so nothing could be recorded there; the
# worker's code that the tests run in-process is measured.
coverage: $(STAMP)
	$(PYTEST) -n auto tests --ignore=tests/test_book.py \
		--cov=labkit --cov-report=term-missing:skip-covered

check: test
	$(MAKE) pdf
	BOOK_TOC=$(TOC) $(PYTEST) -n auto --dist loadgroup -m slow tests/test_book.py
	$(MAKE) coverage

# The site and the PDF. `make html`: execute every notebook whose code (or labkit, or a
# pin) changed since its last run, in parallel, into book/_build/.jupyter_cache, then
# build the HTML into book/_build/html. Every page is read afresh (--all, seconds) so
# that every warning is reported on every build; warnings, broken references included
# (-n), fail it. `make book TOC=my_toc.yml` builds a part.
# `make pdf`: the whole book as one page, printed to book/_build/html/book.pdf by
# headless Chromium.
book: html pdf

html: $(STAMP)
	$(BIN)/python book/execute.py --toc $(TOC)
	$(BIN)/jupyter-book build . --config book/_config.yml --toc $(TOC) --path-output book --all -W -n --keep-going

pdf: $(STAMP)
	$(BIN)/python book/execute.py --toc $(TOC)
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
