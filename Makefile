# libfmnn - convolutional neural networks in C11 with Keras's semantics.
#
#   make                 build/libfmnn.a, build/libfmnn.so.*, examples
#   make check           install missing dependencies, build, run every test
#   make experiments     install missing dependencies, run the five-model study
#   make install         PREFIX=/usr/local DESTDIR= (installs nothing else)
#   make deps            apt-get install whatever is missing
#   make dist            build/fmnn-VERSION.tar.gz, the tracked sources
#   make distcheck       build, test, install and uninstall that tarball
#   make abi-check       compare libfmnn.so's ABI with tests/abi/libfmnn.abi
#                        (installs abigail-tools; make abi-baseline records it)
#   make check-fresh     make check and make experiments on a fresh Debian root
#   make check-tsan      every test suite under ThreadSanitizer (clang, libomp)
#   make check-helgrind  the concurrency suite under valgrind's helgrind
#   make bench-compare   our benchmark next to PyTorch's and onnxruntime's
#   make mpi             build/libfmnn_mpi.{a,so}, its examples (the study on
#                        several processes) and tests (part of make, make
#                        check and make install where MPI is installed;
#                        make mpi-enabled prints 1 or 0)
#
# Every output goes to build/.

# The version lives in include/fmnn/version.h alone.
version_define = $(shell sed -n 's/^\#define $(1) \([0-9][0-9]*\).*/\1/p' include/fmnn/version.h)
VERSION_MAJOR := $(call version_define,FMNN_VERSION_MAJOR)
VERSION_MINOR := $(call version_define,FMNN_VERSION_MINOR)
VERSION_PATCH := $(call version_define,FMNN_VERSION_PATCH)
VERSION       := $(VERSION_MAJOR).$(VERSION_MINOR).$(VERSION_PATCH)
# The soname's number: it changes with every incompatible ABI change
# (docs/internals.md, "Releases and the ABI").
SOVERSION     := $(call version_define,FMNN_SOVERSION)

PREFIX     ?= /usr/local
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR     ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
CMAKEDIR   ?= $(LIBDIR)/cmake/fmnn

CC      ?= cc
B       := build
DEP_PCS := openblas zlib
DATASET_DIR  := /usr/share/datasets/fashion-mnist
# What `make deps` installs: the build's dependencies and the dataset, then
# what the tests need beyond a fresh Debian with build-essential:
# - libgfortran-N-dev (N: gcc's major version): OpenBLAS's openblas.pc
#   lists -lgfortran in Libs.private, so a link with `pkg-config --static`
#   needs libgfortran.so, which only this package has;
# - cmake, for the CMake consumer of tests/downstream.sh;
# - groff-base and man-db, for the man-page check of tests/docs.sh.
# (gcc's: clang links with the newest gcc's libraries.)
GCC_MAJOR    := $(shell { $(CC) --version | grep -q 'Free Software Foundation' && \
                          $(CC) -dumpversion || gcc -dumpversion; } 2>/dev/null | cut -d. -f1)
# - libopenmpi-dev and openmpi-bin, for libfmnn_mpi and its tests.
APT_PACKAGES := libopenblas-dev check zlib1g-dev pkg-config dataset-fashion-mnist \
                $(if $(GCC_MAJOR),libgfortran-$(GCC_MAJOR)-dev) cmake groff-base man-db \
                libopenmpi-dev openmpi-bin

WARNINGS := -Wall -Wextra -Wpedantic
ifeq ($(WERROR),1)
WARNINGS += -Werror
endif

# Flags of our own come first so that a user's CFLAGS can add to them.
# -O3 because GCC vectorizes almost no loop at -O2; it does not change
# results, since nothing here allows reassociating floating point.
OPTFLAGS ?= -O3
BASE_CFLAGS := -std=c11 $(OPTFLAGS) -g $(WARNINGS) -fopenmp
LIB_CFLAGS  := $(BASE_CFLAGS) -fPIC -fvisibility=hidden -DFMNN_BUILDING \
               -Iinclude -Ilib
PKG_CFLAGS   = $(shell pkg-config --cflags $(DEP_PCS) 2>/dev/null)
PKG_LIBS     = $(shell pkg-config --libs $(DEP_PCS) 2>/dev/null)
LIBS_PRIVATE := -fopenmp -lm
CHECK_CFLAGS = $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   = $(shell pkg-config --libs check 2>/dev/null)

# lib/mpi/ is libfmnn_mpi's: libfmnn itself has no MPI in it.
LIB_SRCS := $(sort $(filter-out lib/mpi/%,$(wildcard lib/*.c lib/*/*.c)))
LIB_OBJS := $(LIB_SRCS:%.c=$(B)/obj/%.o)
HEADERS  := include/fmnn.h $(wildcard include/fmnn/*.h)

STATIC_LIB := $(B)/libfmnn.a
SONAME     := libfmnn.so.$(SOVERSION)
SHARED_LIB := $(B)/libfmnn.so.$(VERSION)

# Example programs: every examples/*.c with a main(); shared helpers
# (examples/*/ folders) are linked into the programs that use them.
# (examples/*_mpi.c are libfmnn_mpi's, built with it.)
EXAMPLE_SRCS := $(filter-out %_mpi.c,$(wildcard examples/*.c))
EXAMPLE_BINS := $(EXAMPLE_SRCS:examples/%.c=$(B)/examples/%)
EXAMPLE_LIB_SRCS := $(wildcard examples/support/*.c)
EXAMPLE_LIB_OBJS := $(EXAMPLE_LIB_SRCS:%.c=$(B)/obj/%.o)

TEST_SRCS := $(wildcard tests/check_*.c)
TEST_BINS := $(TEST_SRCS:tests/%.c=$(B)/tests/%)
TEST_SUPPORT_SRCS := $(filter-out $(TEST_SRCS),$(wildcard tests/*.c))
TEST_SUPPORT_OBJS := $(TEST_SUPPORT_SRCS:%.c=$(B)/obj/%.o)

BENCH_SRCS := $(wildcard bench/*.c)

.PHONY: all lib examples check test deps deps-list need-deps install uninstall clean \
        experiments
.DELETE_ON_ERROR:
.SECONDARY:

# libfmnn_mpi is built whenever MPI's development files and mpirun are
# there (make deps installs them); MPI=0 leaves it out, MPI=1 insists.
MPI ?= $(shell pkg-config --exists mpi-c 2>/dev/null && command -v mpirun >/dev/null 2>&1 && echo 1 || echo 0)

all: lib examples bench $(if $(filter 1,$(MPI)),mpi)

lib: need-deps $(STATIC_LIB) $(B)/libfmnn.so

# ---- dependencies ---------------------------------------------------

# Plain `make` installs nothing: it only says what is missing.
need-deps:
	@command -v pkg-config >/dev/null 2>&1 || { \
	  echo "error: pkg-config is missing; run 'make deps' (or apt-get install $(APT_PACKAGES))" >&2; exit 1; }
	@for pc in $(DEP_PCS); do pkg-config --exists $$pc || { \
	  echo "error: the development files for '$$pc' are missing; run 'make deps'" >&2; exit 1; }; done

# $(call apt_install,PACKAGES): installs those of PACKAGES that are
# missing, so it is a no-op on a ready machine.
apt_install = @missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing:$$missing"; \
	  SUDO=; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  $$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
	    --no-install-recommends $$missing; \
	else echo "All dependencies are installed."; fi

deps:
	$(call apt_install,$(APT_PACKAGES))

# What `make deps` installs, for tests/fresh-machine.sh.
deps-list:
	@echo $(APT_PACKAGES)

# ---- the library ----------------------------------------------------

$(B)/obj/lib/%.o: lib/%.c $(HEADERS) $(wildcard lib/*.h lib/*/*.h) | need-deps
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) $(PKG_CFLAGS) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(STATIC_LIB): $(LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(SHARED_LIB): $(LIB_OBJS)
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--no-undefined -o $@ $^ \
	  $(PKG_LIBS) $(LIBS_PRIVATE) $(LDFLAGS)

$(B)/$(SONAME): $(SHARED_LIB)
	ln -sf $(notdir $<) $@

$(B)/libfmnn.so: $(B)/$(SONAME)
	ln -sf $(SONAME) $@

# fmnn.pc is generated at install time, so that it always carries the
# PREFIX of that install.
PC_SED = sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
	    -e 's|@REQUIRES_PRIVATE@|$(DEP_PCS)|g' -e 's|@LIBS_PRIVATE@|$(LIBS_PRIVATE)|g'

# ---- libfmnn_mpi -----------------------------------------------------
# (lib/mpi/, include/fmnn/mpi.h; docs/distributed.md)

MPI_CFLAGS    = $(shell pkg-config --cflags mpi-c 2>/dev/null)
MPI_LIBS      = $(shell pkg-config --libs mpi-c 2>/dev/null)
MPI_SRCS     := $(wildcard lib/mpi/*.c)
MPI_OBJS     := $(MPI_SRCS:%.c=$(B)/obj/%.o)
MPI_STATIC   := $(B)/libfmnn_mpi.a
MPI_SONAME   := libfmnn_mpi.so.$(SOVERSION)
MPI_SHARED   := $(B)/libfmnn_mpi.so.$(VERSION)
MPI_EXAMPLE_SRCS := $(wildcard examples/*_mpi.c)
MPI_EXAMPLE_BINS := $(MPI_EXAMPLE_SRCS:examples/%.c=$(B)/examples/%)
MPI_TEST_BINS    := $(B)/tests/mpi/check_mpi
# Installed only with libfmnn_mpi: it includes <mpi.h>.
MPI_HEADER       := include/fmnn/mpi.h

.PHONY: mpi need-mpi mpi-enabled
mpi: need-mpi lib $(MPI_STATIC) $(B)/libfmnn_mpi.so $(MPI_EXAMPLE_BINS) $(MPI_TEST_BINS) \
     $(B)/bench/fmnn_mpi_bench

need-mpi:
	@pkg-config --exists mpi-c 2>/dev/null && command -v mpirun >/dev/null 2>&1 || { \
	  echo "error: MPI is missing; run 'make deps' (or apt-get install libopenmpi-dev openmpi-bin)" >&2; exit 1; }

# For scripts (tests/downstream.sh): whether make and make install
# include libfmnn_mpi.
mpi-enabled:
	@echo $(if $(filter 1,$(MPI)),1,0)

$(B)/obj/lib/mpi/%.o: lib/mpi/%.c $(HEADERS) | need-mpi
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -fPIC -fvisibility=hidden -DFMNN_BUILDING -Iinclude $(MPI_CFLAGS) \
	  $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(MPI_STATIC): $(MPI_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(MPI_SHARED): $(MPI_OBJS) $(B)/libfmnn.so
	$(CC) -shared -Wl,-soname,$(MPI_SONAME) -Wl,--no-undefined -o $@ $(MPI_OBJS) \
	  -L$(B) -lfmnn $(MPI_LIBS) $(LDFLAGS)

$(B)/$(MPI_SONAME): $(MPI_SHARED)
	ln -sf $(notdir $<) $@

$(B)/libfmnn_mpi.so: $(B)/$(MPI_SONAME)
	ln -sf $(MPI_SONAME) $@

MPI_APP_LIBS = $(MPI_STATIC) $(APP_LIBS) $(MPI_LIBS)

$(B)/obj/examples/%_mpi.o: examples/%_mpi.c $(HEADERS) $(wildcard examples/support/*.h) | need-mpi
	@mkdir -p $(dir $@)
	$(CC) $(APP_CFLAGS) $(MPI_CFLAGS) -c $< -o $@

$(B)/examples/%_mpi: $(B)/obj/examples/%_mpi.o $(EXAMPLE_LIB_OBJS) $(MPI_STATIC) $(STATIC_LIB)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $< $(EXAMPLE_LIB_OBJS) $(MPI_APP_LIBS)

$(B)/tests/mpi/%: tests/mpi/%.c $(HEADERS) $(wildcard lib/*.h tests/*.h) $(TEST_SUPPORT_OBJS) $(MPI_STATIC) \
                  $(STATIC_LIB) | need-mpi
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) $(MPI_CFLAGS) -o $@ $< $(TEST_SUPPORT_OBJS) $(MPI_APP_LIBS) $(CHECK_LIBS)

# ---- examples -------------------------------------------------------

# Programs of our own link the static library, so that they run from the
# build tree without LD_LIBRARY_PATH.
APP_CFLAGS = $(BASE_CFLAGS) -Iinclude -Iexamples $(PKG_CFLAGS) $(CPPFLAGS) $(CFLAGS)
APP_LIBS   = $(STATIC_LIB) $(PKG_LIBS) $(LIBS_PRIVATE) $(LDFLAGS)

examples: $(EXAMPLE_BINS)

$(B)/obj/examples/%.o: examples/%.c $(HEADERS) $(wildcard examples/support/*.h) | need-deps
	@mkdir -p $(dir $@)
	$(CC) $(APP_CFLAGS) -c $< -o $@

$(B)/examples/%: $(B)/obj/examples/%.o $(EXAMPLE_LIB_OBJS) $(STATIC_LIB)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $< $(EXAMPLE_LIB_OBJS) $(APP_LIBS)

# ---- tests ----------------------------------------------------------

# Tests may look inside the library (lib/*.h): they link the static
# archive, where hidden symbols still resolve.
TEST_CFLAGS = $(APP_CFLAGS) -Ilib -Itests $(CHECK_CFLAGS)

$(B)/obj/tests/%.o: tests/%.c $(HEADERS) $(wildcard lib/*.h tests/*.h examples/support/*.h) | need-deps
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -c $< -o $@

$(B)/tests/%: $(B)/obj/tests/%.o $(TEST_SUPPORT_OBJS) $(EXAMPLE_LIB_OBJS) $(STATIC_LIB)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $< $(TEST_SUPPORT_OBJS) $(EXAMPLE_LIB_OBJS) $(APP_LIBS) $(CHECK_LIBS)

# `make check-parity`: libfmnn against PyTorch with the same weights
# (tests/parity/); skipped where python3-torch is not installed.
PARITY_DUMP := $(B)/tests/parity/parity_dump

$(PARITY_DUMP): tests/parity/parity_dump.c $(HEADERS) $(STATIC_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(APP_CFLAGS) -o $@ $< $(APP_LIBS)

.PHONY: check-parity
check-parity: deps $(PARITY_DUMP)
	@sh tests/parity/parity.sh $(PARITY_DUMP)

# `make check-onnx`: ONNX export and import against onnxruntime,
# onnx.checker and PyTorch (tests/onnx/); installs what it needs, and
# skips where that cannot be installed.
ONNX_DRIVER := $(B)/tests/onnx/onnx_driver

$(ONNX_DRIVER): tests/onnx/onnx_driver.c $(HEADERS) $(wildcard examples/support/*.h) $(EXAMPLE_LIB_OBJS) \
                $(STATIC_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(APP_CFLAGS) -o $@ $< $(EXAMPLE_LIB_OBJS) $(APP_LIBS)

.PHONY: check-onnx
check-onnx: deps $(ONNX_DRIVER)
	@sh tests/onnx/run.sh $(ONNX_DRIVER)

# `make check` installs what is missing first, so it is enough on a fresh
# Debian machine.  Each suite runs on its own; all run even if one fails.
check: deps
	@$(MAKE) --no-print-directory run-tests

.PHONY: run-tests
run-tests: all $(TEST_BINS)
	@failed=0; for t in $(TEST_BINS); do \
	  echo "== $$t"; \
	  FMNN_SOURCE_DIR=$(CURDIR) CK_DEFAULT_TIMEOUT=600 $$t || failed=1; \
	done; \
	echo "== symbols"; sh tests/symbols.sh $(SHARED_LIB) $(if $(filter 1,$(MPI)),$(MPI_SHARED)) || failed=1; \
	echo "== headers"; sh tests/headers.sh "$(CC)" || failed=1; \
	echo "== downstream"; sh tests/downstream.sh "$(MAKE)" || failed=1; \
	echo "== convert"; sh tests/convert.sh $(B) || failed=1; \
	echo "== docs"; sh tests/docs.sh "$(CC)" "$(PKG_LIBS) $(LIBS_PRIVATE)" || failed=1; \
	echo "== study-kill"; sh tests/study-kill.sh $(B) base,l2_dropout 1500 500 || failed=1; \
	if [ "$(MPI)" = 1 ]; then echo "== mpi"; sh tests/mpi/run.sh $(B) || failed=1; \
	else echo "== mpi: skipped: MPI is not installed (make deps installs libopenmpi-dev and openmpi-bin)"; fi; \
	if [ $$failed -ne 0 ]; then echo "FAILED"; exit 1; fi; echo "All test suites passed."

# The study killed at 5 random moments and stopped by SIGINT: the five
# models on 3000 training images (make check runs two on 1500).
.PHONY: check-kill
check-kill: deps examples
	sh tests/study-kill.sh $(B)

test: check

# ---- benchmark ------------------------------------------------------

BENCH_ARGS ?= --threads 2

.PHONY: bench bench-run
bench: $(B)/bench/fmnn_bench

$(B)/bench/fmnn_bench: bench/bench.c $(EXAMPLE_LIB_OBJS) $(STATIC_LIB) $(HEADERS) lib/model_impl.h
	@mkdir -p $(dir $@)
	$(CC) $(APP_CFLAGS) -Ilib -o $@ $< $(EXAMPLE_LIB_OBJS) $(APP_LIBS)

# The Base model's training throughput on several processes (docs/distributed.md).
$(B)/bench/fmnn_mpi_bench: bench/mpi_bench.c $(EXAMPLE_LIB_OBJS) $(MPI_STATIC) $(STATIC_LIB) $(HEADERS) | need-mpi
	@mkdir -p $(dir $@)
	$(CC) $(APP_CFLAGS) $(MPI_CFLAGS) -o $@ $< $(EXAMPLE_LIB_OBJS) $(MPI_APP_LIBS)

# Two ranks in two network namespaces, the link between them shaped to
# 10 and 1 Gb/s (root; bench/mpi-cluster.sh).
.PHONY: bench-mpi-cluster
bench-mpi-cluster: $(B)/bench/fmnn_mpi_bench
	sh bench/mpi-cluster.sh $(B)

# libfmnn next to PyTorch (fp32, channels_last, bf16 autocast) and
# onnxruntime, back to back, with the ratios (bench/compare.sh).
# BENCH_REFS is the folder of the reference scripts, torch_ref.py and
# ort_ref.sh; PyTorch is Debian's python3-torch, onnxruntime comes from
# its npm package.
BENCH_REFS    ?= ../shared/bench
BENCH_THREADS ?= 2
.PHONY: bench-compare bench-node
bench-compare: bench
	$(call apt_install,python3-torch)
	@command -v npm >/dev/null 2>&1 || $(MAKE) --no-print-directory bench-node
	sh bench/compare.sh $(B) $(BENCH_REFS) $(BENCH_THREADS)

# Debian's node and npm, where no other install of them is there.
bench-node:
	$(call apt_install,nodejs npm)

# Prints the same figures as shared/bench/torch_ref.py, for a side-by-side run.
bench-run: bench
	$(B)/bench/fmnn_bench $(BENCH_ARGS)

# ---- experiments ----------------------------------------------------

# EXPERIMENTS_ARGS go to the program: --epochs 1 --train-limit 3000, say.
EXPERIMENTS_ARGS ?=

experiments: deps
	@$(MAKE) --no-print-directory all
	$(B)/examples/fashion_experiments --out fmnn-results $(EXPERIMENTS_ARGS)

# ---- install --------------------------------------------------------

# The CMake package files find the library relative to their own folder,
# so that a DESTDIR staging tree or a moved prefix still works.
CMAKE_SED = sed -e 's|@VERSION@|$(VERSION)|g' -e 's|@VERSION_MAJOR@|$(VERSION_MAJOR)|g' \
	    -e 's|@VERSION_MINOR@|$(VERSION_MINOR)|g' -e 's|@SONAME@|$(SONAME)|g' \
	    -e 's|@MPI_SONAME@|$(MPI_SONAME)|g' \
	    -e "s|@CMAKEDIR_TO_LIBDIR@|$$(realpath -m -s --relative-to=$(CMAKEDIR) $(LIBDIR))|g" \
	    -e "s|@CMAKEDIR_TO_INCLUDEDIR@|$$(realpath -m -s --relative-to=$(CMAKEDIR) $(INCLUDEDIR))|g" \
	    -e "s|@SIZEOF_VOID_P@|$$(echo __SIZEOF_POINTER__ | $(CC) -E -P - | tr -d ' ')|g"

# libfmnn_mpi, its header and fmnn-mpi.pc come along where MPI is on;
# fmnnConfig.cmake defines fmnn::mpi when it finds them.
install: lib $(if $(filter 1,$(MPI)),need-mpi $(MPI_STATIC) $(B)/libfmnn_mpi.so)
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR)/fmnn $(DESTDIR)$(PKGCONFIGDIR) \
	  $(DESTDIR)$(CMAKEDIR)
	install -m 644 include/fmnn.h $(DESTDIR)$(INCLUDEDIR)/fmnn.h
	install -m 644 $(filter-out $(MPI_HEADER),$(wildcard include/fmnn/*.h)) $(DESTDIR)$(INCLUDEDIR)/fmnn/
	install -m 644 $(STATIC_LIB) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(SHARED_LIB) $(DESTDIR)$(LIBDIR)/
	ln -sf libfmnn.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libfmnn.so
	$(PC_SED) pkgconfig/fmnn.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/fmnn.pc
	$(CMAKE_SED) pkgconfig/fmnnConfig.cmake.in > $(DESTDIR)$(CMAKEDIR)/fmnnConfig.cmake
	$(CMAKE_SED) pkgconfig/fmnnConfigVersion.cmake.in > $(DESTDIR)$(CMAKEDIR)/fmnnConfigVersion.cmake
	install -d $(DESTDIR)$(MANDIR)/man3
	install -m 644 docs/fmnn.3 $(DESTDIR)$(MANDIR)/man3/fmnn.3
ifeq ($(MPI),1)
	install -m 644 $(MPI_HEADER) $(DESTDIR)$(INCLUDEDIR)/fmnn/
	install -m 644 $(MPI_STATIC) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(MPI_SHARED) $(DESTDIR)$(LIBDIR)/
	ln -sf libfmnn_mpi.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(MPI_SONAME)
	ln -sf $(MPI_SONAME) $(DESTDIR)$(LIBDIR)/libfmnn_mpi.so
	$(PC_SED) pkgconfig/fmnn-mpi.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/fmnn-mpi.pc
endif

# Removes what install wrote, and the folders of libfmnn's own that are
# now empty (not lib/pkgconfig and the like, which other packages share).
# libfmnn_mpi's files go whatever MPI is now: it may have been on at
# install time.
uninstall:
	rm -f $(DESTDIR)$(INCLUDEDIR)/fmnn.h
	rm -f $(addprefix $(DESTDIR)$(INCLUDEDIR)/fmnn/,$(notdir $(wildcard include/fmnn/*.h)))
	rm -f $(DESTDIR)$(LIBDIR)/libfmnn.a $(DESTDIR)$(LIBDIR)/libfmnn.so \
	      $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/libfmnn.so.$(VERSION)
	rm -f $(DESTDIR)$(LIBDIR)/libfmnn_mpi.a $(DESTDIR)$(LIBDIR)/libfmnn_mpi.so \
	      $(DESTDIR)$(LIBDIR)/$(MPI_SONAME) $(DESTDIR)$(LIBDIR)/libfmnn_mpi.so.$(VERSION)
	rm -f $(DESTDIR)$(PKGCONFIGDIR)/fmnn.pc $(DESTDIR)$(PKGCONFIGDIR)/fmnn-mpi.pc \
	      $(DESTDIR)$(MANDIR)/man3/fmnn.3
	rm -f $(DESTDIR)$(CMAKEDIR)/fmnnConfig.cmake $(DESTDIR)$(CMAKEDIR)/fmnnConfigVersion.cmake
	-rmdir $(DESTDIR)$(INCLUDEDIR)/fmnn $(DESTDIR)$(CMAKEDIR) 2>/dev/null

clean:
	rm -rf $(B)

# ---- releases: tarballs, the ABI, a fresh machine ---------------------
# (docs/internals.md, "Releases and the ABI")

.PHONY: dist distcheck abi-check abi-baseline check-fresh

DIST_NAME := fmnn-$(VERSION)
DIST      := $(B)/$(DIST_NAME).tar.gz

# Exactly the files git tracks, as they are in the work tree, owned by
# root, with modes that do not depend on the umask, and dated by the last
# commit, so that the same tree gives the same bytes.
dist:
	@git rev-parse --is-inside-work-tree >/dev/null 2>&1 || { \
	  echo "error: make dist lists the files git tracks: run it in a git checkout" >&2; exit 1; }
	@mkdir -p $(B)
	git ls-files -z | LC_ALL=C sort -z | tar --no-recursion --null --files-from=- \
	  --transform='s|^|$(DIST_NAME)/|' --owner=0 --group=0 --numeric-owner \
	  --mode='a+rX,go-w' --mtime=@$$(git log -1 --format=%ct) -cf $(DIST:.gz=)
	gzip -n -9 -f $(DIST:.gz=)
	@echo "$(DIST): $$(tar -tzf $(DIST) | wc -l) files"

distcheck: dist
	sh tests/distcheck.sh $(DIST) "$(MAKE)"

# abidw reads the exported ABI off libfmnn.so's debug information, limited
# to what the public headers declare.  The library it reads is built on its
# own, in build/abi/ with the default flags, so that a build with other
# CFLAGS (no -g, say) cannot change the verdict.
ABI_BASELINE := tests/abi/libfmnn.abi
ABI_LIB      := $(B)/abi/libfmnn.so.$(VERSION)

.PHONY: abi-lib
abi-lib:
	$(call apt_install,abigail-tools)
	@$(MAKE) --no-print-directory B=$(B)/abi OPTFLAGS=-O3 CFLAGS= CPPFLAGS= LDFLAGS= \
	  $(ABI_LIB)

abi-check: abi-lib
	sh tests/abi-check.sh $(ABI_LIB) $(ABI_BASELINE)

abi-baseline: abi-lib
	sh tests/abi-check.sh --update $(ABI_LIB) $(ABI_BASELINE)

check-fresh:
	sh tests/fresh-machine.sh

# ---- reliability: sanitizers, valgrind, fuzzing -------------------------
# (tests/check_save.c, tests/check_alloc.c, tests/fuzz/, tests/valgrind.supp)
#
#   make check-asan      builds the library, examples and tests with
#                        AddressSanitizer + UBSan into build/asan/, then runs
#                        every Check suite; any report fails it
#   make check-valgrind  every Check suite under valgrind's memcheck
#   make fuzz            libFuzzer targets (clang) in build/fuzz/
#   make fuzz-run        runs each fuzz target FUZZ_SECONDS (600) in turn
#   make fuzz-corpus     rewrites the seed corpora in tests/fuzz/

ASAN_B      := build/asan
ASAN_CFLAGS := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined \
               -fno-omit-frame-pointer
ASAN_ENV    := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
               UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
VALGRIND    := valgrind --quiet --error-exitcode=1 --leak-check=full \
               --errors-for-leak-kinds=definite,indirect \
               --suppressions=$(CURDIR)/tests/valgrind.supp
SUITE_RUNNER ?=

.PHONY: check-asan check-valgrind run-check-suites fuzz fuzz-run fuzz-corpus

# Only the Check suites (not symbols.sh, headers.sh, downstream.sh, which
# install and link a normal build), each through $(SUITE_RUNNER).
run-check-suites: $(TEST_BINS)
	@failed=0; for t in $(TEST_BINS); do \
	  echo "== $$t"; start=$$(date +%s); \
	  FMNN_SOURCE_DIR=$(CURDIR) CK_DEFAULT_TIMEOUT=600 $(SUITE_RUNNER) $$t || failed=1; \
	  echo "   ($$(( $$(date +%s) - start )) s)"; \
	done; \
	if [ $$failed -ne 0 ]; then echo "FAILED"; exit 1; fi; echo "All Check suites passed."

check-asan: deps
	@$(ASAN_ENV) $(MAKE) --no-print-directory B=$(ASAN_B) OPTFLAGS="$(ASAN_CFLAGS)" \
	  LDFLAGS="-fsanitize=address,undefined" lib examples run-check-suites

check-valgrind: deps
	$(call apt_install,valgrind)
	@CK_FORK=no FMNN_TEST_QUICK=1 $(MAKE) --no-print-directory run-check-suites SUITE_RUNNER="$(VALGRIND)"

# The fuzzers compile the library's sources themselves, with clang's
# coverage instrumentation and sanitizers (not the gcc archive).
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 600
FUZZ_ARGS    ?=
FUZZ_B        = $(B)/fuzz
FUZZ_TARGETS := idx model onnx
FUZZ_CFLAGS  := -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=undefined -fno-omit-frame-pointer -fopenmp \
                -Wall -Wextra -DFMNN_BUILDING -Iinclude -Ilib -Itests/fuzz

fuzz: $(FUZZ_TARGETS:%=$(FUZZ_B)/fuzz_%)

$(FUZZ_B)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_common.h $(LIB_SRCS) $(HEADERS) \
                  $(wildcard lib/*.h lib/*/*.h) | need-deps
	@command -v $(FUZZ_CC) >/dev/null 2>&1 || { \
	  echo "error: $(FUZZ_CC) is missing (apt-get install clang)" >&2; exit 1; }
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(PKG_CFLAGS) -o $@ $< $(LIB_SRCS) $(PKG_LIBS) -lm

# New inputs go to build/fuzz/corpus_*, crashes to build/fuzz/artifacts/;
# the seeds in tests/fuzz/corpus_* are only read.
fuzz-run: fuzz
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_B)/corpus_$$t $(FUZZ_B)/artifacts; \
	  echo "== fuzz_$$t for $(FUZZ_SECONDS) s"; \
	  $(FUZZ_B)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=30 -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_B)/artifacts/$$t- $(FUZZ_ARGS) \
	    $(FUZZ_B)/corpus_$$t tests/fuzz/corpus_$$t || exit 1; \
	done

fuzz-corpus: $(B)/fuzz/gen_corpus
	@mkdir -p tests/fuzz/corpus_idx tests/fuzz/corpus_model tests/fuzz/corpus_onnx
	$(B)/fuzz/gen_corpus tests/fuzz

# -Ilib: the ONNX models are written with the library's internal builder.
$(B)/fuzz/gen_corpus: tests/fuzz/gen_corpus.c $(STATIC_LIB) $(HEADERS) lib/onnx/onnx_model.h
	@mkdir -p $(dir $@)
	$(CC) $(APP_CFLAGS) -Ilib -o $@ $< $(APP_LIBS)

# ---- threads: ThreadSanitizer and helgrind ----------------------------
# (tests/check_concurrency.c; docs/internals.md, "Checking threads")
#
#   make check-tsan      every Check suite built with clang's ThreadSanitizer
#                        into build/tsan/; any report fails it (3 min on 2 cores)
#   make check-helgrind  the concurrency suite under valgrind's helgrind
#
# TSan cannot see the synchronization inside an OpenMP runtime it did not
# instrument: with gcc's libgomp every parallel loop reports false races.
# LLVM's libomp has Archer (libarcher.so, in Debian's libomp-N-dev), an
# OpenMP tool that tells TSan about the runtime's barriers and team starts.
# So check-tsan builds with clang -fopenmp, which links libomp, loads
# Archer through OMP_TOOL_LIBRARIES, and has TSan ignore the accesses of
# the uninstrumented runtime itself (ignore_noninstrumented_modules, as
# Archer asks): the real OpenMP loops are checked, each user thread with
# its team, not a build without OpenMP.  Only the static library is built:
# clang's TSan runtime goes into programs, not into a shared library
# linked with --no-undefined.  libclang-rt-dev has that runtime (clang
# only recommends it).
#
# helgrind cannot follow libgomp's futex barriers either (millions of
# false reports from teams of 2), and valgrind has no Archer: so
# check-helgrind runs the concurrency suite with one thread per call
# (FMNN_TEST_THREADS=1), where no team starts.  It checks what the user's
# threads share (a model, its contexts' handles, the guard) by
# happens-before; the OpenMP teams are TSan's to check.
TSAN_B        := build/tsan
TSAN_CC       ?= clang
TSAN_CFLAGS   := -O1 -g -fsanitize=thread -fno-omit-frame-pointer
TSAN_PACKAGES := clang libomp-dev libclang-rt-dev
HELGRIND      := valgrind --tool=helgrind --quiet --error-exitcode=1

.PHONY: check-tsan check-helgrind

check-tsan: deps
	$(call apt_install,$(TSAN_PACKAGES))
	@archer="$$(dirname "$$(dirname "$$($(TSAN_CC) -print-resource-dir)")")/libarcher.so"; \
	[ -f "$$archer" ] || { echo "error: $$archer is missing (apt-get install libomp-dev)" >&2; exit 1; }; \
	TSAN_OPTIONS=halt_on_error=1:ignore_noninstrumented_modules=1 OMP_TOOL_LIBRARIES="$$archer" \
	  $(MAKE) --no-print-directory B=$(TSAN_B) CC=$(TSAN_CC) OPTFLAGS="$(TSAN_CFLAGS)" \
	  LDFLAGS=-fsanitize=thread run-check-suites

check-helgrind: deps
	$(call apt_install,valgrind)
	@CK_FORK=no FMNN_TEST_THREADS=1 $(MAKE) --no-print-directory run-check-suites \
	  TEST_BINS=$(B)/tests/check_concurrency SUITE_RUNNER="$(HELGRIND)"
