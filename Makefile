# Pilotlight — every target sets itself up: a fresh clone needs only python3 and make.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SCENARIOS ?= regional-outage
REPORTS ?= reports

.PHONY: install test drill bench check soak clean image

install: $(STAMP)

# Pinned: requirements.txt names what we use, requirements.lock pins the whole tree.
# --no-compile: a fresh install once left a truncated .pyc (pulumi_aws, 16 KiB of 32) that broke
# every later import; Python's own bytecode cache, written on first import, is written atomically.
PIP := $(BIN)/pip install -q --disable-pip-version-check --no-compile
# Bytecode for what the CLI imports, compiled once here (compileall writes each .pyc atomically): with
# PYTHONDONTWRITEBYTECODE set, as on these machines, no cache is ever written on import and every
# command recompiled ~330 modules (0.7 s of CPU) before its first line. Not pulumi_aws or moto: only
# the program and the sandbox import them, and compiling them costs ~25 s.
BYTECODE := boto3 botocore s3transfer urllib3 dateutil jmespath rich markdown_it mdurl pygments psycopg \
	cryptography zstandard dns certifi idna yaml
$(STAMP): requirements.txt requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(PIP) -c requirements.lock -r requirements.txt
	$(PIP) --no-deps --no-build-isolation -e .
	SP=$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'); \
	  $(BIN)/python -m compileall -q -j 0 $(addprefix $$SP/,$(BYTECODE)) scripts stacks components > /dev/null
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

drill: $(STAMP)
	$(BIN)/python -m scripts.commands.make_drill --scenarios $(SCENARIOS) --report $(REPORTS)

check: $(STAMP)
	$(BIN)/pilotlight check --stack dr

# The tools image the scheduled jobs run (Dockerfile; podman with a local Debian base, see image/build.sh).
IMAGE ?= pilotlight:dev
image:
	./image/build.sh $(IMAGE)

bench: $(STAMP)
	$(BIN)/python -m bench.run

soak: $(STAMP)
	$(BIN)/python -m bench.soak

clean:
	-$(BIN)/pilotlight sandbox down 2>/dev/null
	rm -rf $(VENV) .pilotlight reports
