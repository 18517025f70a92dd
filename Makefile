# Two set-up commands (see README): `make demo` and `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: venv demo test check bench bench-quick clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q -e '.[dev,lab]'
	touch $@

demo: venv
	PATH="$(CURDIR)/$(BIN):$$PATH" scripts/demo

# Two workers, one test file each at a time: a file's module- and session-scoped labs stay in
# its worker. PYTEST_WORKERS=0 runs everything in one process.
PYTEST_WORKERS ?= 2
test: venv
	$(BIN)/python -m pytest -q --durations=15 -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

check: venv
	PATH="$(CURDIR)/$(BIN):$$PATH" scripts/check

# Benchmarks (minutes; never part of the tests): numbers go into bench/RESULTS*.md.
bench: venv
	$(BIN)/python bench/siteload.py --write-results
	$(BIN)/python bench/lab.py --write-results
	$(BIN)/python bench/mttr.py --write-results
	$(BIN)/python bench/fleet.py --devices 1 10 100 1000 --write-results
	$(BIN)/python bench/ansible.py
# fortinet.fortios (from PyPI's ansible 11 wheel, cached in ~/.cache/fortiauto-bench; skipped when offline)
	$(BIN)/python bench/fortios_collection.py --ansible-core 2.18 --write-results

# A few minutes: site loading and a 10- and 100-device apply + no-op (CPU per device); prints only.
bench-quick: venv
	$(BIN)/python bench/siteload.py
	$(BIN)/python bench/fleet.py --devices 10 100 --repeat 1

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache lab-state
