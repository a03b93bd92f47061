# hotline: two commands do all set-up on a fresh Debian machine (as root):
#   make run    the lab (Asterisk 22 + PostgreSQL), the schema, and the daemon in the foreground
#   make test   the whole suite against the lab
# Both start with `make setup`, which is idempotent.

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
HOTLINE := $(VENV)/bin/hotline
PYTHON ?= python3
# chromium: the browser tests drive Debian's build through Playwright (never `playwright install`).
SYSTEM_PACKAGES := mmdebstrap sip-tester chromium
WEB := hotline/web
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: setup system-packages venv web lab-up lab-down lab-status run test unit lint bench bench-waiting bench-stats clean

setup: system-packages venv web lab-up

# Debian packages the lab and the tests need; installed only when missing.
system-packages:
	@missing=""; \
	for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	$(PYTHON) -m venv --help >/dev/null 2>&1 && $(PYTHON) -c 'import ensurepip' 2>/dev/null || missing="$$missing python3-venv"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "hotline needs Python >= 3.11 ($(PYTHON) is older)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

# The pages' SIP client: JsSIP ships CommonJS only, so esbuild bundles it for the browser. Rebuilt
# only when the bundle is missing or package.json changed; no lockfile is written.
web: $(WEB)/static/jssip.min.js

$(WEB)/static/jssip.min.js: $(WEB)/package.json
	npm install --no-package-lock --no-audit --no-fund --prefix $(WEB)
	$(WEB)/node_modules/.bin/esbuild $(WEB)/node_modules/jssip/lib/JsSIP.js \
	  --bundle --format=iife --global-name=JsSIP --minify --log-level=warning --outfile=$@

lab-up: venv
	$(HOTLINE) lab up

lab-down:
	$(HOTLINE) lab down

lab-status:
	$(HOTLINE) lab status

run: setup
	@eval "$$($(HOTLINE) lab env)" && \
	  $(HOTLINE) db migrate && \
	  $(HOTLINE) provision examples/contact-centre.toml && \
	  $(HOTLINE) apply && \
	  echo && echo "hotline is starting. Call it from this machine, e.g.:" && \
	  echo "  sipp 127.0.0.1:5060 -sf tests/support/scenarios/caller_until_bye.xml -s 84951234567 -m 1" && \
	  echo "(the example numbers: 8 495 123-45-67, 8 495 765-43-21, 8-800-555-35-35, video-support;" && \
	  echo " agents register at sip:ivanov@127.0.0.1:5060 with the password printed when the example" && \
	  echo " was first provisioned, or one set by 'hotline agent set ivanov --password ...';" && \
	  echo " any other number also enters Stasis; Ctrl-C stops)" && \
	  echo "Video from a browser on this machine: agent page http://127.0.0.1:8089/agent (ivanov)," && \
	  echo " customer page http://127.0.0.1:8089/call/video-support; a phone call to video:" && \
	  echo " .venv/bin/hotline case switch CASE (prints the link)" && echo && \
	  exec $(HOTLINE) run

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

unit: venv
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

lint: venv
	$(PY) -m pip install -q ruff mypy
	$(VENV)/bin/ruff check hotline tests bench
	$(VENV)/bin/mypy hotline

# hotline vs a plain-dialplan Queue() under a sipp load ramp on the lab: bench/README.md.
# e.g. make bench BENCH_ARGS="--rates 2,4,5 --seconds 20"
bench: setup
	$(PY) bench/run.py $(BENCH_ARGS)

# The daemon's CPU with 200 callers waiting and no agent free (bench/waiting.py; the lab must be free).
WAITING_ARGS ?=
bench-waiting: setup
	$(PY) bench/waiting.py $(WAITING_ARGS)

# The statistics functions over a generated history of a million hops (bench/stats_bench.py). Needs
# only the lab's PostgreSQL (or STATS_BENCH_ARGS="--admin-dsn ..."); Asterisk is not touched.
STATS_BENCH_ARGS ?=
bench-stats: venv
	$(PY) bench/stats_bench.py $(STATS_BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
