# Two commands on a fresh machine: `make demo` and `make test`. Each installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The CPU build of torch; an unpinned torch would pull a multi-GB CUDA build.
TORCH := torch==2.13.0
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install demo test lint bench-quality bench-speed bench-scale bench-embed bench-feedback bench-faults clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: install
	$(BIN)/scout demo

test: install
	$(BIN)/python -m pytest -n 2 -q

lint: install
	$(BIN)/ruff check bot scoring tests benchmarks scripts
	$(BIN)/ruff format --check bot scoring tests benchmarks scripts

bench-quality: install
	$(BIN)/scout evaluate --data ../shared/data/labeled/biorxiv_journals_dev.jsonl --folds 5 --markdown

bench-speed: install
	$(BIN)/python benchmarks/pipeline_speed.py --preprints 3000
	$(BIN)/python benchmarks/scoring_speed.py
	$(BIN)/python benchmarks/slack_latency.py

# Preprint Match's size on PostgreSQL (127.0.0.1:5432); smaller runs: make bench-scale SCALE="--profiles 100 --preprints 10000"
SCALE ?=
bench-scale: install
	$(BIN)/python benchmarks/scale.py $(SCALE)

# Each SCOUT_BACKEND: abstracts/s, peak memory, agreement with fp32, and scout evaluate
# (minutes per backend) to say which may be the default.
bench-embed: install
	$(BIN)/python benchmarks/embedding_speed.py --texts 240 --quality

bench-feedback: install
	$(BIN)/python benchmarks/feedback_replay.py --seeds 3

# Each delivery fault against the test suite's fake Slack and SMTP servers: matches due,
# posts or sends tried, delivered once, duplicated, lost. SQLite, then PostgreSQL (each
# fault in a schema of its own in FAULTS_DATABASE_URL, created if missing).
FAULTS_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/scout_faults
bench-faults: install
	$(BIN)/python benchmarks/delivery_faults.py
	$(BIN)/python benchmarks/delivery_faults.py --database-url $(FAULTS_DATABASE_URL)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
