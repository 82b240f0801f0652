# The README's two commands: `make book` (set up, build the HTML book) and `make test` (set up, run every test).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard book/[0-9]*.ipynb))
# EXECUTE=force re-executes every notebook (and saves the outputs) before building the book.
EXECUTE ?= off
# MathJax travels with the book when npm can fetch it (the pages then render offline); else the CDN is used.
MATHJAX_VERSION := 3.2.2
MATHJAX_DIR := .cache/mathjax-$(MATHJAX_VERSION)/es5

.PHONY: book test unit lint execute bench clean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade -q pip
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

book: $(STAMP)
ifeq ($(EXECUTE),force)
	$(BIN)/python tools/execute_notebooks.py $(NOTEBOOKS)
endif
	@if [ ! -f $(MATHJAX_DIR)/tex-mml-chtml.js ] && command -v npm >/dev/null 2>&1; then \
	  mkdir -p .cache && cd .cache && npm pack -q mathjax@$(MATHJAX_VERSION) >/dev/null 2>&1 \
	  && tar xzf mathjax-$(MATHJAX_VERSION).tgz && rm -rf mathjax-$(MATHJAX_VERSION) \
	  && mv package mathjax-$(MATHJAX_VERSION) && rm mathjax-$(MATHJAX_VERSION).tgz \
	  || echo "MathJax could not be fetched: the book will load it from the CDN"; fi
	rm -rf _build/html _build/.doctrees _build/screenshots
	if [ -f $(MATHJAX_DIR)/tex-mml-chtml.js ]; then export AECOURSE_MATHJAX_DIR=$(CURDIR)/$(MATHJAX_DIR); fi; \
	  $(BIN)/jupyter-book build . -W -n --keep-going
	@echo "The book is at file://$(CURDIR)/_build/html/index.html"

test: $(STAMP)
	$(BIN)/ruff check .
	$(MAKE) --no-print-directory book
	$(BIN)/python -m pytest --nbval --nbval-current-env tests book

unit: $(STAMP)
	$(BIN)/python -m pytest tests

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check aecourse tests tools benchmarks

execute: $(STAMP)
	$(BIN)/python tools/execute_notebooks.py $(if $(NB),$(NB),$(NOTEBOOKS))

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf _build
