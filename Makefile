# tradingbot: two commands on a fresh machine: `make run`, `make test`.
SHELL := /bin/bash
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export NUMBA_CACHE_DIR := $(CURDIR)/.numba_cache
export MPLBACKEND := Agg
export PYTHONHASHSEED := 0
NB_PY := $(wildcard nbs/*.py nbs/reports/*.py)

.PHONY: setup run test sync check-sync nbtest pytest docs lab bench clean

# The stamp depends on what decides the install, so a second `make setup` does nothing.
setup: $(VENV)/.stamp-setup

$(VENV)/.stamp-setup: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet pip==26.3
	# torch first: the CPU build of exactly this version; anything else pulls GBs of CUDA.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	@if $(BIN)/pip show --quiet ib_insync 2>/dev/null; then echo "ib_insync is installed beside ib_async: remove it" >&2; exit 1; fi
	$(BIN)/python -m ipykernel install --sys-prefix --name tradingbot --display-name "Python (tradingbot)" >/dev/null
	# compile the numba kernels once into .numba_cache/, so a first backtest loads them instead of compiling
	$(BIN)/python -c "from tradingbot.validation.backtest import warm_up; warm_up()"
	touch $@

run: setup
	$(BIN)/python runners/live.py

test: setup check-sync nbtest pytest

# Fails when notebooks, their .py pairs and tradingbot/ disagree (CI runs this on a clean clone).
check-sync:
	@bash .ci/check_sync $(MAKE) VENV=$(VENV)

nbtest:
	$(BIN)/nbdev-test --n-workers 2 --timing

pytest:
	$(BIN)/python -m pytest -q

# jupytext pair -> clean notebook -> pair again -> drop modules whose notebook is gone -> export
sync:
	$(BIN)/jupytext --sync --quiet $(NB_PY)
	$(BIN)/nbdev-clean
	$(BIN)/jupytext --sync --quiet $(NB_PY)
	$(BIN)/python .ci/prune_generated.py
	$(BIN)/nbdev-export

# The documentation site in _docs/ (open _docs/index.html): every notebook executed as nbdev-test runs
# it, with nbdev's show_doc API reference, rendered by Sphinx + myst-nb (docs/build.py, docs/conf.py).
docs: setup
	$(BIN)/python docs/build.py --out _docs --proc _proc

lab: setup
	$(BIN)/jupyter lab --notebook-dir=nbs $$( [ "$$(id -u)" = 0 ] && echo --allow-root )

bench: setup
	@for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) .numba_cache .pytest_cache .hypothesis _docs _proc
