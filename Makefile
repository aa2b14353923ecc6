# Two entry points for a fresh machine with Python 3.11:
#   make tour   -> sets up .venv and writes the digits report to tour_out/index.html
#   make test   -> sets up .venv and runs the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TOUR_ARGS ?=
PYTEST_ARGS ?=

.PHONY: venv browser tour test test-slow bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

venv: $(STAMP)

tour: $(STAMP)
	$(BIN)/latentspace tour --out tour_out $(TOUR_ARGS)

# the report's browser test needs Chromium: install Debian's package when it is missing and
# the machine allows it (root with apt); otherwise that one test skips with its reason
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ; } || \
	  echo "Chromium could not be installed; the browser test will skip"

test: $(STAMP) browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) tour_out .pytest_cache
