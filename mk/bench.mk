# make bench: dump/restore speed and cr's memory against a tmpfs copy
# (scripts/bench.sh; not part of make test).
.PHONY: bench
bench: deps
	@$(MAKE) --no-print-directory cr workloads
	@BUILD=$(BUILD) bash scripts/bench.sh
