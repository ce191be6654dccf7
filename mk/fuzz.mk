# Fuzzing the image reader (test/fuzz/): libFuzzer with clang, ASan, UBSan.
#
#   make fuzz                     FUZZ_SECONDS (default 60) of fuzzing
#   make fuzz FUZZ_DUMP="d1 d2"   also seed from the small images of real dumps
#
# The seed corpus is generated with the image API (gen_seeds); the working
# corpus lives in $(BUILD)/fuzz/corpus and grows from run to run.  Crashing
# inputs land in test/fuzz/crashers/, where unit/test_fuzz_regressions
# replays them through the same entry point in every `make test`.

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_MAX_LEN ?= 65536
FUZZ_DUMP    ?=
FUZZ_OUT     := $(BUILD)/fuzz
FUZZ_FLAGS   := -std=gnu11 -D_GNU_SOURCE $(WARN) -I$(BUILD)/proto -Icriu-lite -Itest/fuzz $(PKG_CFLAGS) \
                -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_OBJ     := $(patsubst criu-lite/%.c,$(FUZZ_OUT)/obj/%.o,$(ENGINE_SRC)) \
                $(patsubst proto/%.proto,$(FUZZ_OUT)/obj/proto-%.o,$(PROTOS))
CRASHERS     := test/fuzz/crashers

.PHONY: fuzz fuzz-bins fuzz-run

fuzz: deps
	@command -v $(FUZZ_CC) >/dev/null || { echo "make fuzz needs $(FUZZ_CC) with libFuzzer" \
		"(Debian: apt-get install clang libclang-rt-dev)" >&2; exit 1; }
	@$(MAKE) --no-print-directory fuzz-run

fuzz-bins: $(FUZZ_OUT)/fuzz_image $(FUZZ_OUT)/gen_seeds

fuzz-run: fuzz-bins
	@mkdir -p $(FUZZ_OUT)/corpus $(CRASHERS)
	$(FUZZ_OUT)/gen_seeds $(FUZZ_OUT)/seeds $(FUZZ_DUMP)
	$(FUZZ_OUT)/fuzz_image -max_total_time=$(FUZZ_SECONDS) -max_len=$(FUZZ_MAX_LEN) -timeout=20 \
		-rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=$(CRASHERS)/ \
		$(FUZZ_OUT)/corpus $(FUZZ_OUT)/seeds

# The whole engine (the linker keeps what the reader needs), instrumented
# for coverage: no list of files to fall out of date.
$(FUZZ_OUT)/obj/%.o: criu-lite/%.c $(PROTO_H)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_OUT)/obj/proto-%.o: $(BUILD)/proto/%.pb-c.c $(PROTO_H)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_OUT)/fuzz_image: test/fuzz/fuzz_image.c test/fuzz/fuzz_image.h $(FUZZ_OBJ)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer test/fuzz/fuzz_image.c $(FUZZ_OBJ) $(PKG_LIBS) -o $@

$(FUZZ_OUT)/gen_seeds: test/fuzz/gen_seeds.c $(SAN_OBJ) $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_FLAGS) -O1 -g $(SAN_FLAGS) $< $(SAN_OBJ) $(PKG_LIBS) -o $@

# The regression test runs the fuzz target's own code (built with gcc and
# the sanitizers like every unit test) over every input kept in $(CRASHERS).
$(BUILD)/test/unit/test_fuzz_regressions: test/unit/test_fuzz_regressions.c test/fuzz/fuzz_image.c \
		test/fuzz/fuzz_image.h $(SAN_OBJ) $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_FLAGS) -O1 -g $(SAN_FLAGS) -Itest/unit -Itest/fuzz -DCR_CRASHERS_DIR='"$(CURDIR)/$(CRASHERS)"' \
		$< test/fuzz/fuzz_image.c $(SAN_OBJ) $(PKG_LIBS) -lcmocka -o $@
