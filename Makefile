# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# torch 2.13.0's CPU wheel is on this machine's disk; jax runs on the CPU.
EXTRAS ?= dev,jax,torch,export,openvino,serve

.PHONY: run test test-fast lint bench docs clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

run: $(BIN)/.installed
	$(BIN)/python -m pretrain --config quick --out runs/quick
	$(BIN)/im2latex-encoder evaluate --model runs/quick/preset --data synthetic --json runs/quick/evaluation.json

test: $(BIN)/.installed
	$(BIN)/python -m pytest

test-fast: $(BIN)/.installed
	$(BIN)/python -m pytest -m "not slow"

# Lint, format check and type check; `$(BIN)/ruff format .` rewrites what the check lists.
lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy im2latex_encoder

bench: $(BIN)/.installed
	$(BIN)/python -m benchmarks --json bench-results/all.json --markdown bench-results/README.md

docs: $(BIN)/.installed
	$(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) build dist *.egg-info site .pytest_cache .ruff_cache .mypy_cache
