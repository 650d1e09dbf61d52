# Two commands do everything, each setting up .venv first:
#   make demo   adapt, predict, evaluate on the embedded synthetic EM volumes and print the table
#   make test   the whole test suite (napari tests included, in a real Qt under Xvfb)
#   make screenshot   the README's picture of the Evaluate view (after make demo, or on its own)
#   make docs   the documentation site into site/ (make test builds it too)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install clean screenshot apt docs

# Debian packages the napari tests need: a virtual X server and the xcb libraries Qt 6 loads.
APT_PACKAGES := xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-xinerama0 \
	libxcb-cursor0 libxcb-shape0 libxcb-randr0 libxcb-xkb1 libxkbcommon-x11-0 libegl1 libgl1 libfontconfig1 libdbus-1-3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch first and pinned: the CPU build of 2.13.0 comes from disk; everything else is pinned
# by constraints.txt so a fresh machine gets the versions the suite was run with.
$(STAMP): $(BIN)/python setup.cfg constraints.txt
	$(BIN)/pip install --disable-pip-version-check -q torch==2.13.0
	$(BIN)/pip install --disable-pip-version-check -q -c constraints.txt -e ".[dev,napari]"
	touch $(STAMP)

apt:
	@dpkg -s $(APT_PACKAGES) >/dev/null 2>&1 || { $(SUDO) apt-get install -y -q $(APT_PACKAGES) || \
		{ $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q $(APT_PACKAGES); }; }

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/masktwins3d demo --overwrite

test: $(STAMP) apt docs
	$(BIN)/python -m pytest

# the documentation site into site/ (mkdocs.yml; offline, a few seconds; any warning fails it)
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict -q

# the README's picture; needs a display, so it runs on a virtual one when there is none
screenshot: $(STAMP) apt
	$(if $(DISPLAY),,xvfb-run -a -s "-screen 0 1920x1080x24") $(BIN)/python scripts/screenshot_evaluate.py --overwrite

clean:
	rm -rf $(VENV) runs volumes/demo
