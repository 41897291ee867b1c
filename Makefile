# The CRM suite on one machine. `make run` serves the API, `make test` runs the whole suite.
# Both bootstrap the same way: Python 3.11 virtual environment in .venv, installed from
# requirements-dev.txt pinned by constraints.txt (reinstalled only when those files change).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.NOTPARALLEL:

ifndef PYTHON
PYTHON := $(or $(shell command -v python3.11 2>/dev/null),$(shell command -v python3 2>/dev/null),python3)
endif
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
CONFIG ?= config.yml
# Everything about the services comes from the registry, services.toml (devstack/registry.py,
# standard library only, so it answers before .venv exists).
REGISTRY = $(shell $(PYTHON) -m devstack.registry $(1))
# The modules the one development process serves: every registry service, then the gateway.
SERVICES := $(call REGISTRY,modules)
SERVICE_NAMES := $(call REGISTRY,names)
# Services that own a database; each gets <NAME>_DB_URI (default: SQLite under var/).
DB_SERVICES := $(call REGISTRY,databases)
# name=module of each database's demo loader (demo/<name>.py).
DEMOS := $(call REGISTRY,demos)
SERVICE_PACKAGE_DIRS = $(patsubst %/service.py,%,$(wildcard services/*/*/service.py))
API = http://localhost:$(lastword $(subst :, ,$(or $(WEB_SERVER_ADDRESS),127.0.0.1:8000)))
PYTEST_ARGS ?=
# Eventlet warns that it is deprecated from whichever nameko module imports it first.
QUIET := PYTHONWARNINGS=ignore::Warning:nameko.cli.commands,ignore::Warning:nameko.extensions
BENCH_ARGS ?=
# `make run` sends notify's email and SMS to local catchers (tools/mail_catcher, tools/sms_catcher);
# CATCHERS=0 when SMTP_HOST and SMS_PROVIDER point at real ones.
CATCHERS ?= 1
CHAOS_ARGS ?=

export AMQP_URI ?= amqp://guest:guest@localhost:5672/
export RABBIT_MANAGEMENT_URI ?= http://guest:guest@localhost:15672

upper = $(shell echo '$(1)' | tr '[:lower:]' '[:upper:]')
db_uri = $(or $($(call upper,$(1))_DB_URI),sqlite:///var/$(1).db)
short_hash = $(shell { cat $(1); echo $(2); } 2>/dev/null | sha256sum | cut -c1-12)

REQUIREMENT_FILES := requirements-dev.txt constraints.txt \
	$(sort $(wildcard libs/*/pyproject.toml services/*/pyproject.toml gateway/pyproject.toml))
# Editable installs map each top-level package when installed: a new one means reinstalling.
PACKAGE_ROOTS := $(sort $(wildcard libs/*/*/__init__.py services/*/*/__init__.py gateway/*/__init__.py))
INSTALL_STAMP := $(VENV)/.installed-$(call short_hash,$(REQUIREMENT_FILES),$(PACKAGE_ROOTS))
# Demo data goes by default only into SQLite databases (the dev default).
DEMO ?= $(if $(filter-out sqlite:%,$(foreach s,$(DB_SERVICES),$(call db_uri,$(s)))),0,1)

.PHONY: help keys run test lint format bench chaos install venv broker-check broker-check-test broker-check-run migrate \
	demo lock compose-check clean distclean registry new-service topology

help:
	@echo "make run            install, migrate, load demo data into an empty db, serve the API on $(API)"
	@echo "make test           install, then ruff, mypy (crm_common) and the whole pytest suite"
	@echo "make lint           ruff check, ruff format --check, mypy --strict on crm_common"
	@echo "make format         ruff format and ruff check --fix"
	@echo "make bench          run the benchmarks in bench/ (prints figures; RabbitMQ, PostgreSQL, Redis)"
	@echo "make chaos          broker cut, black hole, SIGKILL, DB lock under load (prints a table)"
	@echo "make migrate        bring each service's database to the newest schema"
	@echo "make lock           rewrite constraints.txt from what .venv has installed"
	@echo "make compose-check  validate deploy/docker-compose.yml against the compose spec"
	@echo "make topology       declare the ERP integration's exchanges and queues on AMQP_URI's vhost"
	@echo "make new-service NAME=x  scaffold services/x and add it to the registry (services.toml)"
	@echo "make registry       rewrite the files generated from services.toml (config, compose, SQL)"
	@echo "make clean          remove var/ (databases, demo data) and caches; distclean also .venv"

# --- bootstrap ---------------------------------------------------------------------------

venv: $(PY)

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null || { \
		echo "Python 3.11 is needed but '$(PYTHON)' is not it: install Python 3.11 and run 'make PYTHON=/path/to/python3.11 ...'." >&2; \
		exit 1; }
	$(PYTHON) -m venv $(VENV)

install: $(INSTALL_STAMP)

$(INSTALL_STAMP): | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt pip setuptools
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

# Runs with the system Python and the standard library only: it answers before anything
# is installed, within a few seconds, in one sentence.
broker-check:
	@$(PYTHON) scripts/check_broker.py --quiet

broker-check-test:
	@$(PYTHON) scripts/check_broker.py --quiet --management "$(RABBIT_MANAGEMENT_URI)"

# `make run` also refuses a virtual host where another stack already serves the RPC queues.
broker-check-run:
	@$(PYTHON) scripts/check_broker.py --quiet --unserved "$(SERVICE_NAMES)"

# --- run ---------------------------------------------------------------------------------

migrate: install
	@$(foreach s,$(DB_SERVICES),$(QUIET) $(PY) -m crm_common.migrations $(s) --uri '$(call db_uri,$(s))';)

# Each demo loads only into a database without data of its own. `make run` asks for them on
# SQLite (the dev default); for another database say DEMO=1.
demo: migrate
ifeq ($(DEMO),1)
	@$(foreach d,$(DEMOS),DB_URI='$(call db_uri,$(firstword $(subst =, ,$(d))))' $(QUIET) $(PY) -m $(lastword $(subst =, ,$(d)));)
else
	@echo "Demo data is not loaded into a database other than SQLite unless you ask: make run DEMO=1."
endif

# A key pair per process of the dev stack, made once per checkout and kept under var/keys/
# (private.jwks readable by its owner only); a process the registry gains gets its own.
keys: install
	@$(QUIET) $(PY) -m crm_common.identity --label dev-$$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n') \
		var/keys $(SERVICE_NAMES) gateway

run: broker-check-run install keys migrate demo topology
	@echo
	@echo "The CRM API is starting on $(API) (Ctrl-C stops it). To call it:"
	@echo "  curl -s $(API)/api/auth/token -H 'Content-Type: application/json' -d '{\"username\": \"sales01\", \"password\": \"Crm-demo-2026\"}'"
	@echo "  export TOKEN=<the access_token of that answer>"
	@echo "  curl -sG $(API)/api/customers -H \"Authorization: Bearer \$$TOKEN\" --data-urlencode q=机电 --data-urlencode limit=5"
	@echo "  Demo logins (README lists them all): admin, sales01, manager01, branch.east, marketing01.  API docs: $(API)/api/openapi.json"
	@echo "  Metrics of this process: http://localhost:$(or $(METRICS_PORT),9100)/metrics"
	@if [ "$(CATCHERS)" = 1 ]; then echo "  Alerts' email: http://localhost:8025/ (and var/mail/*.eml); their SMS: http://localhost:8026/ (and var/sms/sms.jsonl)"; fi
	@echo
	@if [ "$(CATCHERS)" = 1 ]; then \
		export SMS_RECEIPT_TOKEN="$${SMS_RECEIPT_TOKEN:-local-sms-receipt-token}"; \
		$(PY) -m tools.mail_catcher --smtp-port 1025 --http-port 8025 --directory var/mail & \
		$(PY) -m tools.sms_catcher --port 8026 --directory var/sms \
			--receipt-url $(API)/api/alerts/sms-receipts & \
	fi; \
	trap 'kill $$(jobs -p) 2>/dev/null || true' EXIT; \
	$(QUIET) $(BIN)/nameko run --config $(CONFIG) $(SERVICES)

# --- checks ------------------------------------------------------------------------------

lint: install
	$(PY) -m devstack.registry check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy libs/crm_common/crm_common gateway/gateway $(SERVICE_PACKAGE_DIRS)
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: broker-check-test install lint
	$(BIN)/pytest --amqp-uri "$(AMQP_URI)" --rabbit-api-uri "$(RABBIT_MANAGEMENT_URI)" $(PYTEST_ARGS)

compose-check: install
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec deploy/docker-compose.yml

bench: broker-check-test install
	@command -v wrk >/dev/null || apt-get install -y wrk || { apt-get update && apt-get install -y wrk; } \
		|| echo "wrk could not be installed: the benchmarks fall back to Python load"
	@found=0; for script in bench/bench_*.py; do \
		[ -e "$$script" ] || continue; found=1; module=$${script%.py}; \
		echo "== $${module//\//.}"; $(PY) -m "$${module//\//.}" $(BENCH_ARGS); \
	done; [ $$found = 1 ] || echo "No benchmarks in bench/ yet."

# Each scenario on a stack of its own (vhost, PostgreSQL database); CHAOS_ARGS="sigkill
# --fault-seconds 5" picks scenarios and the length of the fault. Exits non-zero when an event
# is lost or doubled, a committed write cannot be learnt by its client, or a process crashes.
chaos: broker-check-test install
	@$(QUIET) $(PY) -m devstack.chaos $(CHAOS_ARGS)

# The ERP integration's exchanges, queues and bindings (devstack/topology.py) on a running
# broker, as the definitions file gives them to a broker at boot; safe to run again. The retry
# queues follow the services' EVENT_RETRY_DELAYS.
topology: install
	@$(PY) -m devstack.topology --amqp-uri "$(AMQP_URI)" --retry-delays "$${EVENT_RETRY_DELAYS:-1,10,60}"

# --- the service registry ----------------------------------------------------------------

registry:
	@$(PYTHON) -m devstack.registry write

new-service:
	@test -n "$(NAME)" || { echo "Say which: make new-service NAME=<service name>" >&2; exit 1; }
	@$(PYTHON) -m devstack.scaffold "$(NAME)"
	@$(PYTHON) -m devstack.registry write

# --- maintenance -------------------------------------------------------------------------

lock: install
	@{ echo "# Exact versions of everything installed by requirements-dev.txt (regenerate: make lock)."; \
	  $(PY) -m pip freeze --all --exclude-editable --disable-pip-version-check \
	    | grep -v -E '^(-e |#)| @ ' | LC_ALL=C sort -f; } > constraints.txt.new
	@mv constraints.txt.new constraints.txt
	@echo "constraints.txt rewritten: review 'git diff constraints.txt'."

clean:
	rm -rf var .pytest_cache .ruff_cache .hypothesis

distclean: clean
	rm -rf $(VENV)
