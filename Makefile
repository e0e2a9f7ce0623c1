# Makefile: the commands an editor and a developer run. `make help` lists them.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install browser postgres dovecot demo test screenshots mash bench site serve publish clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/python -m compileall -q mash  # as pip does for a non-editable install
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install mash with its dev tools

demo: $(STAMP)  ## the whole pipeline on the bundled sample blogs, offline
	$(BIN)/python -m mash.demo

browser:  ## install Debian's chromium for the browser tests (skipped where not root)
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "chromium not installed: the browser tests will be skipped"; }

# The store's tests run on both engines; tests/pg.py starts a throwaway cluster of Debian's
# PostgreSQL server in a temporary folder (and stops it), so only the package is needed.
postgres:  ## install Debian's PostgreSQL server for the tests (skipped where not root)
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
	  || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) \
	  || echo "PostgreSQL not installed: the PostgreSQL tests will be skipped"; }

dovecot:  ## install Debian's dovecot-imapd for the IMAP bounce tests (skipped where not root)
	@command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ] || { [ "$$(id -u)" = 0 ] \
	  && command -v apt-get >/dev/null \
	  && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      dovecot-imapd >/dev/null) \
	  || echo "dovecot not installed: the IMAP bounce tests will be skipped"; }

# The caniemail check (tests/test_mail.py) runs @jsx-email/doiuse-email with node, as
# locked in tests/js/package-lock.json; without node it is skipped with that reason.
JS_STAMP := tests/js/node_modules/.installed
$(JS_STAMP): tests/js/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --prefix tests/js --no-audit --no-fund --quiet && touch $@; \
	else echo "no node/npm: the caniemail check will be skipped"; fi

test: $(STAMP) browser postgres dovecot $(JS_STAMP)  ## ruff, mypy, pytest: exactly what CI runs
	$(BIN)/ruff check mash tests
	$(BIN)/ruff format --check mash tests
	$(BIN)/mypy
	$(BIN)/pytest -q

# Tests save screenshots in their tmp_path; this target alone rewrites the tracked ones.
screenshots: $(STAMP) browser  ## refresh docs/email-*.png, docs/site-*.png, docs/desk-*.png (review the diff)
	@for b in chromium chromium-browser google-chrome; do command -v $$b >/dev/null 2>&1 && exit 0; done; \
	  echo "no chromium on PATH: the screenshots cannot be taken (make browser as root)" >&2; exit 1
	MASH_SCREENSHOTS=docs $(BIN)/pytest -q \
	  tests/test_mail.py::test_email_does_not_overflow_in_chromium \
	  tests/test_site.py::test_pages_fit_the_screen_without_errors_in_chromium \
	  tests/test_desk.py::test_curating_in_the_browser_writes_the_file_and_the_issue

mash: $(STAMP)  ## the real run: fetch feeds.yaml, build last month's issue and the site
	$(BIN)/mash --config feeds.yaml fetch
	$(BIN)/mash --config feeds.yaml build
	$(BIN)/mash --config feeds.yaml site

site: $(STAMP)  ## build the static site into output/site/ (pages, archive, Atom feed, sitemap)
	$(BIN)/mash --config feeds.yaml site

serve: $(STAMP)  ## preview the site with this month's draft on http://127.0.0.1:8000/
	$(BIN)/mash --config feeds.yaml serve

PUBLISH_TO ?=
publish: site  ## rsync output/site/ to PUBLISH_TO, e.g. make publish PUBLISH_TO=www@host:/var/www/mash/
	@test -n "$(PUBLISH_TO)" || { echo "set PUBLISH_TO, e.g. make publish PUBLISH_TO=www@example.org:/var/www/mash/" >&2; exit 2; }
	rsync -a --delete output/site/ "$(PUBLISH_TO)"

bench: $(STAMP)  ## the benchmarks (need ../shared/bench beside the repo); figures go in bench/*.md
	$(BIN)/python bench/curation_bench.py
	@for b in bench/fetch_bench.py bench/store_bench.py bench/extract_bench.py bench/send_bench.py; do \
	  [ -f $$b ] && { echo "== $$b"; $(BIN)/python $$b || exit 1; }; done; true

clean:  ## remove generated output (keeps data/)
	rm -rf output
