# The two set-up commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python

.PHONY: demo test test-fast check conformance build up bench bench-kills clean

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "Python 3.10+ is required (found %d.%d); run: make PYTHON=python3.x" % sys.version_info[:2])'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[local]'
	@touch $@

demo: $(VENV)/.installed  ## upload a video (VIDEO=path, or a generated one), print the index and the console's link; Ctrl-C ends it
	$(PY) -m localcloud demo --serve $(if $(VIDEO),--video "$(VIDEO)")

test: $(VENV)/.installed  ## the whole suite
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast:  ## the inner loop: the existing venv, no pip, no build; skips the tests marked slow
	@test -x $(PY) || { echo "no $(VENV) yet: run 'make test' or 'make check' once"; exit 1; }
	$(PY) -m pytest -m "not slow" -q $(PYTEST_ARGS)

check: $(VENV)/.installed  ## lint (ruff) and types (mypy)
	$(PY) -m ruff check .
	$(PY) -m mypy

conformance: $(VENV)/.installed  ## oss2's own test suite (fetched from its sdist) against the local OSS; about a minute
	$(PY) -m tests.conformance.run_oss2 $(if $(PYTEST_ARGS),-- $(PYTEST_ARGS))

build: $(VENV)/.installed  ## build/<function>/: the code folders s.yaml deploys
	$(PY) -m localcloud.build

up: $(VENV)/.installed  ## the local cloud in the foreground
	$(PY) -m localcloud up

bench: $(VENV)/.installed build  ## benchmarks on the local cloud; writes bench/results.json
	$(PY) -m bench

bench-kills: $(VENV)/.installed  ## a burst while function instances are killed (apart from `make bench`); one JSON line
	$(PY) -m bench.burst_kills

clean:
	rm -rf build demo-output .pytest_cache .localcloud
