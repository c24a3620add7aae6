# The two commands of the README: `make reproduce` and `make test`. Each sets itself up.
PYTHON ?= python3
VENV ?= .venv
# On these machines a bare `pip install torch` pulls a multi-GB CUDA build; a CPU wheel of
# 2.13.0 lies on local disk. Override for another build: make test TORCH_SPEC='torch==2.5.1'.
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= dev,ray
PROFILE ?= quick
BIN := $(VENV)/bin
STAMP := $(VENV)/.droplab-$(EXTRAS)

.PHONY: install test reproduce bench lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

# A rerun reuses finished experiments and resumes unfinished ones; `make reproduce FRESH=1` starts over.
reproduce: $(STAMP)
	$(BIN)/droplab reproduce --profile $(PROFILE) $(if $(FRESH),--fresh)

bench: $(STAMP)
	for f in bench/*.py; do $(BIN)/python $$f || exit 1; done

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

clean:
	rm -rf $(VENV) runs .pytest_cache
