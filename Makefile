# traffic-hub — the two commands that matter: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
NODE_STAMP := node_modules/.installed-$(shell sha1sum package-lock.json | cut -c1-12)
KAFKA := bash ops/kafka/kafka-local.sh
CLUSTER := bash ops/kafka/cluster-local.sh
DB := bash ops/postgres/db-local.sh
NETWORK := geo/data/lille_centre.network.arrow

.PHONY: help install system-packages run test test-future lint typecheck unit kafka-up kafka-down cluster-up cluster-down cluster-kill cluster-start cluster-status chaos db-up db-down bench network clean

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

install: system-packages $(STAMP) $(NODE_STAMP) ## system packages if missing, .venv with the project and its dev tools, the npm packages (idempotent)

system-packages: ## java, maven, chromium, node, nginx: installed when missing (root + apt), else the exact command to run
	@bash ops/system-packages.sh

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,bench]'
	rm -f $(VENV)/.installed-*
	touch $@

$(NODE_STAMP): package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	rm -f node_modules/.installed-*
	touch $@

kafka-up: ## start the local Kafka broker (jars from Maven Central, cached outside git)
	@$(KAFKA) up

kafka-down: ## stop the local Kafka broker
	@$(KAFKA) down

cluster-up: ## start a local Kafka cluster: 3 brokers + 3 dedicated controllers (idempotent); last line: its bootstrap list
	@$(CLUSTER) up

cluster-down: ## stop the local cluster (every node)
	@$(CLUSTER) down

cluster-kill: ## SIGKILL broker N (1-3) or controller N (c1-c3) of the cluster (make cluster-kill N=2, N=c1)
	@$(CLUSTER) kill $(N)

cluster-start: ## start node N (1-3, c1-c3) again and wait until it has rejoined (make cluster-start N=2)
	@$(CLUSTER) start $(N)

cluster-status: ## each node of the cluster, the registered brokers and the active controller (c1-c3)
	@$(CLUSTER) status; $(CLUSTER) controller

db-up: ## start the local PostgreSQL + PostGIS (history archive); prints its URL last
	@$(DB) up

db-down: ## stop the local PostgreSQL
	@$(DB) down

network: install ## build the bundled Lille road network when it is missing
	@test -f $(NETWORK) || $(BIN)/traffic-hub network build geo/data/lille_centre_2017_roads.osm.pbf -o $(NETWORK)

run: install kafka-up network ## the whole hub with the Lille demo on http://127.0.0.1:8000
	TRAFFIC_HUB_DATABASE_URL=$${TRAFFIC_HUB_DATABASE_URL:-$$($(DB) up | tail -n 1)} \
	TRAFFIC_HUB_FEEDS__SNAPSHOT_DIR=$${TRAFFIC_HUB_FEEDS__SNAPSHOT_DIR:-.run/feeds} \
	TRAFFIC_HUB_DEMO=$${TRAFFIC_HUB_DEMO:-true} $(BIN)/traffic-hub run

lint: install ## ruff and mypy --strict
	$(BIN)/ruff check .
	$(BIN)/mypy

test: install kafka-up lint ## every test: unit, integration against the real broker, browser; test-future alongside
	bash ops/test-all.sh

test-future: install ## the tests that depend on "now", again with the clock 400 days ahead (own broker)
	bash ops/test-future.sh -q

bench: install kafka-up ## the benchmarks under loadtests/, writes loadtests/RESULTS.md
	$(BIN)/python -m loadtests

chaos: install ## the chaos run on the local cluster (started if needed): kills under load, every figure
	$(BIN)/python -m loadtests.chaos

clean: ## remove the venv and caches (not the Kafka jar cache)
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
