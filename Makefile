# edgebatch: `make demo` and `make test` do all the set-up on a fresh Debian machine.
# Every target is safe to run twice; stamps make the second run skip what is done.

PYTHON   ?= python3
VENV     := .venv
PY       := $(VENV)/bin/python
STAMP    := $(VENV)/.installed
JARS     := .cache/jars/delta/.stamp
JDBC     := .cache/jars/jdbc/.stamp
HADOOP   := .cache/jars/hadoop/.stamp
BENCH    ?=
PYTEST_ARGS ?=
# The dashboard's browser libraries, from package-lock.json into the package's static folder
# (served by the service itself, and in the wheel: no CDN on a plant's network).
VENDOR   := api/web/static/vendor
ASSETS   := $(VENDOR)/.stamp

.PHONY: demo test bench lint format system-demo system-test system-bench jars venv assets messages clean help

help:
	@echo "make demo    the whole platform on simulated devices, until Ctrl-C (docs/demo.md)"
	@echo "make test    install what the tests need, then run them"
	@echo "make bench   run the benchmarks (BENCH=name for one) into bench/results/"

demo: system-demo $(STAMP) $(JARS) $(JDBC)
	$(VENV)/bin/edgebatch demo

test: system-test $(STAMP) $(JARS) $(JDBC) $(HADOOP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --explicit-package-bases tests bench
	$(VENV)/bin/pytest $(PYTEST_ARGS)

bench: system-bench $(STAMP) $(JARS) $(JDBC)
	$(PY) -m bench.run $(BENCH)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --explicit-package-bases tests bench

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

venv: $(STAMP)

# Strict editable mode: a tree of links under build/ on a .pth path, so editors and type
# checkers resolve `edgebatch.*` (the default mode's import hook hides it from them). The
# tree lists the modules at install time: adding or removing one (a folder's time changes)
# installs again.
PARTS    := core edge warehouse framework jobs api cli
PART_DIRS := $(shell find $(PARTS) -type d -not -name __pycache__ 2>/dev/null)

$(STAMP): pyproject.toml $(PART_DIRS) $(ASSETS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[server,dev]" --config-settings editable_mode=strict
	touch $@

jars: $(JARS) $(JDBC) $(HADOOP)

assets: $(ASSETS)

# The dashboard's catalogs in step with its pages: new strings added (untranslated), unused
# ones dropped; then translate the empty msgstr entries in api/web/locales/*/LC_MESSAGES/.
messages: $(STAMP)
	$(PY) -m edgebatch.api.web.messages

$(ASSETS): package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	mkdir -p $(VENDOR)/uplot
	cp node_modules/uplot/dist/uPlot.iife.min.js node_modules/uplot/dist/uPlot.min.css \
	   node_modules/uplot/LICENSE $(VENDOR)/uplot/
	touch $@

$(JARS): deps/delta.pom.xml deps/fetch_jars.py | $(STAMP)
	$(PY) deps/fetch_jars.py deps/delta.pom.xml .cache/jars/delta

# JDBC drivers for the database sinks (docs/sinks.md).
$(JDBC): deps/jdbc.pom.xml deps/fetch_jars.py | $(STAMP)
	$(PY) deps/fetch_jars.py deps/jdbc.pom.xml .cache/jars/jdbc

$(HADOOP): deps/hadoop-minicluster.pom.xml deps/fetch_jars.py | $(STAMP)
	$(PY) deps/fetch_jars.py deps/hadoop-minicluster.pom.xml .cache/jars/hadoop --keep-all

# Debian packages for what runs (Java, Maven for the jars, Mosquitto) and what the tests start.
system-demo:
	deps/system-packages.sh demo

system-test:
	deps/system-packages.sh test

system-bench:
	deps/system-packages.sh bench

clean:
	rm -rf var node_modules .pytest_cache .ruff_cache spark-warehouse metastore_db derby.log
