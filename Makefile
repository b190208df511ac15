# mmkit: two commands do all the set-up (README).  Everything lands in .venv.
PY      ?= python3
VENV    := .venv
VPY     := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
PORT    ?= 8888
NB      ?= notebooks/00-orientation.ipynb

.PHONY: lab test bench slides present clean e2e

$(STAMP): pyproject.toml
	test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

## make lab: JupyterLab on the notebooks, 127.0.0.1 only, with a token
lab: $(STAMP)
	$(VPY) -m jupyter lab --no-browser --ip=127.0.0.1 --port=$(PORT) \
	  --ServerApp.root_dir=notebooks $$( [ "$$(id -u)" = 0 ] && echo --allow-root ) \
	  --LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate

## make test: the whole suite (unit, notebooks, live kernel, browser)
test: $(STAMP)
	$(VPY) -m pytest -q tests

## make bench: the model's (and the live kernel's) speed figures
bench: $(STAMP)
	$(VPY) -m mmkit.bench

clean:
	rm -rf $(VENV) build *.egg-info site .hypothesis
