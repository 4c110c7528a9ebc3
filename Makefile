# The two commands of the README: `make demo` and `make test` (both set up first).
.PHONY: setup demo test test-fast lint

setup:
	bash scripts/setup.sh

demo: setup
	.venv/bin/screener demo

test: setup
	.venv/bin/python -m pytest

test-fast: setup
	.venv/bin/python -m pytest -m "not slow"

lint: setup
	.venv/bin/ruff check screener workflows tests bench
	.venv/bin/ruff format --check screener workflows tests bench
