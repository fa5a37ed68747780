# lazyfp: build, run and test the system with a Microkit SDK (Microkit conventions).
#   make [loader.img]   build the system image        make run     boot it in QEMU
#   make test           all tests (QEMU system tests when an SDK is present)
#   make clean
# The SDK: MICROKIT_SDK, else an installed one (LAZYFP_SYSTEM_SDK; empty: none), else the one
# `make prereqs` fetched into the cache (scripts/fetch-sdk.sh).
LAZYFP_SYSTEM_SDK ?= /opt/microkit-sdk
LAZYFP_SDK_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/lazyfp
MICROKIT_SDK ?= $(firstword $(foreach d,$(LAZYFP_SYSTEM_SDK) $(LAZYFP_SDK_CACHE)/microkit-sdk-2.3.0,$(if $(wildcard $(d)/bin/microkit),$(d))))
MICROKIT_BOARD ?= qemu_virt_aarch64
MICROKIT_CONFIG ?= debug
BUILD_DIR ?= build
FP_POLICY ?= lazy
# The guest: `test` (lazyfp's test guest, or GUEST_IMAGE: any EL1 ELF, or a raw binary with
# GUEST_ENTRY=<load and entry address>) or `linux` (LINUX_IMAGE, INITRD, LINUX_BOOTARGS; see
# linux/linux.mk for the defaults the project produces).
GUEST ?= test
GUEST_IMAGE ?=
GUEST_ENTRY ?=
LAZYFP_TORTURE_ITERS ?= 100000
# Build variants: the guest's cargo features ("bench" for the benchmark guest), the crate that
# plays the VMM (floor-pd for the benchmark floor), and the output directory name.
GUEST_FEATURES ?=
VMM_CRATE ?= vmm-pd
# Edits of the derived system description for a scenario, e.g. SDF_SET=fp_service.cpu=1.
SDF_SET ?=
# At most this many vCPUs (default: one per core of the kernel, as system.xml describes).
VCPUS ?=
VARIANT ?= $(FP_POLICY)$(if $(filter linux,$(GUEST)),-linux)
RUN_TIMEOUT ?= 900
# Seconds of in-guest fpstress in the Linux system test.
LINUX_TEST_SECONDS ?= 10
TEST_TIMEOUT ?= 600


SDK_HINT := get the Microkit 2.3 SDK (the official release, or built from source as Microkit's README describes) and set MICROKIT_SDK=/path/to/sdk
OUT := $(BUILD_DIR)/$(MICROKIT_BOARD)/$(MICROKIT_CONFIG)/$(VARIANT)
LAZYFP_SDF := $(abspath $(OUT)/system.xml)
# Guest timer ticks between NEON worker sections (0: only when the guest asks).
LAZYFP_NEON_EVERY ?= 1
# 1: the ticker PD signals the VMM every millisecond (notification-latency measurement).
LAZYFP_TICKER ?= 0
# 0: the hostile client PD sends nothing (builds that time exits; docs/hostile.md).
LAZYFP_HOSTILE ?= 1
# What the VMM does once it has stopped the VM for an error: power-off or serve (empty: the
# board file's on_vm_stop; QEMU virt powers off, the real boards keep serving).
ON_VM_STOP ?=
export LAZYFP_ON_VM_STOP := $(ON_VM_STOP)
export LAZYFP_SYSTEM_SDK LAZYFP_SDK_CACHE MICROKIT_SDK MICROKIT_BOARD MICROKIT_CONFIG FP_POLICY LAZYFP_TORTURE_ITERS LAZYFP_SDF LAZYFP_NEON_EVERY LAZYFP_TICKER LAZYFP_HOSTILE
HOST_CARGO_DIR := $(abspath $(BUILD_DIR))/cargo/host
MKBUNDLE = $(CARGO) run -q --release --target-dir $(HOST_CARGO_DIR) -p lazyfp-mkbundle --
# Per board too (the board's system description is compiled in), so boards do not rebuild each other.
CARGO_DIR := $(abspath $(BUILD_DIR))/cargo/$(if $(filter-out qemu_virt_aarch64,$(MICROKIT_BOARD)),$(MICROKIT_BOARD)-)$(MICROKIT_CONFIG)-$(VARIANT)
CARGO := cargo
PD_TARGET_SOFT := aarch64-unknown-none-softfloat
PD_TARGET_HARD := aarch64-unknown-none
# The lazy VMM cannot contain FP/SIMD instructions; the eager one uses FP on purpose.
VMM_TARGET := $(if $(filter eager,$(FP_POLICY)),$(PD_TARGET_HARD),$(PD_TARGET_SOFT))
QEMU_SMP ?= $(if $(findstring smp,$(MICROKIT_CONFIG)),4,1)

.PHONY: bench soak all loader.img run test test-boards test-smp test-smp1 test-scripts test-host test-aarch64 test-elves system-test fuzz fuzz-smoke sdf pds prereqs sdk-check clean
all: loader.img
loader.img: $(OUT)/loader.img

prereqs:
	@scripts/prereqs.sh

sdk-check:
	@if [ -z "$(MICROKIT_SDK)" ]; then echo "lazyfp: no Microkit SDK: $(SDK_HINT)"; exit 1; fi
	@if [ ! -x "$(MICROKIT_SDK)/bin/microkit" ]; then echo "lazyfp: MICROKIT_SDK=$(MICROKIT_SDK) has no bin/microkit: $(SDK_HINT)"; exit 1; fi
	@if [ ! -d "$(MICROKIT_SDK)/board/$(MICROKIT_BOARD)" ]; then echo "lazyfp: the SDK has no board '$(MICROKIT_BOARD)' (it has: $$(ls $(MICROKIT_SDK)/board | tr '\n' ' '))"; exit 1; fi
	@if [ ! -d "$(MICROKIT_SDK)/board/$(MICROKIT_BOARD)/$(MICROKIT_CONFIG)" ]; then echo "lazyfp: the SDK has no config '$(MICROKIT_CONFIG)' for $(MICROKIT_BOARD) (it has: $$(ls $(MICROKIT_SDK)/board/$(MICROKIT_BOARD) | tr '\n' ' '))"; exit 1; fi

# The system description for this policy, derived from system.xml (the single source): the eager
# VMM gets fpu="true". Every build of this policy reads its constants from it (LAZYFP_SDF).
sdf: prereqs
	@mkdir -p $(OUT)
	$(CARGO) run -q --release --target-dir $(HOST_CARGO_DIR) -p lazyfp-build --bin sdf-variant -- --policy $(FP_POLICY) \
	    $(if $(VCPUS),--vcpus $(VCPUS)) \
	    $(foreach e,$(SDF_SET),--set $(e)) system.xml $(OUT)/system.xml

# Every PD ELF and the guest image, for this config and policy.
pds: sdf
	$(CARGO) build --release --target-dir $(CARGO_DIR) -p $(VMM_CRATE) --target $(VMM_TARGET)
	$(CARGO) build --release --target-dir $(CARGO_DIR) -p fp-service -p ticker-pd -p hostile-client --target $(PD_TARGET_SOFT)
	$(CARGO) build --release --target-dir $(CARGO_DIR) -p neon-worker --target $(PD_TARGET_HARD)
	$(CARGO) build --release --target-dir $(CARGO_DIR) -p guest --target $(PD_TARGET_HARD) $(if $(GUEST_FEATURES),--features $(GUEST_FEATURES))
	cp $(CARGO_DIR)/$(VMM_TARGET)/release/$(VMM_CRATE) $(OUT)/vmm.elf
	cp $(CARGO_DIR)/$(PD_TARGET_SOFT)/release/fp-service $(OUT)/fp_service.elf
	cp $(CARGO_DIR)/$(PD_TARGET_SOFT)/release/ticker-pd $(OUT)/ticker.elf
	cp $(CARGO_DIR)/$(PD_TARGET_SOFT)/release/hostile-client $(OUT)/hostile_client.elf
	cp $(CARGO_DIR)/$(PD_TARGET_HARD)/release/neon-worker $(OUT)/neon_worker.elf
ifeq ($(GUEST),linux)
	$(MAKE) --no-print-directory linux-inputs
	$(MKBUNDLE) --system $(OUT)/system.xml --kernel $(LINUX_KERNEL) --initrd $(LINUX_INITRAMFS) \
	    $(if $(filter $(MICROKIT_BOARD),$(LINUX_XZ_BOARDS)),--compress xz) \
	    --bootargs "$(LINUX_BOOTARGS)" --dtb-out $(OUT)/guest.dtb -o $(OUT)/guest.img
else ifneq ($(GUEST_IMAGE),)
	$(MKBUNDLE) --system $(OUT)/system.xml --kernel "$(GUEST_IMAGE)" --entry "$(GUEST_ENTRY)" -o $(OUT)/guest.img
else
	cp $(CARGO_DIR)/$(PD_TARGET_HARD)/release/guest $(OUT)/guest.elf
	$(MKBUNDLE) --system $(OUT)/system.xml --kernel $(OUT)/guest.elf -o $(OUT)/guest.img
endif

$(OUT)/loader.img: sdk-check pds
	$(MICROKIT_SDK)/bin/microkit $(OUT)/system.xml --search-path $(OUT) --board $(MICROKIT_BOARD) \
	    --config $(MICROKIT_CONFIG) -o $@ -r $(OUT)/report.txt

run: $(OUT)/loader.img
	QEMU_SMP=$(QEMU_SMP) timeout --foreground $(RUN_TIMEOUT) scripts/qemu.sh $(OUT)/loader.img

include linux/linux.mk

# ---- tests ----
test: prereqs test-scripts test-host test-aarch64 fuzz-smoke test-elves test-boards system-test

# The SDK fetch: unpack-and-check from file:// tarballs, refusals, an unreachable URL (seconds);
# the verdict checks of the hostile client's lines and the save-back counts.
test-scripts:
	scripts/test-fetch-sdk.sh
	scripts/test-judge.sh
	scripts/bench-report.py --self-test

test-host:
	LAZYFP_SDF= $(CARGO) test --workspace --exclude microkit-rt --exclude vmm-pd --exclude fp-service --exclude neon-worker --exclude hostile-client

# The arch-independent core and the guest's pure logic, built and run as aarch64 code.
test-aarch64:
	LAZYFP_SDF= $(CARGO) test --target aarch64-unknown-linux-gnu -p lazyfp -p guest -p microkit-rt --lib

# Cross-build both policies; the lazy VMM and the soft-float PDs (fp-service, ticker, hostile
# client) must hold no FP/SIMD instruction (and the checker must see the NEON code of the worker and
# guest); every PD has the symbols Microkit patches.
test-elves: prereqs
	$(MAKE) --no-print-directory pds FP_POLICY=lazy
	$(MAKE) --no-print-directory pds FP_POLICY=eager
	scripts/check-no-fp.py $(BUILD_DIR)/$(MICROKIT_BOARD)/$(MICROKIT_CONFIG)/lazy/vmm.elf
	scripts/check-no-fp.py $(BUILD_DIR)/$(MICROKIT_BOARD)/$(MICROKIT_CONFIG)/lazy/fp_service.elf
	scripts/check-no-fp.py $(BUILD_DIR)/$(MICROKIT_BOARD)/$(MICROKIT_CONFIG)/lazy/ticker.elf
	scripts/check-no-fp.py $(BUILD_DIR)/$(MICROKIT_BOARD)/$(MICROKIT_CONFIG)/lazy/hostile_client.elf
	@for elf in neon_worker.elf guest.elf; do \
	    if scripts/check-no-fp.py $(BUILD_DIR)/$(MICROKIT_BOARD)/$(MICROKIT_CONFIG)/lazy/$$elf >/dev/null 2>&1; then \
	        echo "check-no-fp: saw no FP/SIMD in $$elf, which uses NEON: the checker is broken"; exit 1; fi; \
	    echo "check-no-fp: sees the NEON code of $$elf (checker self-test)"; done
	@for pd in vmm fp_service neon_worker ticker hostile_client; do \
	    extra=$$([ $$pd = vmm ] && echo guest_image_size); \
	    for p in lazy eager; do scripts/check-symbols.sh $(BUILD_DIR)/$(MICROKIT_BOARD)/$(MICROKIT_CONFIG)/$$p/$$pd.elf $$extra || exit 1; done; \
	done

# Full-system tests in QEMU on every config the SDK has of SYSTEM_CONFIGS, both policies: the
# test guest (exit checks, FP torture) and Linux running fpstress under NEON pressure; the Linux
# shell once. On the SMP configs (4 cores) the VM has SMP_VCPUS vCPUs (vCPU i on core i) and
# fp-service runs on core 1, so exits, save-backs and NEON sections cross cores (the hostile client
# with it, so that its calls to fp-service stay on one core). Each verdict line names board,
# config, policy and guest.
# The SMP configs run under -icount shift=0 on one host thread (README, Limits): SMP_VCPUS vCPUs
# there (one per core), SMP_TORTURE_ITERS torture iterations each.
SYSTEM_CONFIGS ?= debug release smp-debug smp-release
SMP_VCPUS ?= 4
SMP_TORTURE_ITERS ?= $(if $(filter 1,$(SMP_VCPUS)),$(LAZYFP_TORTURE_ITERS),5000)
# QEMU boots at a time (each uses one host core).
BOOT_JOBS ?= 2
# Also boot this i.MX8M board (QEMU's imx8mp-evk) when the SDK has it and scripts/qemu.sh --check
# passes for it; empty: only MICROKIT_BOARD.
IMX_SYSTEM_BOARD ?= imx8mp_evk
# The SMP configs also booted on IMX_SYSTEM_BOARD (four vCPUs, GICv3 SGIs; test guest and Linux).
IMX_SMP_CONFIGS ?= smp-debug smp-release
# Boards whose Linux tests are left out (none by default), and boards whose Linux kernel and
# initrd go into the bundle XZ-compressed: Microkit 2.3 puts the initial task, which carries the
# guest image, between the kernel and the loader at 0x41000000 there (about 13 MiB), and the
# Linux Image alone is 31 MiB (README, "Real i.MX8M boards").
LINUX_SKIP_BOARDS ?=
LINUX_SKIP_WHY := LINUX_SKIP_BOARDS names it
LINUX_XZ_BOARDS ?= imx8mp_evk imx8mm_evk
system-test:
	@if [ -z "$(MICROKIT_SDK)" ]; then \
	    echo "############ lazyfp: SYSTEM TEST SKIPPED: no Microkit SDK (MICROKIT_SDK unset, none in '$(LAZYFP_SYSTEM_SDK)' or $(LAZYFP_SDK_CACHE)): $$(cat "$(LAZYFP_SDK_CACHE)/no-sdk.txt" 2>/dev/null || echo 'make prereqs fetched none'): $(SDK_HINT) ############"; \
	else \
	    set -e; list=$(BUILD_DIR)/boots.txt; mkdir -p $(BUILD_DIR); : >$$list; \
	    boards="$(MICROKIT_BOARD)"; imx="$(IMX_SYSTEM_BOARD)"; \
	    if [ -n "$$imx" ] && [ "$$imx" != "$(MICROKIT_BOARD)" ]; then \
	        if [ ! -d "$(MICROKIT_SDK)/board/$$imx" ]; then \
	            echo "############ lazyfp: SYSTEM TEST SKIPPED for $$imx: the SDK has no board $$imx ############"; \
	        elif ! why=$$(MICROKIT_BOARD=$$imx scripts/qemu.sh --check 2>&1); then \
	            echo "############ lazyfp: SYSTEM TEST SKIPPED for $$imx: $$why ############"; \
	        else boards="$$boards $$imx"; fi; \
	    fi; \
	    for b in $$boards; do \
	    linux=yes; case " $(LINUX_SKIP_BOARDS) " in *" $$b "*) linux=; \
	        echo "############ lazyfp: LINUX SYSTEM TESTS SKIPPED for $$b: $(LINUX_SKIP_WHY) ############";; esac; \
	    for cfg in $(SYSTEM_CONFIGS); do \
	        case $$b-$$cfg in $(MICROKIT_BOARD)-*) ;; *-smp-*) \
	            case " $(IMX_SMP_CONFIGS) " in *" $$cfg "*) ;; \
	            *) echo "############ lazyfp: SYSTEM TEST SKIPPED for $$b $$cfg: IMX_SMP_CONFIGS=$(IMX_SMP_CONFIGS) leaves it out ############"; continue;; esac;; esac; \
	        if [ ! -d "$(MICROKIT_SDK)/board/$$b/$$cfg" ]; then \
	            echo "############ lazyfp: SYSTEM TEST SKIPPED for $$b $$cfg: the SDK has no such config ############"; continue; fi; \
	        if [ "$${cfg#smp-}" != "$$cfg" ] && ! why=$$(MICROKIT_BOARD=$$b QEMU_SMP=4 scripts/qemu.sh --check 2>&1); then \
	            echo "############ lazyfp: SYSTEM TEST SKIPPED for $$b $$cfg: $$why ############"; continue; fi; \
	        case $$cfg in \
	            smp-*) n=$(SMP_VCPUS); iters=$(SMP_TORTURE_ITERS); smp=4; set_="fp_service.cpu=1 hostile_client.cpu=1"; v=-smp$(SMP_VCPUS);; \
	            *) n=1; iters=$(LAZYFP_TORTURE_ITERS); smp=1; set_=; v=;; \
	        esac; \
	        for pol in lazy eager; do \
	            d=$(BUILD_DIR)/$$b/$$cfg; \
	            cd_=$(abspath $(BUILD_DIR))/cargo/$$b-$$cfg-$$pol$$v; \
	            $(MAKE) --no-print-directory loader.img MICROKIT_BOARD=$$b MICROKIT_CONFIG=$$cfg FP_POLICY=$$pol GUEST=test LAZYFP_TORTURE_ITERS=$$iters \
	                VCPUS=$$n SDF_SET="$$set_" VARIANT=$$pol$$v CARGO_DIR=$$cd_; \
	            echo "$$b $$cfg $$pol test|$$n|$$smp|system-test.sh|$$d/$$pol$$v/loader.img $$d/$$pol$$v/serial.log $$pol $(TEST_TIMEOUT) $$((iters * n))" >>$$list; \
	            [ -n "$$linux" ] || continue; \
	            $(MAKE) --no-print-directory loader.img MICROKIT_BOARD=$$b MICROKIT_CONFIG=$$cfg FP_POLICY=$$pol GUEST=linux \
	                VCPUS=$$n SDF_SET="$$set_" VARIANT=$$pol-linux$$v CARGO_DIR=$$cd_ \
	                LINUX_BOOTARGS="$(LINUX_BOOTARGS) lazyfp.test=fpstress:$(LINUX_TEST_SECONDS)"; \
	            echo "$$b $$cfg $$pol linux|$$n|$$smp|linux-test.sh|$$d/$$pol-linux$$v/loader.img $$d/$$pol-linux$$v/serial.log $$pol $(TEST_TIMEOUT)" >>$$list; \
	        done; \
	    done; \
	    done; \
	    case " $(LINUX_SKIP_BOARDS) " in *" $(MICROKIT_BOARD) "*) ;; *) \
	    $(MAKE) --no-print-directory loader.img MICROKIT_CONFIG=debug FP_POLICY=lazy GUEST=linux VARIANT=lazy-shell \
	        CARGO_DIR=$(abspath $(BUILD_DIR))/cargo/$(MICROKIT_BOARD)-debug-lazy; \
	    echo "$(MICROKIT_BOARD) debug lazy linux-shell|1|1|linux-shell-test.sh|$(BUILD_DIR)/$(MICROKIT_BOARD)/debug/lazy-shell/loader.img $(BUILD_DIR)/$(MICROKIT_BOARD)/debug/lazy-shell/shell.log $(TEST_TIMEOUT)" >>$$list;; \
	    esac; \
	    scripts/run-boots.sh $$list $(BOOT_JOBS); \
	    case " $(SYSTEM_CONFIGS) " in *" smp-"*) ;; *) echo "############ lazyfp: SMP SYSTEM TESTS NOT RUN: SYSTEM_CONFIGS=$(SYSTEM_CONFIGS) has no smp- config ############";; esac; \
	fi

# Soak (not in make test or CI): the FP torture until SOAK_EXITS exits (each vCPU runs until it
# has taken its share: LAZYFP_TORTURE_EXITS) and Linux fpstress for SOAK_MINUTES guest minutes,
# both policies, on release and, where the SDK has it, smp-release with a vCPU per core; the
# closing counters and each run's exits per wall second.
SOAK_MINUTES ?= 30
SOAK_EXITS ?= 10000000
SOAK_CONFIGS ?= release smp-release
soak: prereqs
	@if [ -z "$(MICROKIT_SDK)" ]; then echo "lazyfp: make soak needs a Microkit SDK: $(SDK_HINT)"; exit 1; fi
	@set -e; list=$(BUILD_DIR)/soak.txt; mkdir -p $(BUILD_DIR); : >$$list; \
	limit=$$(( $(SOAK_MINUTES) * 60 * 3 + 1800 )); \
	for cfg in $(SOAK_CONFIGS); do \
	    [ -d "$(MICROKIT_SDK)/board/$(MICROKIT_BOARD)/$$cfg" ] || { echo "############ lazyfp: SOAK SKIPPED for $$cfg: the SDK has no such config ############"; continue; }; \
	    case $$cfg in smp-*) n=$(SMP_VCPUS); smp=4; set_="fp_service.cpu=1 hostile_client.cpu=1";; *) n=1; smp=1; set_=;; esac; \
	    share=$$(( ($(SOAK_EXITS) + n - 1) / n )); \
	    for pol in lazy eager; do \
	        d=$(BUILD_DIR)/$(MICROKIT_BOARD)/$$cfg; cd_=$(abspath $(BUILD_DIR))/cargo/$(MICROKIT_BOARD)-$$cfg-$$pol-soak; \
	        $(MAKE) --no-print-directory loader.img MICROKIT_CONFIG=$$cfg FP_POLICY=$$pol GUEST=test LAZYFP_TORTURE_ITERS=1000 LAZYFP_TORTURE_EXITS=$$share \
	            VCPUS=$$n SDF_SET="$$set_" VARIANT=$$pol-soak CARGO_DIR=$$cd_ >/dev/null; \
	        echo "$(MICROKIT_BOARD) $$cfg $$pol test-soak|$$n|$$smp|system-test.sh|$$d/$$pol-soak/loader.img $$d/$$pol-soak/serial.log $$pol $$limit $(SOAK_EXITS)" >>$$list; \
	        $(MAKE) --no-print-directory loader.img MICROKIT_CONFIG=$$cfg FP_POLICY=$$pol GUEST=linux VCPUS=$$n SDF_SET="$$set_" \
	            VARIANT=$$pol-linux-soak CARGO_DIR=$$cd_ LINUX_BOOTARGS="$(LINUX_BOOTARGS) lazyfp.test=fpstress:$$(( $(SOAK_MINUTES) * 60 ))" >/dev/null; \
	        echo "$(MICROKIT_BOARD) $$cfg $$pol linux-soak|$$n|$$smp|linux-test.sh|$$d/$$pol-linux-soak/loader.img $$d/$$pol-linux-soak/serial.log $$pol $$limit" >>$$list; \
	    done; \
	done; \
	scripts/run-boots.sh $$list $(BOOT_JOBS) | tee $(BUILD_DIR)/soak.log; \
	scripts/soak-rates.sh $(BUILD_DIR)/soak.log

# The i.MX8 boards: loader.img for debug and release (the test guest), and their derived system
# descriptions carry the board's devices (i.MX UART2, GICv3: no GICv2 CPU interface map).
IMX_BOARDS ?= imx8mm_evk imx8mp_evk
test-boards:
	@if [ -z "$(MICROKIT_SDK)" ]; then echo "############ lazyfp: BOARD BUILDS SKIPPED: no Microkit SDK ############"; exit 0; fi; \
	set -e; for b in $(IMX_BOARDS); do \
	    if [ ! -d "$(MICROKIT_SDK)/board/$$b" ]; then echo "############ lazyfp: BOARD BUILD SKIPPED: the SDK has no board $$b ############"; continue; fi; \
	    for cfg in debug release; do \
	        $(MAKE) --no-print-directory loader.img MICROKIT_BOARD=$$b MICROKIT_CONFIG=$$cfg FP_POLICY=lazy GUEST=test >/dev/null; \
	        sdf=$(BUILD_DIR)/$$b/$$cfg/lazy/system.xml; \
	        grep -q 'name="uart" size="0x1000" phys_addr="0x30890000"' $$sdf || { echo "board test FAILED ($$b $$cfg): no i.MX UART2 in $$sdf"; exit 1; }; \
	        ! grep -q gic_vcpu $$sdf || { echo "board test FAILED ($$b $$cfg): a GICv2 CPU interface map on a GICv3 board"; exit 1; }; \
	        ! grep -q 'irq="30"' $$sdf || { echo "board test FAILED ($$b $$cfg): the physical timer is not exported here"; exit 1; }; \
	        grep -q 'name="wake_timer" size="0x1000" phys_addr="0x302d0000"' $$sdf || { echo "board test FAILED ($$b $$cfg): no GPT1 wake-up timer in $$sdf"; exit 1; }; \
	        scripts/check-symbols.sh $(BUILD_DIR)/$$b/$$cfg/lazy/vmm.elf guest_image_size >/dev/null; \
	        echo "board test passed ($$b $$cfg lazy test): loader.img $$(stat -c %s $(BUILD_DIR)/$$b/$$cfg/lazy/loader.img) bytes, UART2, GPT1 and GICv3 in its system description"; \
	    done; \
	    [ "$$b" != "$(IMX_SYSTEM_BOARD)" ] || continue; \
	    $(MAKE) --no-print-directory loader.img MICROKIT_BOARD=$$b MICROKIT_CONFIG=release FP_POLICY=lazy GUEST=linux VARIANT=lazy-linux >$(BUILD_DIR)/$$b-linux.log 2>&1 \
	        || { tail -n 5 $(BUILD_DIR)/$$b-linux.log; echo "board test FAILED ($$b release lazy linux): the Linux system does not build"; exit 1; }; \
	    echo "board test passed ($$b release lazy linux): loader.img $$(stat -c %s $(BUILD_DIR)/$$b/release/lazy-linux/loader.img) bytes; $$(grep -o 'INITIAL TASK: memory size = [^ ]* [A-Za-z]*' $(BUILD_DIR)/$$b-linux.log)"; \
	done; \
	if $(MAKE) --no-print-directory sdf MICROKIT_BOARD=no_such_board >$(BUILD_DIR)/bad-board.log 2>&1; then \
	    echo "board test FAILED: an unknown board built"; exit 1; fi; \
	grep -q 'board "no_such_board" is not described by lazyfp' $(BUILD_DIR)/bad-board.log && echo "board test passed: an unknown board stops the build naming the supported ones"

# The SMP configs: one vCPU (its core's NEON worker, fp-service on core 1), and with a vCPU on
# every core.
test-smp:
	$(MAKE) --no-print-directory system-test SYSTEM_CONFIGS="smp-debug smp-release" IMX_SYSTEM_BOARD=
test-smp1:
	$(MAKE) --no-print-directory system-test SYSTEM_CONFIGS="smp-debug smp-release" SMP_VCPUS=1 IMX_SYSTEM_BOARD=

# ---- fuzzing (cargo-fuzz / libFuzzer on the host; README.md, "Fuzzing") ----
# Every target for FUZZ_SECONDS each (or FUZZ_RUNS executions, if set, within FUZZ_SECONDS), one
# at a time (FUZZ_TARGETS: a subset); fuzz-smoke runs each
# for a few seconds and fails on a crash. Corpora and crash inputs go to $(BUILD_DIR)/fuzz.
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 3
FUZZ_RUNS ?=
FUZZ_TARGETS ?=
fuzz: prereqs
	LAZYFP_SDF= FUZZ_RUNS=$(FUZZ_RUNS) nice -n 10 fuzz/run.sh $(FUZZ_SECONDS) $(BUILD_DIR)/fuzz $(FUZZ_TARGETS)

fuzz-smoke: prereqs
	LAZYFP_SDF= nice -n 10 fuzz/run.sh $(FUZZ_SMOKE_SECONDS) $(BUILD_DIR)/fuzz $(FUZZ_TARGETS)

# ---- benchmarks (needs an SDK) ----
# Exit round trips timed by the benchmark guest under QEMU -icount shift=0 (guest ns = emulated
# instructions), for lazy, eager and the floor handler, on release and debug.
BENCH_DIR := $(BUILD_DIR)/bench
# Linux idle runs (guest seconds asleep at the shell) whose difference gives idle_exits_per_s.
BENCH_IDLE_SECONDS ?= 0 10
# The hostile client's steps would land in the figures.
bench: LAZYFP_HOSTILE = 0
bench: prereqs
	@if [ -z "$(MICROKIT_SDK)" ]; then echo "lazyfp: make bench needs a Microkit SDK: $(SDK_HINT)"; exit 1; fi
	@mkdir -p $(BENCH_DIR)
	@set -e; for cfg in release debug; do for v in lazy eager floor; do \
	    pol=$$([ $$v = eager ] && echo eager || echo lazy); crate=$$([ $$v = floor ] && echo floor-pd || echo vmm-pd); \
	    LAZYFP_WFI_SPIN=1 $(MAKE) --no-print-directory loader.img MICROKIT_CONFIG=$$cfg FP_POLICY=$$pol VMM_CRATE=$$crate \
	        VARIANT=bench-$$v GUEST_FEATURES=bench LAZYFP_TICKER=0 >/dev/null; \
	    scripts/bench-run.sh $(BUILD_DIR)/$(MICROKIT_BOARD)/$$cfg/bench-$$v/loader.img $(BENCH_DIR)/$$cfg-$$v.log $(TEST_TIMEOUT); \
	done; \
	$(MAKE) --no-print-directory loader.img MICROKIT_CONFIG=$$cfg FP_POLICY=lazy VARIANT=bench-wake \
	    GUEST_FEATURES=bench LAZYFP_TICKER=0 LAZYFP_NEON_EVERY=0 >/dev/null; \
	scripts/bench-run.sh $(BUILD_DIR)/$(MICROKIT_BOARD)/$$cfg/bench-wake/loader.img $(BENCH_DIR)/$$cfg-wake.log \
	    $(TEST_TIMEOUT) "bench-wake:"; \
	for v in lazy eager; do \
	    LAZYFP_WFI_SPIN=1 $(MAKE) --no-print-directory loader.img MICROKIT_CONFIG=$$cfg FP_POLICY=$$v VARIANT=bench-latency-$$v \
	        GUEST_FEATURES=bench LAZYFP_TICKER=1 >/dev/null; \
	    scripts/bench-run.sh $(BUILD_DIR)/$(MICROKIT_BOARD)/$$cfg/bench-latency-$$v/loader.img \
	        $(BENCH_DIR)/$$cfg-$$v-latency.log $(TEST_TIMEOUT) "lazyfp: notify-latency"; \
	done; done
	@set -e; for cfg in release debug; do \
	    $(MAKE) --no-print-directory loader.img MICROKIT_CONFIG=$$cfg FP_POLICY=lazy GUEST=linux VARIANT=bench-linux \
	        LINUX_BOOTARGS="$(LINUX_BOOTARGS) lazyfp.test=exitbench" >/dev/null; \
	    scripts/bench-run.sh $(BUILD_DIR)/$(MICROKIT_BOARD)/$$cfg/bench-linux/loader.img $(BENCH_DIR)/$$cfg-linux.log \
	        $(TEST_TIMEOUT) "lazyfp: exitbench"; \
	done
	@set -e; if [ -d "$(MICROKIT_SDK)/board/$(MICROKIT_BOARD)/smp-release" ]; then for x in same cross; do \
	    LAZYFP_WFI_SPIN=1 $(MAKE) --no-print-directory loader.img MICROKIT_CONFIG=smp-release FP_POLICY=lazy VARIANT=bench-$$x \
	        GUEST_FEATURES=bench LAZYFP_TICKER=0 VCPUS=1 SDF_SET="$$([ $$x = cross ] && echo vmm.cpu=1)" >/dev/null; \
	    QEMU_SMP=4 scripts/bench-run.sh $(BUILD_DIR)/$(MICROKIT_BOARD)/smp-release/bench-$$x/loader.img \
	        $(BENCH_DIR)/smp-release-$$x.log $(TEST_TIMEOUT); \
	done; else echo "############ lazyfp: CROSS-CORE BENCH SKIPPED: the SDK has no smp-release ############"; fi
	@set -e; for s in $(BENCH_IDLE_SECONDS); do \
	    $(MAKE) --no-print-directory loader.img MICROKIT_CONFIG=debug FP_POLICY=lazy GUEST=linux VARIANT=bench-idle$$s \
	        CARGO_DIR=$(abspath $(BUILD_DIR))/cargo/debug-bench-linux LINUX_BOOTARGS="$(LINUX_BOOTARGS) lazyfp.test=idle:$$s" >/dev/null; \
	    scripts/bench-run.sh $(BUILD_DIR)/$(MICROKIT_BOARD)/debug/bench-idle$$s/loader.img $(BENCH_DIR)/debug-idle$$s.log \
	        $(TEST_TIMEOUT) "lazyfp: vcpu0 (core 0): exits="; \
	done
	scripts/bench-report.py $(BENCH_DIR) $(BENCH_DIR)/release-lazy.log $(BENCH_DIR)/release-eager.log \
	    $(BENCH_DIR)/release-floor.log $(BENCH_DIR)/debug-lazy.log $(BENCH_DIR)/debug-eager.log $(BENCH_DIR)/debug-floor.log \
	    $(BENCH_DIR)/release-linux.log $(BENCH_DIR)/debug-linux.log \
	    $(BENCH_DIR)/release-lazy-latency.log $(BENCH_DIR)/release-eager-latency.log \
	    $(BENCH_DIR)/debug-lazy-latency.log $(BENCH_DIR)/debug-eager-latency.log \
	    $(BENCH_DIR)/release-wake.log $(BENCH_DIR)/debug-wake.log \
	    $$(ls $(BENCH_DIR)/smp-release-same.log $(BENCH_DIR)/smp-release-cross.log 2>/dev/null) \
	    $(foreach s,$(BENCH_IDLE_SECONDS),$(BENCH_DIR)/debug-idle$(s).log)

clean:
	rm -rf $(BUILD_DIR)
