# anytls-ref — every target sets up what it needs (a .venv with the package and its test extras).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test demo peers interop bench vectors check-vectors fuzz clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

demo: $(STAMP)
	$(PY) -m anytls_ref demo

peers:
	bash interop/peers.sh

interop: $(STAMP)
	$(PY) interop/run_matrix.py

bench: $(STAMP)
	$(PY) interop/bench.py

vectors: $(STAMP)
	$(PY) tests/vectors/generate.py

check-vectors: $(STAMP)
	$(PY) tests/vectors/generate.py --check

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
