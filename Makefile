# The README's two commands: `make book` (set up, build the HTML book) and `make test` (set up, run every test).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard book/[0-9]*.ipynb))
# EXECUTE=force re-executes every notebook (and saves the outputs) before building the book.
EXECUTE ?= off
# MathJax travels with the book (the pages then render offline): tools/npm_tarball.py fetches its pinned tarball from
# the npm registry over HTTPS and checks its SHA-512 (no npm or Node.js needed; the latent explorer's onnxruntime-web
# comes the same way). MATHJAX=cdn builds pages that load MathJax from a CDN instead. A failed fetch fails the build.
MATHJAX ?= local
MATHJAX_VERSION := 3.2.2
MATHJAX_DIR := .cache/mathjax-$(MATHJAX_VERSION)/es5

.PHONY: book test unit lint execute checkpoints bench clean visible

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
	@case "$(MATHJAX)" in local|cdn) ;; *) echo "make: MATHJAX must be local or cdn, not '$(MATHJAX)'." >&2; exit 1;; esac
	@if [ "$(MATHJAX)" = local ] && [ ! -f $(MATHJAX_DIR)/tex-mml-chtml.js ]; then \
	  $(BIN)/python tools/npm_tarball.py mathjax --into .cache/mathjax-$(MATHJAX_VERSION) \
	  || { echo "make: fetching MathJax failed (the message is above). Build with 'make $@ MATHJAX=cdn' to load" \
	         "MathJax from a CDN instead." >&2; exit 1; }; fi
	$(BIN)/python tools/colab_edition.py  # colab/: the chapters as Colab shows them (README, "Colab and launch buttons")
	rm -rf _build/html _build/.doctrees _build/screenshots
	if [ "$(MATHJAX)" = local ]; then export AECOURSE_MATHJAX_DIR=$(CURDIR)/$(MATHJAX_DIR); fi; \
	  $(BIN)/jupyter-book build . -W -n --keep-going
	@echo "The book is at file://$(CURDIR)/_build/html/index.html"

# The notebooks run twice: strict nbval on the stored models (the load path: what the book shows, on the CPU so
# that a GPU machine compares the same outputs), then every training cell at the smoke budget (--nbval-lax: the
# outputs of a few seconds of training are not compared, but every cell must run and every assert hold).
# The browser tests open the built book in headless Chromium; without it `make test` stops and says what to install.
# BROWSER=skip runs everything else and says loudly that the pages were not checked.
BROWSER ?= required
SKIP_BROWSER := $(if $(filter skip,$(BROWSER)),--ignore=tests/test_book_in_browser.py --ignore=tests/test_explorer_in_browser.py)

test: $(STAMP)
	@case "$(BROWSER)" in required|skip) ;; *) echo "make: BROWSER must be required or skip, not '$(BROWSER)'." >&2; exit 1;; esac
	@if [ "$(BROWSER)" = skip ]; then \
	  echo "make test: BROWSER=skip: the browser tests are SKIPPED, so the built pages are not checked." >&2; \
	elif ! command -v chromedriver >/dev/null 2>&1 \
	  || ! { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }; then \
	  echo "make test: Chromium and ChromeDriver are missing, and the browser tests of the built book need both." \
	    "Install them (Debian/Ubuntu: sudo apt-get install chromium chromium-driver), or run" \
	    "'make test BROWSER=skip' to test everything else." >&2; exit 1; fi
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory book
	AECOURSE_DEVICE=cpu $(BIN)/python -m pytest --nbval --nbval-current-env tests book $(SKIP_BROWSER)
	AECOURSE_BUDGET=smoke AECOURSE_RETRAIN=1 $(BIN)/python -m pytest --nbval-lax --nbval-current-env book
	$(MAKE) --no-print-directory visible

# The code a reader sees, alone (tools/visible_code.py): each chapter's visible cells in a fresh kernel, on the load
# path and on the smoke training path. A visible cell that leans on a hidden one fails here.
VISIBLE := .cache/visible
visible: $(STAMP)
	$(BIN)/python tools/visible_code.py $(NOTEBOOKS) --out $(VISIBLE)
	AECOURSE_DEVICE=cpu $(BIN)/python -m pytest --nbval-lax --nbval-current-env $(VISIBLE)
	AECOURSE_BUDGET=smoke AECOURSE_RETRAIN=1 $(BIN)/python -m pytest --nbval-lax --nbval-current-env $(VISIBLE)

unit: $(STAMP)
	$(BIN)/python -m pytest tests

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check aecourse tests tools benchmarks book
	$(BIN)/actionlint .github/workflows/*.yml

execute: $(STAMP)
	$(BIN)/python tools/execute_notebooks.py $(if $(NB),$(NB),$(NOTEBOOKS))

# Train every model of the book at the full budget (NB=book/03_vae.ipynb for one chapter, NB=classifier for the
# shared classifier, which a whole-book run trains first), on CPU or CUDA: what is stored and still matches its
# config is loaded, the rest is trained and stored model by model; then the notebooks are re-executed on the load
# path and saved. Resumable: run it again after an interruption.
# FROM_NOTHING=1 first moves the checkpoints aside (.cache/checkpoints-before/), trains them all, records the time
# in book/retrain_timings.json (the intro's table) and says which were reproduced byte for byte.
checkpoints: $(STAMP)
	$(BIN)/python tools/train_checkpoints.py $(if $(FROM_NOTHING),--from-nothing) $(NB)

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf _build

# The latent explorer's assets (book/explorer.md): ONNX decoders with their JSON, and onnxruntime-web from the npm
# registry (tools/npm_tarball.py), into .cache/explorer. The book build makes them too (book/_ext/explorer_assets.py,
# only what changed);
# FORCE=1 re-exports the decoders even when their fingerprint is current.
.PHONY: explorer
explorer: $(STAMP)
	$(BIN)/python tools/export_explorer.py $(if $(FORCE),--force)
