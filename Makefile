# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
CODE := nbs tests benchmarks bentos

.PHONY: demo test install services check-export lint

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q -e '.[dev,lstm]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/tradekit demo

services:
	bash .ci/services.sh

check-export: install
	BIN=$(BIN) bash .ci/check-export.sh

lint: install
	$(BIN)/ruff check $(CODE)
	$(BIN)/ruff format --check $(CODE)

test: install services check-export lint
	$(BIN)/nbdev-test --flags services
	$(BIN)/pytest tests --nbval-lax nbs/tutorials --durations=20
