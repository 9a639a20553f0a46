# Pilotlight — every target sets itself up: a fresh clone needs only python3 and make.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SCENARIOS ?= regional-outage
REPORTS ?= reports

.PHONY: install test drill bench check soak clean

install: $(STAMP)

# Pinned: requirements.txt names what we use, requirements.lock pins the whole tree.
# --no-compile: a fresh install once left a truncated .pyc (pulumi_aws, 16 KiB of 32) that broke
# every later import; Python's own bytecode cache, written on first import, is written atomically.
PIP := $(BIN)/pip install -q --disable-pip-version-check --no-compile
$(STAMP): requirements.txt requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(PIP) -c requirements.lock -r requirements.txt
	$(PIP) --no-deps --no-build-isolation -e .
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

drill: $(STAMP)
	$(BIN)/python -m scripts.commands.make_drill --scenarios $(SCENARIOS) --report $(REPORTS)

check: $(STAMP)
	$(BIN)/pilotlight check --stack dr

bench: $(STAMP)
	$(BIN)/python -m bench.run

soak: $(STAMP)
	$(BIN)/python -m bench.soak

clean:
	-$(BIN)/pilotlight sandbox down 2>/dev/null
	rm -rf $(VENV) .pilotlight reports
