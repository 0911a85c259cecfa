# The two commands of synsample: `make run` (the main job) and `make test` (the test suite).
# Both create the virtual environment in .venv when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench docs clean-venv

$(STAMP): pyproject.toml setup.py $(wildcard src/synsample/kernels/*.c src/synsample/kernels/*.h)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev,ray,track,docs]"
	@touch $(STAMP)

# Fetch data, train the 784-400-10 MLP on MNIST, sample it K=1000 times at full, 8- and 4-bit
# coin precision, write the report and print Table I beside the paper's.
run: $(STAMP)
	$(BIN)/synsample reproduce scann-table1 $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Sampling speed and memory against the fp32 ceiling (prints a table, writes runs/bench/).
bench: $(STAMP)
	$(BIN)/synsample bench $(ARGS)

# The documentation site (docs/ and the API reference from the docstrings) into site/, strict.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

lint: $(STAMP)
	$(BIN)/ruff check src tests

clean-venv:
	rm -rf $(VENV)
