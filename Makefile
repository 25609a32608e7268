# Orchestry: the entry points. `make run` and `make test` work on a fresh
# Debian machine with Go: they install NGINX when it is missing.

GO          ?= go
BIN         := bin
TOOLS       := $(CURDIR)/bin/tools
STATICCHECK := $(TOOLS)/staticcheck
MODULES     := pkg/events services/routing services/health services/renderer services/certs services/metrics cmd/orchestry bench
PKGS        := $(addsuffix /...,$(addprefix ./,$(MODULES)))
export CGO_ENABLED ?= 0

.PHONY: all build run test test-short lint bench bench-quick nginx clean

all: build

## build: the all-in-one (and CLI; `orchestry version` shows the git revision)
## and each service as static binaries in bin/
build:
	$(GO) build -buildvcs=auto -o $(BIN)/orchestry ./cmd/orchestry
	$(GO) build -o $(BIN)/routing ./services/routing/cmd/routing
	$(GO) build -o $(BIN)/renderer ./services/renderer/cmd/renderer
	$(GO) build -o $(BIN)/health ./services/health/cmd/health
	$(GO) build -o $(BIN)/metrics ./services/metrics/cmd/metrics
	$(GO) build -o $(BIN)/certs ./services/certs/cmd/certs

## nginx: install NGINX if it is absent
nginx:
	@scripts/ensure-nginx

## run: the all-in-one on embedded NATS with a managed NGINX and a demo app
run: nginx build
	$(BIN)/orchestry up -demo

## chromium: install Chromium if it is absent (the web console's e2e test)
.PHONY: chromium
chromium:
	@scripts/ensure-chromium

## test: every test, unit and integration (real NGINX, real JetStream,
## headless Chromium for the web console)
test: nginx chromium
	$(GO) test -count=1 -timeout 15m $(PKGS)

## lint: gofmt, go vet and staticcheck over every module
lint: $(STATICCHECK)
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(STATICCHECK) $(PKGS)

$(STATICCHECK):
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2

## bench: the performance report (bench/run full, about 15 minutes here): render
## and apply at 100/1,000/10,000 apps, event-to-serving latency,
## failure convergence against plain NGINX, churn, throughput against a
## hand-written NGINX config and Caddy, probe capacity and metrics ingest;
## writes bench/results/<date>-full.md and bench/results/latest.md
bench: nginx
	GO=$(GO) bench/run full

## bench-quick: the same, reduced to a few minutes (fewer trials and rounds,
## 100/1,000 apps only, shorter churn): bench/results/<date>-quick.md
bench-quick: nginx
	GO=$(GO) bench/run quick

## images: Docker images of every service, NATS, the renderer with NGINX and
## the all-in-one, built locally without pulling (deploy/images/README.md)
.PHONY: images
images:
	GO=$(GO) deploy/images/build

## clean: remove binaries and the local data directory
clean:
	rm -rf $(BIN) .data

## compose-up: the docker compose stack (deploy/compose/): a three-node
## JetStream cluster, every service as its own NATS user, two NGINX nodes and
## three demo backends; builds missing images and writes .env when missing
.PHONY: compose-up compose-down compose-test
compose-up:
	GO=$(GO) deploy/compose/stack up

## compose-down: stop the stack and remove its containers, network and volumes
compose-down:
	GO=$(GO) deploy/compose/stack down

## compose-test: the failure scenarios of deploy/compose/ against the running
## stack (started first when it is not up)
compose-test: compose-up
	cd cmd/orchestry && $(GO) test -tags compose -count=1 -v -timeout 20m ./compose/
