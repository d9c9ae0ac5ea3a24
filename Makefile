# Two commands a newcomer needs: `make demo` and `make test`. Both build .venv.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test smoke lint bench clean deploy-config image

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/opsagent demo

test: lint
	$(BIN)/lint-imports --config .importlinter
	$(BIN)/python -m pytest
	bash .ci/wheel-smoke

# ruff (rules in pyproject.toml), then mypy: the strict packages must have no errors and every
# other file at most its count in .ci/mypy-baseline.txt.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python .ci/mypy-check

# Build the wheel, install it without the source tree and run demo, policy lint and eval from an empty folder.
smoke: $(STAMP)
	bash .ci/wheel-smoke

bench: $(STAMP)
	$(BIN)/python evals/bench/_collect.py

# After changing policies/, playbooks/ or the adapter's permissions: refresh the
# ConfigMaps and RBAC in deploy/ (rendered from them).
deploy-config: $(STAMP)
	$(BIN)/python deploy/render_configmaps.py

# The one image every part runs (daemon, Slack app, wake proxy). IMAGE=... to tag it for your registry.
IMAGE ?= ghcr.io/opsagent/opsagent:0.1.0
DOCKER ?= docker
image:
	$(DOCKER) build -f deploy/Dockerfile -t $(IMAGE) .

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
