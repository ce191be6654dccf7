# cr — checkpoint/restore for Linux process trees.
#
#   make          build build/cr (installs missing Debian packages first, as root)
#   make demo     dump and restore a counting process, same pid
#   make demo-migrate  move a TCP service between two hosts (namespaces)
#   make test     unit tests (cmocka, ASan+UBSan) and the integration suite (root)
#
# Targets that need the Debian packages go through `deps` and then re-enter
# make, so that pkg-config is asked only once the packages are there.

BUILD   ?= build
CC      ?= gcc
CFLAGS  ?= -O2 -g
PKGS    := libprotobuf-c zlib libnl-3.0 libnl-route-3.0 libsodium libxxhash
V       ?= 0

.PHONY: all deps cr demo demo-migrate test unit integration clean
.DEFAULT_GOAL := all

all: deps
	@$(MAKE) --no-print-directory cr

demo: deps
	@$(MAKE) --no-print-directory cr workloads
	@bash scripts/demo.sh

demo-migrate: deps
	@$(MAKE) --no-print-directory cr workloads
	@bash scripts/demo-migrate.sh

test: deps
	@$(MAKE) --no-print-directory cr workloads unit-bins
	@BUILD=$(BUILD) bash test/run-all.sh

unit: deps
	@$(MAKE) --no-print-directory unit-bins
	@BUILD=$(BUILD) bash test/run-all.sh --unit-only

integration: deps
	@$(MAKE) --no-print-directory cr workloads
	@BUILD=$(BUILD) bash test/run-all.sh --integration-only

deps:
	@bash scripts/install-deps.sh

clean:
	rm -rf $(BUILD)

# ---- everything below runs with the packages present ------------------------

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN       := -Wall -Wextra -Werror
BASE_FLAGS := -std=gnu11 -D_GNU_SOURCE -pthread $(WARN) -I$(BUILD)/proto -Icriu-lite $(PKG_CFLAGS)
SAN_FLAGS  := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
# Every symbol bound at start: each restored process runs cr's code in a
# fresh copy of its address space, where a lazy binding costs page faults.
CR_LDFLAGS := -Wl,-z,now
# cr carries its libraries (static-pie): every restored process starts as a
# copy of cr, and each shared library's mappings cost page tables in every
# copy (a tenth of restoring a tree of 100 on this VM).  The only linker
# warnings are glibc's notes on libnl's protocol-name helpers, which cr never
# calls.  `CR_LINK=` with CC="gcc -static" gives a plain static build.
CR_LINK    ?= -static-pie -Wl,--no-warnings
CR_LIBS    ?= $(shell pkg-config --static --libs $(PKGS) 2>/dev/null)

PROTOS      := $(wildcard proto/*.proto)
PROTO_C     := $(patsubst proto/%.proto,$(BUILD)/proto/%.pb-c.c,$(PROTOS))
PROTO_H     := $(PROTO_C:.c=.h)
ENGINE_SRC  := $(filter-out criu-lite/cmd/main.c,$(wildcard criu-lite/*/*.c))
ENGINE_OBJ  := $(patsubst criu-lite/%.c,$(BUILD)/obj/%.o,$(ENGINE_SRC)) \
               $(patsubst proto/%.proto,$(BUILD)/obj/proto-%.o,$(PROTOS))
SAN_OBJ     := $(patsubst $(BUILD)/obj/%,$(BUILD)/san/%,$(ENGINE_OBJ))

UNIT_SRC    := $(wildcard test/unit/test_*.c)
UNIT_BINS   := $(patsubst test/unit/%.c,$(BUILD)/test/unit/%,$(UNIT_SRC))

WL_LIB_SRC  := $(wildcard test/workloads/lib/*.c)
WL_LIB_OBJ  := $(patsubst test/workloads/lib/%.c,$(BUILD)/test/wl-lib/%.o,$(WL_LIB_SRC))
WL_SRC      := $(wildcard test/workloads/*.c)
WL_BINS     := $(patsubst test/workloads/%.c,$(BUILD)/test/workloads/%,$(WL_SRC))

.PHONY: workloads unit-bins
cr: $(BUILD)/cr
workloads: $(WL_BINS) $(BUILD)/test/mutate_field
unit-bins: $(UNIT_BINS)

$(BUILD)/proto/%.pb-c.c $(BUILD)/proto/%.pb-c.h: proto/%.proto
	@mkdir -p $(BUILD)/proto
	protoc-c --proto_path=proto --c_out=$(BUILD)/proto $<

# Every engine object may include any generated header.
$(BUILD)/obj/%.o: criu-lite/%.c $(PROTO_H) | $(BUILD)/obj
	@mkdir -p $(dir $@)
	$(CC) $(BASE_FLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/proto-%.o: $(BUILD)/proto/%.pb-c.c $(PROTO_H) | $(BUILD)/obj
	$(CC) $(BASE_FLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/san/%.o: criu-lite/%.c $(PROTO_H) | $(BUILD)/san
	@mkdir -p $(dir $@)
	$(CC) $(BASE_FLAGS) -O1 -g $(SAN_FLAGS) -MMD -MP -c $< -o $@

$(BUILD)/san/proto-%.o: $(BUILD)/proto/%.pb-c.c $(PROTO_H) | $(BUILD)/san
	$(CC) $(BASE_FLAGS) -O1 -g $(SAN_FLAGS) -c $< -o $@

$(BUILD)/cr: $(BUILD)/obj/cmd/main.o $(ENGINE_OBJ)
	$(CC) $(CFLAGS) $(CR_LDFLAGS) $(CR_LINK) -pthread $^ $(CR_LIBS) -o $@

$(BUILD)/test/unit/%: test/unit/%.c $(wildcard test/unit/*.h) $(SAN_OBJ) $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_FLAGS) -O1 -g $(SAN_FLAGS) -Itest/unit $< $(SAN_OBJ) $(PKG_LIBS) -lcmocka -o $@

# t_fields' tool: one field of one image changed, the image re-encoded.
$(BUILD)/test/mutate_field: test/fuzz/mutate_field.c $(ENGINE_OBJ) $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_FLAGS) $(CFLAGS) $< $(ENGINE_OBJ) $(PKG_LIBS) -pthread -o $@

$(BUILD)/test/wl-lib/%.o: test/workloads/lib/%.c $(wildcard test/workloads/lib/*.h)
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -D_GNU_SOURCE $(WARN) -O1 -g -Itest/workloads/lib -c $< -o $@

$(BUILD)/test/workloads/%: test/workloads/%.c $(WL_LIB_OBJ) $(wildcard test/workloads/lib/*.h)
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -D_GNU_SOURCE $(WARN) -O1 -g -Itest/workloads/lib $< $(WL_LIB_OBJ) -o $@

$(BUILD)/obj $(BUILD)/san:
	@mkdir -p $@

# More targets (fuzz, install, kernel-test, bench) live in mk/*.mk.
-include $(wildcard mk/*.mk)

# Keep the sanitizer builds of generated code between runs.
.SECONDARY:

-include $(wildcard $(BUILD)/obj/*/*.d $(BUILD)/san/*/*.d)
