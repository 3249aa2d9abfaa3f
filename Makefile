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

.PHONY: demo test bench lint format system-demo system-test system-bench jars venv clean help

help:
	@echo "make demo    run the main job end to end on the embedded defaults"
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

$(STAMP): pyproject.toml $(PART_DIRS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[server,dev]" --config-settings editable_mode=strict
	touch $@

jars: $(JARS) $(JDBC) $(HADOOP)

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
	rm -rf var .pytest_cache .ruff_cache spark-warehouse metastore_db derby.log
