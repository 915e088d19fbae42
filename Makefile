# `make demo`: set up and run the main job. `make test`: set up and run the test suite.
VENV ?= .venv
export VENV

.PHONY: install demo test lint
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt scripts/install.sh
	bash scripts/install.sh

demo: install
	bash scripts/demo.sh

test: install
	$(VENV)/bin/python -m pytest -q

lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
