# lazyfp's Linux guest: the kernel Image, the initramfs with the in-guest tools, and the DTB.
# Include it from the main Makefile (include linux/linux.mk) or use it alone
# (make -f linux/linux.mk linux-inputs). Every output is under $(BUILD_DIR)/linux/.
#
#   make linux-inputs       $(LINUX_KERNEL) and $(LINUX_INITRAMFS)
#   make linux-tools        fpstress and exitbench, static aarch64 binaries, in $(LINUX_OUT)/tools/
#   make linux-tools-test   their unit tests and --self-test under qemu-aarch64 (user mode)
#   make linux-dtb          $(LINUX_DTB) for $(LINUX_SDF), with $(LINUX_BOOTARGS) and, when
#                           LINUX_INITRD_ADDR is set, the initrd at that guest-physical address
#
# Inputs (set them on the command line, or before the include: prerequisites are read then):
#   LINUX_IMAGE  any arm64 Image; default: Debian's linux-image-*-arm64 (linux/get-kernel.sh)
#   INITRD       any initrd; default: lazyfp's initramfs (linux/mkinitramfs.sh)

LINUX_MK_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
# Alone (make -f linux/linux.mk) this is the only makefile read so far.
LINUX_MK_ALONE := $(if $(filter 1,$(words $(MAKEFILE_LIST))),yes)
LINUX_MK_SAVED_GOAL := $(.DEFAULT_GOAL)

BUILD_DIR ?= build
CARGO ?= cargo
QEMU_USER ?= qemu-aarch64

LINUX_IMAGE ?=
INITRD ?=
LINUX_BOOTARGS ?= console=hvc0 iomem=relaxed
# The system description the DTB describes, and the initrd's guest-physical load address
# (empty: no initrd in the DTB).
LINUX_SDF ?= system.xml
LINUX_INITRD_ADDR ?=

LINUX_OUT := $(BUILD_DIR)/linux
# What the VMM loads: the kernel Image, the initrd, the DTB.
LINUX_KERNEL := $(LINUX_OUT)/Image
LINUX_INITRAMFS := $(LINUX_OUT)/initrd.img
LINUX_DTB := $(LINUX_OUT)/guest.dtb
LINUX_TOOLS := $(LINUX_OUT)/tools/fpstress $(LINUX_OUT)/tools/exitbench

LINUX_TOOLS_TARGET := aarch64-unknown-linux-gnu
LINUX_CARGO_DIR := $(abspath $(BUILD_DIR))/cargo/linux
# copy-if-changed SRC DST: keeps DST's timestamp when its content would not change.
LINUX_CP = { cmp -s $(1) $(2) || cp $(1) $(2); }

.PHONY: linux-inputs linux-tools linux-tools-test linux-dtb linux-always
linux-inputs: $(LINUX_KERNEL) $(LINUX_INITRAMFS)

# The scripts are idempotent and cheap when nothing changed, so these always run them; the
# outputs change only when their content does.
linux-always:

$(LINUX_KERNEL): linux-always
	@mkdir -p $(LINUX_OUT)
	@if [ -n "$(LINUX_IMAGE)" ]; then \
	    $(LINUX_MK_DIR)/check-image.sh "$(LINUX_IMAGE)" && $(call LINUX_CP,"$(LINUX_IMAGE)",$@); \
	else \
	    $(LINUX_MK_DIR)/get-kernel.sh $(LINUX_OUT)/debian && \
	    $(LINUX_MK_DIR)/check-image.sh $(LINUX_OUT)/debian/Image && \
	    $(call LINUX_CP,$(LINUX_OUT)/debian/Image,$@); \
	fi

$(LINUX_INITRAMFS): linux-always $(if $(strip $(INITRD)),,linux-tools)
	@mkdir -p $(LINUX_OUT)
	@if [ -n "$(INITRD)" ]; then \
	    if [ ! -f "$(INITRD)" ]; then echo "linux.mk: INITRD=$(INITRD): no such file" >&2; exit 1; fi; \
	    if [ ! -s "$(INITRD)" ]; then echo "linux.mk: INITRD=$(INITRD): empty file" >&2; exit 1; fi; \
	    $(call LINUX_CP,"$(INITRD)",$@); \
	else \
	    $(LINUX_MK_DIR)/mkinitramfs.sh $(LINUX_OUT)/initramfs $(LINUX_TOOLS) && \
	    $(call LINUX_CP,$(LINUX_OUT)/initramfs/initramfs.cpio,$@); \
	fi

# Static binaries: +crt-static for this build only (its own target dir), checked afterwards.
linux-tools:
	CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static" \
	CARGO_PROFILE_RELEASE_STRIP=symbols \
	    $(CARGO) build --release --target $(LINUX_TOOLS_TARGET) --target-dir $(LINUX_CARGO_DIR) \
	    --manifest-path $(LINUX_MK_DIR)/tools/Cargo.toml
	@mkdir -p $(LINUX_OUT)/tools
	@for t in $(notdir $(LINUX_TOOLS)); do \
	    bin=$(LINUX_CARGO_DIR)/$(LINUX_TOOLS_TARGET)/release/$$t; \
	    if readelf -lW $$bin | grep -q INTERP; then \
	        echo "linux.mk: $$bin is dynamically linked (is RUSTFLAGS set? it overrides the crt-static flag)" >&2; exit 1; \
	    fi; \
	    $(call LINUX_CP,$$bin,$(LINUX_OUT)/tools/$$t); \
	done

# The library's tests as aarch64 code (the asm included), then the binaries' self-tests.
linux-tools-test: linux-tools
	$(CARGO) test --target $(LINUX_TOOLS_TARGET) --manifest-path $(LINUX_MK_DIR)/tools/Cargo.toml --lib
	$(QEMU_USER) $(LINUX_OUT)/tools/fpstress --self-test
	$(QEMU_USER) $(LINUX_OUT)/tools/exitbench --self-test

linux-dtb: $(LINUX_DTB)
$(LINUX_DTB): linux-always $(if $(strip $(LINUX_INITRD_ADDR)),$(LINUX_INITRAMFS))
	@mkdir -p $(LINUX_OUT)
	$(CARGO) run -q --release --target-dir $(LINUX_CARGO_DIR) \
	    --manifest-path $(LINUX_MK_DIR)/../build-support/Cargo.toml --bin mkdtb -- \
	    $(LINUX_SDF) --bootargs '$(LINUX_BOOTARGS)' \
	    $(if $(strip $(LINUX_INITRD_ADDR)),--initrd-start $(LINUX_INITRD_ADDR) --initrd-size $$(stat -c %s $(LINUX_INITRAMFS))) \
	    -o $@.tmp
	@$(call LINUX_CP,$@.tmp,$@); rm -f $@.tmp

# Included, the including makefile keeps its default goal; alone, it is linux-inputs.
.DEFAULT_GOAL := $(if $(LINUX_MK_ALONE),linux-inputs,$(LINUX_MK_SAVED_GOAL))
