# anytls-ref — every target sets up what it needs (a .venv with the package and its test extras).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test demo peers interop bench bench-deps vectors check-vectors fuzz clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# test, interop and bench build the peers first: with go / cargo here the interop tests run
# (a missing toolchain skips its peers; the first build takes minutes, later runs reuse it)
test: $(STAMP) peers
	$(PY) -m pytest -q $(PYTEST_ARGS)

demo: $(STAMP)
	$(PY) -m anytls_ref demo

peers:
	bash interop/peers.sh

interop: $(STAMP) peers
	$(PY) interop/run_matrix.py

bench: $(STAMP) peers
	$(PY) interop/bench.py

# bench-deps: Debian's chromium for the browser part of the bench (interop/browser.py; as root).
# make test does not need it: the browser tests skip without it.
bench-deps:
	command -v chromium >/dev/null || { apt-get update && apt-get install -y chromium; }

vectors: $(STAMP)
	$(PY) tests/vectors/generate.py

# fuzz: the hypothesis properties with the "fuzz" profile (5,000 examples each), then
# FUZZ_INPUTS (default 1,000,000) random and mutated inputs per decoder, with counts and times.
FUZZ_INPUTS ?= 1000000
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest -q tests/test_properties.py tests/test_fuzz.py
	$(PY) interop/fuzz.py --inputs $(FUZZ_INPUTS)

check-vectors: $(STAMP)
	$(PY) tests/vectors/generate.py --check

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
