# nerfreg: `make demo` sets up and runs the main job on the embedded default; `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO_OUT ?= demo_out

.PHONY: setup demo test clean-demo

$(VENV)/.installed: pyproject.toml plugins/nerfreg-example/pyproject.toml
	@# open3d links against libusb at import time
	@ldconfig -p | grep -q libusb-1.0.so.0 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq libusb-1.0-0; }
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,batch]'
	@# the example third-party plugin, so the tests use it through its entry point like a user would
	$(PY) -m pip install -q -e plugins/nerfreg-example
	@touch $@

setup: $(VENV)/.installed

demo: setup
	$(VENV)/bin/nerfreg-demo --out $(DEMO_OUT)

test: setup
	$(PY) -m pytest -q tests

clean-demo:
	rm -rf $(DEMO_OUT)
