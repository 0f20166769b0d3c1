# Set-up, local run and checks. `make run` and `make test` install what they need first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
EVENT ?= events/check_otp.json

# SAM CLI sends usage telemetry unless told not to.
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= eu-central-1

.PHONY: install run test lint typecheck pytest template-check build clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml src/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r src/requirements.txt -e '.[dev]'
	touch $@

## run: invoke the function on EVENT against the Paynet sandbox and a local Secrets Manager
run: install
	$(BIN)/python -m tests.support.local_run $(EVENT)

.PHONY: serve openapi browser
PORT ?= 3000

## serve: serve the function on http://127.0.0.1:PORT, backed by the sandbox, until Ctrl-C
serve: install
	$(BIN)/python -m tests.support.local_api --port $(PORT)

## openapi: write docs/openapi.json from the routes and models
openapi: install
	$(BIN)/python -m otp_check.openapi docs/openapi.json

## browser: install Debian's Chromium for the browser test, where this machine allows it
browser:
	./.ci/install-chromium-if-possible

## test: every check, in order: ruff, mypy, pytest, template checks
test: install browser lint typecheck pytest template-check

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest

template-check: install
	$(BIN)/sam validate --lint --template template.yaml
	$(BIN)/cfn-lint template.yaml
	PATH="$(CURDIR)/$(BIN):$$PATH" ./.ci/sam-build-if-possible

## build: `sam build`, which needs python3.13 on PATH
build:
	$(BIN)/sam build

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache .hypothesis
