# Two entry points for a fresh machine with Python 3.11:
#   make tour   -> sets up .venv and writes the digits report to tour_out/index.html
#   make test   -> sets up .venv and runs the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TOUR_ARGS ?=
PYTEST_ARGS ?=

.PHONY: venv tour test test-slow bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

venv: $(STAMP)

tour: $(STAMP)
	$(BIN)/latentspace tour --out tour_out $(TOUR_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) tour_out .pytest_cache
