# mmkit: two commands do all the set-up (README).  Everything lands in .venv.
PY      ?= python3
VENV    := .venv
VPY     := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
PORT    ?= 8888
NB      ?= notebooks/00-orientation.ipynb

.PHONY: lab test bench slides present clean e2e hub bench-hub

$(STAMP): pyproject.toml
	$(VPY) -m pip --version >/dev/null 2>&1 || { rm -rf $(VENV); $(PY) -m venv $(VENV); }
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

## make lab: JupyterLab on the notebooks, 127.0.0.1 only, with a token
## (jupyter-config/ on JUPYTER_CONFIG_PATH: no news pop-up, no update check; nothing in your home)
lab: $(STAMP)
	JUPYTER_CONFIG_PATH=$(CURDIR)/jupyter-config$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH} \
	  $(VPY) -m jupyter lab --no-browser --ip=127.0.0.1 --port=$(PORT) \
	  --ServerApp.root_dir=notebooks $$( [ "$$(id -u)" = 0 ] && echo --allow-root )

## make test: the whole suite (unit, notebooks, live kernel, browser)
test: $(STAMP)
	$(VPY) -m pytest -q tests

## make bench: the model's (and the live kernel's) speed figures
bench: $(STAMP)
	$(VPY) -m mmkit.bench

## make slides: offline reveal.js decks of the notebooks in site/slides (the first run needs npm and the
## registry: reveal.js & co. are fetched once with `npm pack` into ~/.cache/mmkit/npm, or $MMKIT_NPM_CACHE;
## later runs are offline; open site/slides/index.html).  Lecturer material: the speaker notes carry the
## computed answers to the predictions and exercises.
slides: $(STAMP)
	$(VPY) slides/build.py --out site/slides

## make book: the notebooks executed into a static book in site/book that reads offline, without a
## kernel (open site/book/index.html): steppers and era comparisons as frame sequences to step through,
## the glossary and docs/*.md; the student edition, without solutions.  make book-instructor (or
## make book AUDIENCE=instructor): site/book-instructor, each exercise followed by its folded
## solution, plus the instructor guide
.PHONY: book book-instructor
AUDIENCE ?= student
book: $(STAMP)
	$(VPY) book/build.py --audience $(AUDIENCE)

book-instructor: $(STAMP)
	$(VPY) book/build.py --audience instructor

## make present NB=notebooks/02-cow.ipynb: one notebook as a clean Voilà app with live
## widgets in the lecture preset (large fonts), for lecturing (127.0.0.1 only; open the URL it prints)
present: $(STAMP)
	MMKIT_PRESET=lecture JUPYTER_CONFIG_PATH=$(CURDIR)/jupyter-config $(VPY) -m voila $(NB) --no-browser --Voila.ip=127.0.0.1 --port=$(PORT) --Voila.port_retries=0 \
	  --theme=light --show_tracebacks=True

## make hub: a WORKSHOP JupyterHub on http://127.0.0.1:8000 (PORT_HUB=..., MMKIT_HUB_IP=...) for a class:
## one class password (anyone with it can log in as anyone: not for graded work; MMKIT_HUB_USERS=a,b
## refuses other names, MMKIT_HUB_AUTH=oauth is a real login), each student in their own copy of the
## notebooks (updated on each start, edits kept), release mode on, idle server and kernel culling;
## configurable-http-proxy is installed once with npm outside the checkout (hub/README.md)
hub: $(STAMP)
	$(VPY) hub/workshop.py serve --port $${PORT_HUB:-8000}

## make bench-hub: 30 simulated students on a loopback hub run notebooks 00-02 at once;
## prints cell latency p50/p95, memory per student and errors (also in build/bench-hub.json; the hub's
## and servers' log in build/bench-hub.log), then stops everything
bench-hub: $(STAMP)
	mkdir -p build && $(VPY) hub/bench.py --json build/bench-hub.json --log build/bench-hub.log

## make e2e: only the real-browser tests (Debian chromium at /usr/bin/chromium; they skip without it)
e2e: $(STAMP)
	$(VPY) -m pytest -q tests/e2e

clean:
	rm -rf $(VENV) build *.egg-info site .hypothesis
