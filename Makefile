# audioforge: `make run` and `make test` set up a local virtualenv (.venv) on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch is installed first and on its own: on machines with a local CPU wheel this takes it;
# elsewhere pass TORCH_INDEX=https://download.pytorch.org/whl/cpu to avoid multi-GB CUDA wheels.
TORCH_SPEC  ?= torch==2.13.0
TORCH_INDEX ?=
STAMP  := $(VENV)/.setup-complete
DATA   ?= $(AUDIOFORGE_DATA)
ARGS   ?=
# test processes (pytest-xdist); each test module stays in one process, so its fixtures run once
TEST_WORKERS ?= 2
TEST_FLAGS := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadscope)
DATA_FLAG := $(if $(DATA),--data $(DATA),)

.PHONY: setup run quick test test-slow bench ui clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "audioforge needs Python 3.11+")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c 'import torch' 2>/dev/null || \
		$(BIN)/pip install $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX),) "$(TORCH_SPEC)"
	$(BIN)/pip install -e ".[dev]"
	touch $(STAMP)

run: setup            ## the paper protocol on FSDD (3 seeds): make run DATA=path/to/data
	$(BIN)/audioforge unlearn $(DATA_FLAG) $(ARGS)

quick: setup          ## the quick preset (about half a minute)
	$(BIN)/audioforge unlearn --preset quick $(DATA_FLAG) $(ARGS)

test: setup           ## the default test suite (slow tests excluded)
	$(BIN)/python -m pytest $(TEST_FLAGS) $(ARGS)

test-slow: setup      ## only the slow tests
	$(BIN)/python -m pytest -m slow $(ARGS)

bench: setup          ## speed benchmarks (prints ratios; see docs/benchmarks.md)
	$(BIN)/python benchmarks/run_all.py $(DATA_FLAG) $(ARGS)

ui: setup             ## MLflow UI (http://127.0.0.1:5000) and optuna-dashboard (http://127.0.0.1:8080)
	$(BIN)/audioforge ui $(ARGS)

clean:
	rm -rf $(VENV) *.egg-info
