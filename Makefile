# The two commands of the README: `make demo` and `make test`. Each builds .venv on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow test-browser lint venv clean bench

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned: the local CPU build. A loose torch requirement would fetch CUDA wheels.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

test: $(STAMP) lint
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

# The web app in a real headless browser: needs Debian's chromium + chromium-driver and the app extra.
test-browser: $(STAMP)
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { echo "needs Chromium: apt-get install -y chromium chromium-driver"; exit 1; }
	$(BIN)/python -m pip install -q -e '.[app]' selenium
	$(BIN)/python -m pytest -q -m slow tests/test_serve_browser.py

demo: $(STAMP)
	$(BIN)/ifkd demo --out demo-output

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_data.py

clean:
	rm -rf $(VENV) demo-output .pytest_cache
