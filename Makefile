# The two commands of the README: `make demo` and `make test` (both set up first).
.PHONY: setup demo test test-fast lint

setup:
	bash scripts/setup.sh

demo: setup
	.venv/bin/screener demo

# pytest-xdist workers (the Slurm tests share one of them: SLURM_GROUP in tests/cluster/slurmtools.py)
TEST_WORKERS ?= 2

test: setup
	.venv/bin/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

test-fast: setup
	.venv/bin/python -m pytest -n $(TEST_WORKERS) --dist loadgroup -m "not slow"

lint: setup
	.venv/bin/ruff check screener workflows tests bench
	.venv/bin/ruff format --check screener workflows tests bench
