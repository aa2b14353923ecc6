# Two entry points for a fresh machine with Python 3.11:
#   make tour   -> sets up .venv and writes the digits report to tour_out/index.html
#   make test   -> sets up .venv and runs the test suite
# and the suite under a second numeric configuration (what CI runs after `make test`):
#   make test-portable
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TOUR_ARGS ?=
PYTEST_ARGS ?=

.PHONY: venv browser tour test test-portable test-slow typecheck peer campaign bench grid docs doctest clean

# The second numeric configuration: one thread everywhere, and another code path in every
# numeric library the suite reaches -- MKL's conditional-numerical-reproducibility path
# (torch's BLAS/LAPACK), OpenBLAS's Sandybridge kernels without FMA (numpy/scipy), torch's
# unvectorised kernels, and numba's generic x86-64 target (the K-means step). Sums then
# run in other orders, as on another user's CPU; a test that passes only on one of the two
# demands more agreement than the arithmetic gives.
PORTABLE_ENV := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
  NUMBA_NUM_THREADS=1 MKL_CBWR=COMPATIBLE OPENBLAS_CORETYPE=Sandybridge \
  ATEN_CPU_CAPABILITY=default NUMBA_CPU_NAME=generic

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

# the browser test needs Chromium and checks the page, not the arithmetic: the first run has it
test-portable: $(STAMP)
	env $(PORTABLE_ENV) $(BIN)/python -m pytest --ignore=tests/report/test_browser.py $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

# the type checker over src/latentspace (its configuration: pyproject.toml [tool.mypy])
typecheck: $(STAMP)
	$(BIN)/python -m mypy

# scikit-learn's own test files for PCA, KMeans and GaussianMixture, run against ours and
# compared with tests/peer/expected_failures.toml (build/peer/ holds the rewritten copies)
peer: $(STAMP)
	$(BIN)/python tests/peer/run.py

# the adversarial reliability campaign (every estimator x method x bad input, every
# hyperparameter, model-file faults, CLI exit codes): totals on stdout, the failures in
# campaign_out/failures.md; CAMPAIGN_ARGS=--fast for the ~5% sample
CAMPAIGN_ARGS ?=
campaign: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m campaign $(CAMPAIGN_ARGS)

# the speed grid against scikit-learn and scikit-learn-intelex (about 30 minutes on a quiet
# machine): bench/grid/results.json, a heatmap per part in bench/grid/ and the grid section
# of bench/RESULTS.md. scikit-learn-intelex is installed into the venv first when missing,
# with torch, numpy, scipy and scikit-learn pinned to their installed versions (the grid runs
# without it when that fails); it is never a dependency of the package. GRID_ARGS: e.g.
# --part pca --cells "100000×64"
GRID_ARGS ?=
grid: $(STAMP)
	$(BIN)/python bench/grid.py --install-intelex
	$(BIN)/python bench/grid.py $(GRID_ARGS)

# the documentation site, built offline with every warning an error, into docs/_build/html;
# the docs extra is installed on first use
docs: $(STAMP)
	@$(BIN)/python -c "import sphinx, numpydoc, pydata_sphinx_theme, myst_parser" 2>/dev/null || \
	  $(BIN)/python -m pip install --quiet -e ".[dev,docs]"
	MPLBACKEND=Agg $(BIN)/python -m sphinx -W --keep-going -b html docs docs/_build/html

# every example in the docstrings, run in a throwaway folder (some examples write files)
doctest: $(STAMP)
	@d=$$(mktemp -d) && cd $$d && MPLBACKEND=Agg $(abspath $(BIN))/python -m pytest \
	  -c $(CURDIR)/pyproject.toml --rootdir $(CURDIR) --doctest-modules $(CURDIR)/src/latentspace \
	  -p no:cacheprovider -q -o addopts="" $(PYTEST_ARGS); rc=$$?; rm -rf $$d; exit $$rc

clean:
	rm -rf $(VENV) tour_out .pytest_cache docs/_build docs/api
