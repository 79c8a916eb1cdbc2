PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install -q -c constraints.txt

.PHONY: demo test lint bench clean rules-table causes-table docs-reports

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) torch==2.13.0
	$(PIP) -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/lossdoctor diagnose --example deep-relu

test: $(VENV)/.installed
	$(BIN)/python -m pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy src

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/speed.py
	$(BIN)/python benchmarks/monitor_overhead.py
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/monitor_overhead_ddp.py
	$(BIN)/python benchmarks/faults/run.py
	$(BIN)/python benchmarks/faults/repair.py
	KERAS_BACKEND=tensorflow $(BIN)/python benchmarks/keras/run.py
	KERAS_BACKEND=torch $(BIN)/python benchmarks/keras/run.py
	$(BIN)/python benchmarks/realbugs/run.py
	$(BIN)/python benchmarks/zoo/run.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache

# Regenerate the README's code table from the rule catalogue (tests/test_catalog.py checks it).
rules-table: $(VENV)/.installed
	$(BIN)/python -c "import re, pathlib; from lossdoctor.checks.catalog import markdown_table as t; \
	p = pathlib.Path('README.md'); p.write_text(re.sub(r'(?s)<!-- rules:start -->.*?<!-- rules:end -->', \
	lambda m: '<!-- rules:start -->\n' + t() + '\n<!-- rules:end -->', p.read_text()))"

# Regenerate docs/causes.md's table from the causes graph (tests/test_causes.py checks it).
causes-table: $(VENV)/.installed
	$(BIN)/python -c "import re, pathlib; from lossdoctor.causes.graph import markdown_table as t; \
	p = pathlib.Path('docs/causes.md'); p.write_text(re.sub(r'(?s)<!-- graph:start -->.*?<!-- graph:end -->', \
	lambda m: '<!-- graph:start -->\n' + t() + '\n<!-- graph:end -->', p.read_text()))"

# Rebuild docs/story1-report.html, docs/monitor-report.html and their screenshots (needs chromium).
docs-reports: $(VENV)/.installed
	$(BIN)/python docs/build_reports.py
