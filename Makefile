# anytls-ref — every target sets up what it needs (a .venv with the package and its test extras).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test test-pythons demo peers interop bench bench-wan bench-browser bench-deps vectors \
	check-vectors fuzz clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# test, interop and bench build the peers first: with go / cargo here the interop tests run
# (a missing toolchain skips its peers; the first build takes minutes, later runs reuse it)
test: $(STAMP) peers
	$(PY) -m pytest -q $(PYTEST_ARGS)

# test-pythons: the suite without its interop tests on each CPython of PYTHON_VERSIONS found
# (the newest ~/.pyenv/versions/X.Y.*, else pythonX.Y on PATH; each must run and be X.Y, as a
# pyenv shim may not), each in its own venv under .venvs/ (set up once, again when
# pyproject.toml changes); fails if none is found
PYTHON_VERSIONS ?= 3.11 3.12 3.13
test-pythons:
	@found=0; for v in $(PYTHON_VERSIONS); do \
	  py=""; \
	  for cand in $$(ls -d $$HOME/.pyenv/versions/$$v.*/bin/python 2>/dev/null | sort -V -r) \
	              $$(command -v python$$v); do \
	    if [ "$$($$cand -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" \
	         = "$$v" ]; then py=$$cand; break; fi; \
	  done; \
	  if [ -z "$$py" ]; then echo "== Python $$v: not found, skipped"; continue; fi; \
	  found=$$((found + 1)); venv=.venvs/py$$v; \
	  echo "== Python $$v: $$py"; \
	  if [ ! $$venv/.installed -nt pyproject.toml ]; then \
	    $$py -m venv $$venv && $$venv/bin/python -m pip install --quiet --upgrade pip \
	      && $$venv/bin/python -m pip install --quiet -e '.[test]' \
	      && touch $$venv/.installed || exit 1; \
	  fi; \
	  $$venv/bin/python -m pytest -q -p no:cacheprovider -m "not interop" $(PYTEST_ARGS) \
	    || exit 1; \
	done; \
	if [ $$found -eq 0 ]; then echo "no Python of $(PYTHON_VERSIONS) found"; exit 1; fi

demo: $(STAMP)
	$(PY) -m anytls_ref demo

peers:
	bash interop/peers.sh

interop: $(STAMP) peers
	$(PY) interop/run_matrix.py

bench: $(STAMP) peers
	$(PY) interop/bench.py

# bench-wan: every pair again through the link emulator (20 and 100 ms, with and without a
# 100 Mbit/s cap): first byte, 100 short requests, bulk through a 4 MiB window (interop/bench_wan.py)
bench-wan: $(STAMP) peers
	$(PY) interop/bench_wan.py

# bench-browser: headless Chromium loading a page of 40 images through each pair at 0/20/100 ms
bench-browser: $(STAMP) peers bench-deps
	$(PY) interop/bench_wan.py --browser

# bench-deps: what the bench needs beyond the venv and the peers: Chromium from Debian's packages
# for the browser loads (interop/browser.py; as root). `make test` does not need it: the browser
# tests skip without it.
bench-deps:
	@command -v chromium >/dev/null 2>&1 || (apt-get update && apt-get install -y chromium)
	@chromium --version 2>/dev/null

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
	rm -rf $(VENV) .venvs .pytest_cache build *.egg-info
