# ODAVL Sync — every target runs over every module of the workspace.
MODULES := $(shell go list -m -f '{{.Dir}}')
GOTEST_FLAGS ?= -count=1 -timeout 20m
FUZZTIME ?= 8s

.PHONY: help run cluster bench-cluster test test-race lint vet tidy build gowork-off images bench bench-ingest bench-store bench-smoke fuzz tools contracts

help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-12s %s\n", $$1, $$2}'

run: ## Run everything in one process (embedded NATS, store, blobs under ./data)
	go run ./cmd/odavl-sync serve

cluster: ## Run the services split and doubled on loopback until Ctrl-C: 3 clustered nats-server (R3), the store, 2 gateways, 2 jobs, 2 storage, 1 stats, each its own process
	go run ./cmd/odavl-sync/cmd/localcluster $(CLUSTER_ARGS)

tools: ## Install what the tests need (versitygw, Azurite, Chromium) if missing
	@if [ -x scripts/install-test-tools.sh ]; then scripts/install-test-tools.sh; fi

# The FerretDB fork's own tests of ODAVL's patches (ODAVL-PATCHES.md); the
# rest of the fork's suite needs upstream's test servers.
FORK_TESTS := ./internal/handler/sjson/ ./internal/backends/sqlite/ ./internal/bson/

test: tools ## Run every module's tests (all of them, then the list of those that failed)
	@failed=""; \
	for m in $(MODULES); do echo "== $$m"; (cd $$m && PATH="$(CURDIR)/.tools/bin:$$PATH" go test $(GOTEST_FLAGS) ./...) || failed="$$failed $$m"; done; \
	echo "== third_party/ferretdb (ODAVL patches)"; (cd third_party/ferretdb && GOWORK=off go test $(GOTEST_FLAGS) -run 'ODAVL|Fast' $(FORK_TESTS)) || failed="$$failed third_party/ferretdb"; \
	if [ -n "$$failed" ]; then echo "FAILED:$$failed"; exit 1; fi; echo "all modules passed"

test-race: tools ## Run every module's tests with the race detector (all of them, then the list of those that failed)
	@failed=""; \
	for m in $(MODULES); do echo "== $$m"; (cd $$m && PATH="$(CURDIR)/.tools/bin:$$PATH" go test -race $(GOTEST_FLAGS) ./...) || failed="$$failed $$m"; done; \
	if [ -n "$$failed" ]; then echo "FAILED:$$failed"; exit 1; fi

vet: ## go vet every module
	@set -e; for m in $(MODULES); do (cd $$m && go vet ./...); done

lint: vet ## go vet (and gofmt check) every module
	@test -z "$$(gofmt -l $(MODULES))" || (gofmt -l $(MODULES); echo "gofmt needed"; exit 1)

contracts: ## Check the served OpenAPI and AsyncAPI documents with standard tools: redocly lint (no error), openapi-typescript + tsc, @asyncapi/parser (no error) (npm ci into contracts/)
	scripts/check-contracts.sh

build: ## Build every binary into ./bin (odavl-sync-client: the client alone, as go install builds it)
	@mkdir -p bin
	go build -o bin/odavl-sync ./cmd/odavl-sync
	cd client && go build -o ../bin/odavl-sync-client ./cmd/odavl-sync
	@for s in ingest jobs storage stats; do (cd services/$$s && go build -o ../../bin/$$s ./cmd/$$s); done

gowork-off: ## Build each module on its own (GOWORK=off), as its container does
	@set -e; for m in $(MODULES); do (cd $$m && GOWORK=off go build -o /dev/null ./...); done

images: ## Run deploy/Dockerfile's build steps as Docker would (only what it COPYs, its RUN commands) for every image, without Docker
	scripts/check-images.sh

tidy: ## go mod tidy every module
	@set -e; for m in $(MODULES); do (cd $$m && go mod tidy); done

bench: ## Run the benchmarks (bench-store and bench-cluster apart: they take minutes)
	@set -e; for m in $(MODULES); do (cd $$m && go test -run '^$$' -bench . -skip '^Benchmark(Store|Cluster)$$' -benchtime 2x ./...); done

bench-store: ## The embedded store at 100,000 ~10 KB results, before (ODAVL_STORE_BASELINE=1) and after the fork's patches, side by side (docs/store.md)
	cd cmd/odavl-sync && go test -run '^$$' -bench '^BenchmarkStore$$' -benchtime 1x -count 1 -timeout 90m .

bench-cluster: ## Uploads/s and jobs/s on the local cluster (make cluster) with one, then two instances of the gateway, jobs and storage (BENCH_UPLOADS=2000, BENCH_JOBS=1000)
	cd cmd/odavl-sync && go test -run '^$$' -bench '^BenchmarkCluster$$' -benchtime 1x -count 1 -timeout 30m .

bench-jobs: ## Side-by-side job queue benchmark: ours (JetStream sync 1s + FerretDB) against BullMQ on Redis (everysec)
	cd services/jobs && go run ./cmd/jobsbench -tools $(CURDIR)/.tools/jobsbench $(BENCH_JOBS_ARGS)

bench-smoke: ## bench-store (before and after) and bench-jobs (ours and the floors, no BullMQ) at tiny sizes: that they run to the end, not their figures (CI)
	cd cmd/odavl-sync && BENCH_STORE_RESULTS=200 BENCH_STORE_LISTS=5 BENCH_STORE_UPLOADS=100 BENCH_STORE_REPEATS=1 BENCH_STORE_BEFORE_REPEATS=1 \
		go test -run '^$$' -bench '^BenchmarkStore$$' -benchtime 1x -count 1 -timeout 10m .
	cd services/jobs && go run ./cmd/jobsbench -skip-bullmq -n 500 -latency-jobs 100 -results 300

bench-ingest: ## Uploads/s of ~10 KB Insight uploads through serve vs raw JetStream publishes (fresh server per pair, processing paused and running, 3 repeats), and POST → stored p99 at 200 uploads/s
	cd cmd/odavl-sync && go test -run '^$$' -bench '^BenchmarkIngest$$' -benchtime $${BENCH_UPLOADS:-3000}x -count 1 .

fuzz: ## Fuzz the three upload bodies, and every route's path, query and headers, through a real serve (router, NATS, store, storage), FUZZTIME each (make fuzz FUZZTIME=8s)
	@set -e; for f in FuzzUploadInsight FuzzUploadAutopilot FuzzUploadGuardian FuzzRoutes; do \
		(cd cmd/odavl-sync && go test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) .); done
