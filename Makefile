# xsr — the two commands of the README: `make demo` and `make test`.
# Both create .venv, install everything from the package registries, then run.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The CPU build of torch that lies on the build machines' disk; users get theirs from the range in pyproject.
TORCH_PIN ?= torch==2.13.0
STAMP  := $(VENV)/.installed

.PHONY: venv demo test test-fast lint format docs bench weights clean

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_PIN)"
	$(BIN)/python -m pip install --quiet -e ".[dev]" "$(TORCH_PIN)"
	touch $(STAMP)

demo: venv
	$(BIN)/xsr demo

test: venv
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 --dist loadfile
	$(BIN)/python -m pytest -q --doctest-modules xsr  # every docstring example runs

test-fast: venv
	$(BIN)/python -m pytest -n 2 --dist loadfile -m "not slow"

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

docs: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

bench: venv  # the commands behind docs/benchmarks.md
	$(BIN)/python benchmarks/shallow_water.py
	$(BIN)/python benchmarks/upscale.py --frames 200 --chunk 50 --models fsrcnn --repeat 8
	$(BIN)/python benchmarks/upscale.py --frames 200 --chunk 50 --models xsrnet --repeat 8 --skip-naive
	$(BIN)/python benchmarks/upscale.py --frames 40 --chunk 10 --models srnet3d --repeat 2
	$(BIN)/python benchmarks/archive.py

weights: venv  # natural-image weights, then the shallow-water weights and docs/results.md
	$(BIN)/python scripts/train_shipped_weights.py
	$(BIN)/python scripts/results_report.py --ship

clean:
	rm -rf $(VENV) site build dist *.egg-info xsr-demo-output
