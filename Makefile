# Two commands for a fresh machine: `make demo` runs the main job on the embedded model,
# `make test` runs the test suite. Both create .venv and install what they need first
# (llama-cpp-python builds from source: ~10 minutes on 2 cores the first time, cached after).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: install test lint demo bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[local,server,envs,plot,mlflow,ray,dev]"
	touch $@

install: $(VENV)/.installed

test: install lint
	$(BIN)/python -m pytest

# The import-layer contract of pyproject.toml, on a plain install of the package (see there why).
lint: install
	rm -rf build/lint
	$(BIN)/python -m pip install --quiet --no-deps --target build/lint .
	cd build/lint && ../../$(BIN)/lint-imports ../../pyproject.toml

demo: install
	$(BIN)/purpose-dspy demo

bench: install
	$(BIN)/python benchmarks/step_overhead.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
