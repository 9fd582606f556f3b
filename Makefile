# Two entry points a newcomer needs (see README):
#   make demo  - set up .venv, build the book, grade lab 1 on the built-in simulated cluster
#   make test  - set up .venv (and the Debian packages the tests need), lint, build the book, run every test
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv system-deps vendor book demo test lint unit bench clean

$(STAMP): requirements.txt
	@$(PY) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (found %s)" % sys.version.split()[0])'
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip check
	touch $(STAMP)

venv: $(STAMP)

# Debian packages the book and the tests need: graphviz (diagrams), chromium (browser tests) and
# bubblewrap (the sandbox of `grade --execute-submitted-notebooks`).
system-deps:
	@missing=""; command -v dot >/dev/null || missing="$$missing graphviz"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v bwrap >/dev/null || missing="$$missing bubblewrap"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing Debian packages:$$missing (run: sudo apt-get install -y$$missing)"; exit 1; fi; \
	fi

# Browser-side assets the built site serves itself (no CDN): fetched from the npm registry at setup.
vendor: _static/vendor/.stamp
_static/vendor/.stamp: tools/vendor.sh
	bash tools/vendor.sh
	touch $@

book: venv system-deps vendor
	$(BIN)/jupyter-book build . --all -W -n --keep-going

lint: venv
	$(BIN)/ruff check graders tests bench tools

unit: venv
	$(BIN)/python -m pytest -q -m "not kind and not browser"

demo: venv system-deps vendor
	$(BIN)/jupyter-book build . --all -W -n --keep-going
	$(BIN)/python -m graders check lab01 labs/lab01/solutions/reference
	@echo
	@echo "The book is at: file://$(CURDIR)/_build/html/index.html"
	@echo "Serve it with:  $(BIN)/python -m http.server -d _build/html 8000 --bind 127.0.0.1"

test: venv system-deps vendor lint
	$(BIN)/jupyter-book build . --all -W -n --keep-going
	$(BIN)/python -m pytest -q

bench: venv
	$(BIN)/python bench/bench_engine.py

clean:
	rm -rf _build .pytest_cache
