# qedfuse — build, test, install.
#   make          build and leave the launcher at out/qedfuse
#   make test     install missing test dependencies, build, run every test
#   make fuzz     fuzz the QED engine with many more cases, from a random seed
#   make torture  crash torture (fault injection, SIGKILL of live mounts), many rounds, random seed
#   make demo     create a demo image, mount it, show it with standard tools, unmount
#   make install  install to $(PREFIX) (default /usr/local); DESTDIR=... stages it elsewhere
#   make deb      build the Debian package out/qedfuse_VERSION_ARCH.deb (dpkg-deb)
#   make bench    raw file vs qemu-storage-daemon FUSE export vs qedfuse (tests/bench/README.md);
#                 make bench ARGS=--quick for the short version (not part of make test)

SHELL       := /bin/bash
VERSION     := 0.1.0
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
MANDIR      ?= $(PREFIX)/share/man
COMPLETIONDIR ?= $(PREFIX)/share/bash-completion/completions
# mount(8) looks for its helpers (mount.TYPE) in /sbin only.
SBINDIR     ?= /sbin
DOTNET      ?= dotnet
CONFIG      ?= Release
OUT         := out
# NATIVE=auto: a native executable (NativeAOT) when a C linker is there or can be installed,
# else a self-contained single file; yes / no force one or the other. Neither needs a .NET
# runtime on the machine that runs qedfuse.
NATIVE      ?= auto
export DOTNET_CLI_TELEMETRY_OPTOUT := 1
export DOTNET_NOLOGO := 1
export DOTNET_SKIP_FIRST_TIME_EXPERIENCE := 1

# Debian packages the tests drive as real components (QEMU's tools are the oracle).
TEST_DEPS_CMDS := qemu-img qemu-io qemu-storage-daemon fusermount3 mkfs.ext4 e2fsck losetup gcc fio man groff dpkg-deb unshare
TEST_DEPS_PKGS := qemu-utils qemu-system-common fuse3 libfuse3-3 libfuse3-dev e2fsprogs mount gcc libc6-dev fio man-db groff-base dpkg util-linux

# NativeAOT links with clang (or gcc) and strips with objcopy.
BUILD_DEPS_PKGS := clang binutils libc6-dev

.PHONY: all build build-deps test deps demo install install-files uninstall deb clean bench torture fuzz

all: build

build: build-deps
	@rm -rf $(OUT)/qedfuse $(OUT)/bin
	@if [ "$(NATIVE)" = no ] || { [ "$(NATIVE)" = auto ] && ! { command -v clang || command -v gcc; } >/dev/null 2>&1; }; then \
	  echo "building a self-contained single-file qedfuse (NATIVE=$(NATIVE); a native one needs clang or gcc)"; \
	  $(DOTNET) publish src/QedFuse.Cli/QedFuse.Cli.csproj -c $(CONFIG) -o $(OUT)/bin --nologo -v quiet --use-current-runtime \
	    -p:Version=$(VERSION) -p:PublishAot=false -p:SelfContained=true -p:PublishSingleFile=true -p:PublishTrimmed=true; \
	else \
	  $(DOTNET) publish src/QedFuse.Cli/QedFuse.Cli.csproj -c $(CONFIG) -o $(OUT)/bin --nologo -v quiet --use-current-runtime \
	    -p:Version=$(VERSION); \
	fi
	@ln -s bin/qedfuse $(OUT)/qedfuse
	@echo "built $(OUT)/qedfuse"

# A C toolchain for the native link: installed with apt where missing; where that cannot be
# done, build falls back to the self-contained single file.
build-deps:
	@if [ "$(NATIVE)" != no ] && ! { { command -v clang || command -v gcc; } && command -v objcopy; } >/dev/null 2>&1 \
	    && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "installing a C toolchain for the native build ($(BUILD_DEPS_PKGS))"; \
	  { apt-get -o DPkg::Lock::Timeout=300 update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get -o DPkg::Lock::Timeout=300 install -y -qq $(BUILD_DEPS_PKGS) >/dev/null; } \
	    || echo "could not install $(BUILD_DEPS_PKGS): falling back to a self-contained build"; \
	fi

deps:
	@missing=""; \
	for c in $(TEST_DEPS_CMDS); do command -v $$c >/dev/null 2>&1 || PATH="$$PATH:/usr/sbin:/sbin" command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	[ -e /usr/include/fuse3/fuse_lowlevel.h ] || missing="$$missing fuse3-headers"; \
	ls /usr/lib/*/libfuse3.so.3 >/dev/null 2>&1 || missing="$$missing libfuse3"; \
	if [ -n "$$missing" ]; then \
	  echo "installing test dependencies (missing:$$missing)"; \
	  apt-get -o DPkg::Lock::Timeout=300 update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get -o DPkg::Lock::Timeout=300 install -y -qq $(TEST_DEPS_PKGS) >/dev/null; \
	fi
	@[ -e /dev/fuse ] || { echo "make test: /dev/fuse is missing (load the fuse module)"; exit 1; }

test: deps build deb
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

# The binary, the mount(8) helper (told where the binary is: mount(8) runs helpers without
# PATH), the man page and bash completion. DESTDIR stages the tree (make deb does).
install: build install-files

install-files:
	install -D -m 0755 $(OUT)/bin/qedfuse $(DESTDIR)$(BINDIR)/qedfuse
	install -d $(DESTDIR)$(SBINDIR)
	sed 's|@QEDFUSE@|$(BINDIR)/qedfuse|' packaging/mount.qedfuse > $(DESTDIR)$(SBINDIR)/mount.qedfuse
	chmod 0755 $(DESTDIR)$(SBINDIR)/mount.qedfuse
	ln -sf mount.qedfuse $(DESTDIR)$(SBINDIR)/mount.fuse.qedfuse
	install -d $(DESTDIR)$(MANDIR)/man1
	sed 's|@VERSION@|$(VERSION)|' packaging/qedfuse.1 > $(DESTDIR)$(MANDIR)/man1/qedfuse.1
	install -D -m 0644 packaging/qedfuse.bash-completion $(DESTDIR)$(COMPLETIONDIR)/qedfuse
	@echo "installed $(DESTDIR)$(BINDIR)/qedfuse, $(DESTDIR)$(SBINDIR)/mount.qedfuse (fstab type qedfuse or fuse.qedfuse),"
	@echo "  $(DESTDIR)$(MANDIR)/man1/qedfuse.1 and $(DESTDIR)$(COMPLETIONDIR)/qedfuse"

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/qedfuse $(DESTDIR)$(SBINDIR)/mount.qedfuse $(DESTDIR)$(SBINDIR)/mount.fuse.qedfuse \
	  $(DESTDIR)$(MANDIR)/man1/qedfuse.1 $(DESTDIR)$(COMPLETIONDIR)/qedfuse
	rm -rf $(DESTDIR)$(PREFIX)/lib/qedfuse
	@echo "removed qedfuse from $(DESTDIR)$(PREFIX) and $(DESTDIR)$(SBINDIR)"

# The Debian package: make install into a staging tree under /usr, then dpkg-deb.
DEB_ARCH := $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
DEB      := $(OUT)/qedfuse_$(VERSION)_$(DEB_ARCH).deb
deb: build
	@rm -rf $(OUT)/deb
	@$(MAKE) --no-print-directory install-files DESTDIR=$(CURDIR)/$(OUT)/deb PREFIX=/usr >/dev/null
	@gzip -9n $(OUT)/deb/usr/share/man/man1/qedfuse.1
	@install -D -m 0644 LICENSE $(OUT)/deb/usr/share/doc/qedfuse/copyright
	@install -d $(OUT)/deb/DEBIAN
	@sed -e 's|@VERSION@|$(VERSION)|' -e 's|@ARCH@|$(DEB_ARCH)|' \
	    -e "s|@SIZE@|$$(du -sk --exclude=DEBIAN $(OUT)/deb | cut -f1)|" packaging/control > $(OUT)/deb/DEBIAN/control
	@dpkg-deb --root-owner-group -Zxz --build $(OUT)/deb $(DEB) >/dev/null
	@echo "built $(DEB)"

clean:
	rm -rf $(OUT)
	find src tests -type d \( -name bin -o -name obj \) -prune -exec rm -rf {} +
