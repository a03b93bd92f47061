# hotline: two commands do all set-up on a fresh Debian machine (as root):
#   make run    the lab (Asterisk 22 + PostgreSQL), the schema, and the daemon in the foreground
#   make test   the whole suite against three labs at once (lab 1, labs 2 and 3 in network namespaces)
# Both start with `make setup`, which is idempotent.

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
HOTLINE := $(VENV)/bin/hotline
PYTHON ?= python3
# chromium: the browser tests drive Debian's build through Playwright (never `playwright install`).
# iproute2: `ip netns`, for lab 2's network namespace.
SYSTEM_PACKAGES := mmdebstrap sip-tester chromium iproute2
# Only the tests' nodes lab (two Asterisk nodes behind Kamailio) needs these; `make run` does not.
TEST_PACKAGES := kamailio kamailio-postgres-modules kamailio-websocket-modules
# The lab that runs the nodes tests (its own network namespace, so Kamailio's 127.0.0.1:5060
# never meets lab 1's or lab 2's Asterisk).
NODES_LAB ?= 5
WEB := hotline/web
PYTEST_ARGS ?=
BENCH_ARGS ?=
# Some machines (CI images among them) set PYTHONDONTWRITEBYTECODE: every `hotline` the tests and
# the daemon start would then compile the whole package again, about 0.1-0.2 s a process.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: setup system-packages test-packages venv web web-check npm dist lab-up lab-down lab-status run test unit lint bench bench-waiting bench-stats soak faults clean

setup: system-packages venv lab-up

# Debian packages the lab and the tests need; installed only when missing.
system-packages:
	@missing=""; \
	for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	$(PYTHON) -m venv --help >/dev/null 2>&1 && $(PYTHON) -c 'import ensurepip' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# Kamailio for the nodes lab. Its Debian service would take 5060 on every address: it stays off;
# the lab starts its own Kamailio with the project's config.
test-packages:
	@missing=""; \
	for p in $(TEST_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing test packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  if command -v systemctl >/dev/null 2>&1; then systemctl disable --now kamailio.service >/dev/null 2>&1 || true; fi; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "hotline needs Python >= 3.11 ($(PYTHON) is older)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

# The pages' SIP client, committed with its versions and licences (hotline/web/static/
# jssip.min.js and .LICENSE.txt), so a wheel built anywhere carries it and no deployment needs npm.
# `make web` rebuilds both from hotline/web/package.json (after a version bump); `make web-check`
# rebuilds them elsewhere and fails unless the committed files are byte for byte what it built.
web: npm
	$(WEB)/bundle.sh

web-check: npm
	@out=$$(mktemp -d) && trap 'rm -rf "$$out"' EXIT && $(WEB)/bundle.sh "$$out" && \
	  for f in jssip.min.js jssip.min.js.LICENSE.txt; do \
	    cmp -s "$$out/$$f" $(WEB)/static/$$f || { echo "$(WEB)/static/$$f is not what package.json builds: make web"; exit 1; }; \
	  done && echo "$(WEB)/static/jssip.min.js is what package.json builds"

npm:
	@command -v npm >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; }

# The wheel and the sdist into dist/, as a release is built (`python -m build`, isolated).
dist: venv
	rm -rf dist
	$(PY) -m build --outdir dist

# Lab 1 on this machine's 127.0.0.1; labs 2 and 3 on the same ports in the network namespaces
# hotline-lab2 and hotline-lab3, from copies of lab 1's root (README, "Tests"). `make run` uses
# lab 1; `make test` all three (TEST_LABS workers, one per lab).
TEST_LABS ?= 3
lab-up: venv
	$(HOTLINE) lab up
	for n in $$(seq 2 $(TEST_LABS)); do $(HOTLINE) lab --instance $$n up || exit 1; done

lab-down:
	for n in $$(seq $(TEST_LABS) -1 2); do $(HOTLINE) lab --instance $$n down; done
	$(HOTLINE) lab down

lab-status:
	$(HOTLINE) lab status
	for n in $$(seq 2 $(TEST_LABS)); do $(HOTLINE) lab --instance $$n status; done

run: setup
	@eval "$$($(HOTLINE) lab env)" && \
	  $(HOTLINE) db migrate && \
	  $(HOTLINE) provision examples/contact-centre.toml && \
	  $(HOTLINE) apply && \
	  $(HOTLINE) lab phones examples/contact-centre.toml && \
	  echo && echo "hotline is starting. Call it from a second shell on this machine:" && \
	  echo "  .venv/bin/hotline lab call 88005553535" && \
	  echo "(the example numbers: 8 495 123-45-67 and 8 495 765-43-21 with a menu in Moscow hours," && \
	  echo " 8-800-555-35-35, video-support; the lab phone of agent petrova answers; Ctrl-C stops)" && \
	  echo "Video from a browser on this machine: agent page http://127.0.0.1:8089/agent (ivanov)," && \
	  echo " customer page http://127.0.0.1:8089/call/video-support; a phone call to video:" && \
	  echo " .venv/bin/hotline case switch CASE (prints the link)" && echo && \
	  exec $(HOTLINE) run

# Three phases. First everything but the `serial` and `nodes` tests on three pytest-xdist workers,
# gwN on lab N+1 (tests/support/two_labs.py: the calls mostly wait on real timings, so a third lab
# took a measured 28 % off the phase's time on 2 cores, the CPU 69 % busy); then the `serial` ones
# (they assert latency under load, so they must not share the 2 cores with other workers) alone, on
# lab 1; then the `nodes` ones on the nodes lab (two Asterisk nodes behind Kamailio, lab NODES_LAB).
# Each phase prints its own "N passed" line; the exit code is the first failing phase's (a phase
# that selected no test, pytest's 5, counts as passed unless all did). PYTEST_ARGS go to each (no -m
# of your own). A worker that crashes is not replaced (--max-worker-restart=0: a replacement would
# look for a lab not up).
test: setup test-packages
	$(HOTLINE) lab --instance $(NODES_LAB) up --nodes 2
	@$(PY) -m pytest -n $(TEST_LABS) --max-worker-restart=0 -m "not serial and not nodes" $(PYTEST_ARGS); \
	parallel=$$?; \
	$(PY) -m pytest -m "serial and not nodes" $(PYTEST_ARGS); serial=$$?; \
	HOTLINE_LAB_INSTANCE=$(NODES_LAB) ip netns exec hotline-lab$(NODES_LAB) \
	  $(PY) -m pytest -m nodes $(PYTEST_ARGS); nodes=$$?; \
	echo "make test: parallel phase exit $$parallel, serial phase exit $$serial, nodes phase exit $$nodes"; \
	if [ $$parallel -eq 5 ] && [ $$serial -eq 5 ] && [ $$nodes -eq 5 ]; then exit 5; fi; \
	for rc in $$parallel $$serial $$nodes; do [ $$rc -eq 0 ] || [ $$rc -eq 5 ] || exit $$rc; done

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

# A bounded soak at a steady rate (bench/soak.py; the lab must be free): daemon RSS and open fds
# flat after the warm-up, the event loop's responsiveness, nothing leaked. e.g.
# make soak SOAK_ARGS="--minutes 10 --rate 10"
SOAK_ARGS ?=
soak: setup
	$(PY) bench/soak.py $(SOAK_ARGS)

# Faults under load (bench/faults.py; the lab must be free): the daemon killed, Asterisk restarted,
# the database away for 30 s, a slow database, each with 10 calls/s flowing. e.g.
# make faults FAULTS_ARGS="--fault asterisk-restart"
FAULTS_ARGS ?=
faults: setup
	$(PY) bench/faults.py $(FAULTS_ARGS)

# The statistics functions over a generated history of a million hops (bench/stats_bench.py). Needs
# only the lab's PostgreSQL (or STATS_BENCH_ARGS="--admin-dsn ..."); Asterisk is not touched.
STATS_BENCH_ARGS ?=
bench-stats: venv
	$(PY) bench/stats_bench.py $(STATS_BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
