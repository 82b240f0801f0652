# The README's two commands: `make book` (set up, build the HTML book) and `make test` (set up, run every test).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard book/[0-9]*.ipynb))
# EXECUTE=force re-executes every notebook (and saves the outputs) before building the book.
EXECUTE ?= off

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
	$(BIN)/jupyter-book build . -W -n --keep-going
	@echo "The book is at file://$(CURDIR)/_build/html/index.html"

test: $(STAMP)
	$(BIN)/ruff check .
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
