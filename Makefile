# Two commands do everything, each setting up .venv first:
#   make demo   adapt, predict, evaluate on the embedded synthetic EM volumes and print the table
#   make test   the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch first and pinned: the CPU build of 2.13.0 comes from disk; everything else is pinned
# by constraints.txt so a fresh machine gets the versions the suite was run with.
$(STAMP): $(BIN)/python setup.cfg constraints.txt
	$(BIN)/pip install --disable-pip-version-check -q torch==2.13.0
	$(BIN)/pip install --disable-pip-version-check -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/masktwins3d demo --overwrite

test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) runs volumes/demo
