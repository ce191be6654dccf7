# make kernel-test — build a kernel with kernel-patches/ (the clone2 syscall),
# boot it under qemu and test clone2 and cr's clone2 backend inside it. Needs
# root (it installs Debian packages); caches the kernel source and build in
# ${CR_KERNEL_CACHE:-/var/tmp/cr-kernel}. See kernel-patches/README.

.PHONY: kernel-test
kernel-test:
	@CR_PKGS='$(PKGS)' bash scripts/kernel-test.sh
