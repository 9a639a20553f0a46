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
$(STAMP): requirements.txt requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -c requirements.lock -r requirements.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

drill: $(STAMP)
	$(BIN)/python -m scripts.make_drill --scenarios $(SCENARIOS) --report $(REPORTS)

check: $(STAMP)
	$(BIN)/pilotlight check --stack dr

bench: $(STAMP)
	$(BIN)/python -m bench.run

soak: $(STAMP)
	$(BIN)/python -m bench.soak

clean:
	-$(BIN)/pilotlight sandbox down 2>/dev/null
	rm -rf $(VENV) .pilotlight reports
