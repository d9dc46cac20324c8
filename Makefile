# ringtrace — see README.md. Targets meant for users are listed by `make help`.
# Everything that touches the kernel needs root: run those as `sudo make …`.

# sudo's secure_path usually lacks Go: find it ourselves.
GO      ?= $(shell PATH="$$PATH:/usr/local/go/bin" command -v go)
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
# GOARCH=arm64 builds for arm64 into bin/arm64/ (static, no cgo: copy it
# to the arm64 host as is); the host's architecture builds into bin/.
GOARCH  ?= $(shell $(GO) env GOARCH)
HOSTARCH := $(shell $(GO) env GOHOSTARCH)
BIN     := $(if $(filter $(HOSTARCH),$(GOARCH)),bin/ringtrace,bin/$(GOARCH)/ringtrace)
BIN_ARM64 := bin/arm64/ringtrace
GOFLAGS_BUILD := -trimpath -ldflags "-s -w -X main.version=$(VERSION)"
# ARCH=arm64 boots arm64 guests (make vm, make kernels).
ARCH    ?=

.PHONY: help build release generate generate-check cross-check demo test test-short bench bench-send soak soak-churn clean

help: ## list targets
	@awk 'BEGIN{FS=":.*## "} /^[a-z][a-z-]*:.*## /{printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build bin/ringtrace (GOARCH=arm64: bin/arm64/ringtrace; no clang needed: BPF objects are committed)
	CGO_ENABLED=0 GOARCH=$(GOARCH) $(GO) build $(GOFLAGS_BUILD) -o $(BIN) ./cmd/ringtrace

RELEASE_DIR ?= out/release
release: ## static release binaries for amd64 and arm64 with SHA256SUMS, in out/release
	rm -rf $(RELEASE_DIR) && mkdir -p $(RELEASE_DIR)
	for a in amd64 arm64; do CGO_ENABLED=0 GOOS=linux GOARCH=$$a $(GO) build $(GOFLAGS_BUILD) -o $(RELEASE_DIR)/ringtrace-$(VERSION)-linux-$$a ./cmd/ringtrace || exit 1; done
	cd $(RELEASE_DIR) && sha256sum ringtrace-* > SHA256SUMS && cat SHA256SUMS

# The committed objects are what this toolchain builds, byte for byte (CI
# checks it): Debian bookworm's clang-14 and libbpf-dev 1.1.2.
BPF_CC    ?= clang-14
BPF_STRIP ?= llvm-strip-14
generate: ## rebuild the BPF object and its Go bindings after editing bpf/ (needs clang-14, llvm-14, libbpf-dev)
	cd tracer/bpfobj && BPF2GO_CC=$(BPF_CC) BPF2GO_STRIP=$(BPF_STRIP) $(GO) generate

# tracer/bpfobj holds bpf2go's output and, in bpftypes, the types typesplit
# moves out of it: a changed or a new file there fails.
generate-check: generate ## (CI) fail if the committed BPF objects, bindings and types are not what bpf/ builds
	git diff --exit-code --stat -- tracer/bpfobj
	@test -z "$$(git status --porcelain --untracked-files=all -- tracer/bpfobj)" || { git status --short --untracked-files=all -- tracer/bpfobj; echo "generate-check: uncommitted files in tracer/bpfobj"; exit 1; }

cross-check: ## (CI) every package builds and vets for arm64 as well as amd64 (static, no cgo)
	CGO_ENABLED=0 GOARCH=arm64 $(GO) build ./...
	CGO_ENABLED=0 GOARCH=arm64 $(GO) vet ./...
	CGO_ENABLED=0 GOARCH=arm64 $(GO) build $(GOFLAGS_BUILD) -o $(BIN_ARM64) ./cmd/ringtrace

DEMO_OUT ?= out/demo
demo: build ## (root) the main job: trace the status and call-return scenarios, write their reports to out/demo
	./$(BIN) run status call-return --out $(DEMO_OUT)
	@echo
	@echo "Frame timelines: open $(DEMO_OUT)/status.html and $(DEMO_OUT)/call-return.html in a browser,"
	@echo "or load $(DEMO_OUT)/*.perfetto.json at https://ui.perfetto.dev. Re-read a recording with"
	@echo "  bin/ringtrace report $(DEMO_OUT)/call-return.rtrec --frames"

# -p 1: root integration tests measure timing against an emulated link;
# two packages tracing and sending at once on 2 CPUs would measure each other.
test: ## (root) unit and root integration tests against the running kernel
	$(GO) test -count=1 -p 1 -timeout 30m ./...

test-short: ## unit tests only, no root needed
	$(GO) test -count=1 -short ./...

bench: build ## (root) tracing overhead (traced/untraced: --detail calls, stream, --summary, vs bpftrace), per-call cost by ring size, start-up time, idle sweep cost
	@command -v trafgen >/dev/null || apt-get install -y netsniff-ng
	@command -v bpftrace >/dev/null || apt-get install -y bpftrace
	$(GO) test -run XXX -bench Startup -benchtime 5x ./tracer/session/
	$(GO) test -run XXX -bench Sweep -benchtime 200x ./tracer/session/
	$(GO) run ./cmd/ringbench overhead
	$(GO) run ./cmd/ringbench percall

SOAK ?= 10m
soak: build ## (root, not in CI) trace --summary for SOAK=10m against a full-rate sender: RSS flat, nothing lost
	$(GO) run ./cmd/ringbench soak --duration $(SOAK)

soak-churn: build ## (root, not in CI) SOAK=10m of short-lived senders (a new socket each) under trace --json, --summary, then --summary --detail calls: every frame accounted for, RSS flat, nothing lost
	$(GO) run ./cmd/ringbench soak --churn --mode stream --duration $(SOAK)
	$(GO) run ./cmd/ringbench soak --churn --mode summary --duration $(SOAK)
	$(GO) run ./cmd/ringbench soak --churn --mode calls --duration $(SOAK)

bench-send: build ## (root) ringtrace send vs trafgen on one veth, pps ratio
	@command -v trafgen >/dev/null || apt-get install -y netsniff-ng
	$(GO) run ./cmd/ringbench send

.PHONY: vm kernels
# The guest's ringtrace is built for the guest's architecture (ARCH).
VM_BIN = $(if $(filter-out $(HOSTARCH),$(ARCH)),bin/$(ARCH)/ringtrace,bin/ringtrace)
vm: ## boot KERNEL=5.10|6.1|6.12.95|6.12.117|7.2|7.3|next (ARCH=arm64: 6.1|6.12.117|7.2) under qemu, run CMD='…' as root (VM_SHARE=DIR VM_TIMEOUT=s; docs/vm.md)
	$(MAKE) --no-print-directory build GOARCH=$(or $(ARCH),$(HOSTARCH))
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/ringvm ./cmd/ringvm
	exec ./bin/ringvm run --kernel "$$KERNEL" --arch "$(ARCH)" --binary $(VM_BIN) --share "$$VM_SHARE" --timeout "$${VM_TIMEOUT:-600}" --accel "$${VM_ACCEL:-auto}" -- "$$CMD"

kernels: ## fetch the VM kernel matrix (5.10 6.1 6.12.95 6.12.117 7.2 next; ARCH=arm64: 6.1 6.12.117 7.2) into ~/.cache/ringtrace
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/ringvm ./cmd/ringvm
	exec ./bin/ringvm kernels $(if $(ARCH),--arch $(ARCH))

# KERNELS=6.1,7.2 runs those kernels only (one CI job per kernel: see
# .github/workflows/vmtest.yml); empty: the whole amd64 matrix. arm64
# kernels are named 7.2@arm64; VMTEST_ARM64=7.2 adds 7.2@arm64 to the
# default list (.ci/run does).
VMTEST_ARM64 ?=
comma := ,
KERNELS ?=
.PHONY: vmtest
vmtest: build ## (root) scenarios x hook classes + root tests on the `make kernels` VMs and this host; out/vmtest (KERNELS=6.1,7.2 VMTEST_FLAGS=…)
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/ringvm ./cmd/ringvm
	CGO_ENABLED=0 GOARCH=arm64 $(GO) build $(GOFLAGS_BUILD) -o $(BIN_ARM64) ./cmd/ringtrace
	exec ./bin/ringvm matrix --binary bin/ringtrace --binary-arm64 $(BIN_ARM64) --out out/vmtest --go "$(GO)" $(foreach k,$(subst $(comma), ,$(KERNELS)),--kernel $(k)) $(foreach k,$(subst $(comma), ,$(VMTEST_ARM64)),--with-kernel $(k)@arm64) $(VMTEST_FLAGS)

clean: ## remove build output
	rm -rf bin
