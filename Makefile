# Makefile: the commands an editor and a developer run. `make help` lists them.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install browser demo test mash bench site serve clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install mash with its dev tools

demo: $(STAMP)  ## the whole pipeline on the bundled sample blogs, offline
	$(BIN)/python -m mash.demo

browser:  ## install Debian's chromium for the browser tests (skipped where not root)
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "chromium not installed: the browser tests will be skipped"; }

test: $(STAMP) browser  ## ruff, mypy, pytest: exactly what CI runs
	$(BIN)/ruff check mash tests
	$(BIN)/ruff format --check mash tests
	$(BIN)/mypy
	$(BIN)/pytest -q

mash: $(STAMP)  ## the real run: fetch feeds.yaml, build last month's issue and the site
	$(BIN)/mash --config feeds.yaml fetch
	$(BIN)/mash --config feeds.yaml build
	$(BIN)/mash --config feeds.yaml site

clean:  ## remove generated output (keeps data/)
	rm -rf output
