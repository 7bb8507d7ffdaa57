# qedfuse — build, test, install.
#   make          build and leave the launcher at out/qedfuse
#   make test     install missing test dependencies, build, run every test
#   make fuzz     fuzz the QED engine with many more cases, from a random seed
#   make torture  crash torture (fault injection, SIGKILL of live mounts), many rounds, random seed
#   make demo     create a demo image, mount it, show it with standard tools, unmount
#   make install  install to $(PREFIX) (default /usr/local)
#   make bench    raw file vs qemu-storage-daemon FUSE export vs qedfuse (tests/bench/README.md);
#                 make bench ARGS=--quick for the short version (not part of make test)

SHELL       := /bin/bash
PREFIX      ?= /usr/local
DOTNET      ?= dotnet
CONFIG      ?= Release
OUT         := out
export DOTNET_CLI_TELEMETRY_OPTOUT := 1
export DOTNET_NOLOGO := 1
export DOTNET_SKIP_FIRST_TIME_EXPERIENCE := 1

# Debian packages the tests drive as real components (QEMU's tools are the oracle).
TEST_DEPS_CMDS := qemu-img qemu-io qemu-storage-daemon fusermount3 mkfs.ext4 e2fsck losetup gcc fio sfdisk
TEST_DEPS_PKGS := qemu-utils qemu-system-common fuse3 libfuse3-3 libfuse3-dev e2fsprogs mount gcc libc6-dev fio fdisk

.PHONY: all build test deps demo install uninstall clean bench torture fuzz

all: build

build:
	$(DOTNET) publish src/QedFuse.Cli/QedFuse.Cli.csproj -c $(CONFIG) -o $(OUT)/bin --nologo -v quiet
	@printf '#!/bin/sh\nexec "$$(dirname "$$(readlink -f "$$0")")/bin/qedfuse" "$$@"\n' > $(OUT)/qedfuse
	@chmod +x $(OUT)/qedfuse
	@echo "built $(OUT)/qedfuse"

deps:
	@missing=""; \
	for c in $(TEST_DEPS_CMDS); do command -v $$c >/dev/null 2>&1 || PATH="$$PATH:/usr/sbin:/sbin" command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	[ -e /usr/include/fuse3/fuse_lowlevel.h ] || missing="$$missing fuse3-headers"; \
	ls /usr/lib/*/libfuse3.so.3 >/dev/null 2>&1 || missing="$$missing libfuse3"; \
	if [ -n "$$missing" ]; then \
	  echo "installing test dependencies (missing:$$missing)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(TEST_DEPS_PKGS) >/dev/null; \
	fi
	@[ -e /dev/fuse ] || { echo "make test: /dev/fuse is missing (load the fuse module)"; exit 1; }

test: deps build
	$(DOTNET) build QedFuse.sln -c $(CONFIG) --nologo -v quiet
	@set -o pipefail; QEDFUSE=$(CURDIR)/$(OUT)/qedfuse $(DOTNET) test QedFuse.sln -c $(CONFIG) --no-build --nologo \
	  --logger "console;verbosity=normal" 2>&1 | tee $(OUT)/test.log; rc=$$?; \
	  awk '/^ +Passed: +[0-9]+$$/ { p += $$2 } /^ +Failed: +[0-9]+$$/ { f += $$2 } /^ +Skipped: +[0-9]+$$/ { s += $$2 } \
	    END { printf "\ntests: %d passed, %d failed, %d skipped\n", p, f, s; if (p + f == 0) exit 1 }' $(OUT)/test.log \
	    && exit $$rc

bench:
	@tests/bench/deps.sh
	$(MAKE) build
	python3 tests/bench/bench.py --qedfuse $(CURDIR)/$(OUT)/qedfuse $(ARGS)

# Fuzzing: QEDFUSE_FUZZ_SEED repeats a run, QEDFUSE_FUZZ_REPLAY=<case seed> reruns one failing
# case, QEDFUSE_FUZZ_CASES / QEDFUSE_FUZZ_SECONDS bound the run (make test runs a small fixed one).
QEDFUSE_FUZZ_CASES   ?= 1000000
QEDFUSE_FUZZ_SECONDS ?= 600
fuzz:
	@seed=$${QEDFUSE_FUZZ_SEED:-$$(( $$(od -An -N4 -tu4 /dev/urandom) % 2147483647 ))}; \
	echo "fuzz: seed $$seed (repeat with: make fuzz QEDFUSE_FUZZ_SEED=$$seed)"; \
	set -o pipefail; QEDFUSE_FUZZ_SEED=$$seed QEDFUSE_FUZZ_CASES=$(QEDFUSE_FUZZ_CASES) QEDFUSE_FUZZ_SECONDS=$(QEDFUSE_FUZZ_SECONDS) \
	  $(DOTNET) test tests/QedFuse.Reliability.Tests -c $(CONFIG) --nologo --filter "FullyQualifiedName~Fuzzed_images_fail_cleanly" \
	  --logger "console;verbosity=normal" 2>&1 | grep -v '^\s*$$' | grep -E '^ *fuzz:|FUZZ FAILURE|case seed|Passed|Failed|error' ; \
	rc=$$?; echo "fuzz: seed $$seed"; exit $$rc

# Crash torture, longer than in make test, from a random seed; a failure names its seed
# (repeat with QEDFUSE_TORTURE_SEED=N). Rounds: TORTURE_ROUNDS (engine, fault injection)
# and TORTURE_MOUNT_ROUNDS (SIGKILL of a live mount).
TORTURE_ROUNDS       ?= 3000
TORTURE_MOUNT_ROUNDS ?= 40
torture: deps build
	@seed=$${QEDFUSE_TORTURE_SEED:-$$(( $$(od -An -N4 -tu4 /dev/urandom) % 1000000000 ))}; \
	echo "torture: seed $$seed (repeat with: make torture QEDFUSE_TORTURE_SEED=$$seed)"; \
	QEDFUSE=$(CURDIR)/$(OUT)/qedfuse QEDFUSE_TORTURE_SEED=$$seed QEDFUSE_TORTURE_ROUNDS=$(TORTURE_ROUNDS) \
	  QEDFUSE_TORTURE_MOUNT_ROUNDS=$(TORTURE_MOUNT_ROUNDS) $(DOTNET) test tests/QedFuse.Reliability.Tests -c $(CONFIG) \
	  --nologo --filter "FullyQualifiedName~Torture" --logger "console;verbosity=detailed"; \
	rc=$$?; echo "torture: seed $$seed"; exit $$rc


demo: build
	@tests/scripts/demo

install: build
	install -d $(DESTDIR)$(PREFIX)/lib/qedfuse $(DESTDIR)$(PREFIX)/bin $(DESTDIR)/sbin
	cp -r $(OUT)/bin/. $(DESTDIR)$(PREFIX)/lib/qedfuse/
	ln -sf $(PREFIX)/lib/qedfuse/qedfuse $(DESTDIR)$(PREFIX)/bin/qedfuse
	install -m 0755 packaging/mount.qedfuse $(DESTDIR)/sbin/mount.qedfuse
	ln -sf mount.qedfuse $(DESTDIR)/sbin/mount.fuse.qedfuse
	@echo "installed $(PREFIX)/bin/qedfuse and /sbin/mount.qedfuse"

uninstall:
	rm -rf $(DESTDIR)$(PREFIX)/lib/qedfuse $(DESTDIR)$(PREFIX)/bin/qedfuse $(DESTDIR)/sbin/mount.qedfuse $(DESTDIR)/sbin/mount.fuse.qedfuse

clean:
	rm -rf $(OUT)
	find src tests -type d \( -name bin -o -name obj \) -prune -exec rm -rf {} +
