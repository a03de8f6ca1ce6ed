# libfmnn - convolutional neural networks in C11 with Keras's semantics.
#
#   make                 build/libfmnn.a, build/libfmnn.so.*, examples
#   make check           install missing dependencies, build, run every test
#   make experiments     install missing dependencies, run the five-model study
#   make install         PREFIX=/usr/local DESTDIR= (installs nothing else)
#   make deps            apt-get install whatever is missing
#
# Every output goes to build/.

VERSION_MAJOR := 0
VERSION_MINOR := 1
VERSION_PATCH := 0
VERSION       := $(VERSION_MAJOR).$(VERSION_MINOR).$(VERSION_PATCH)

PREFIX     ?= /usr/local
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR     ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig

CC      ?= cc
B       := build
DEP_PCS := openblas zlib
APT_PACKAGES := libopenblas-dev check zlib1g-dev pkg-config dataset-fashion-mnist
DATASET_DIR  := /usr/share/datasets/fashion-mnist

WARNINGS := -Wall -Wextra -Wpedantic
ifeq ($(WERROR),1)
WARNINGS += -Werror
endif

# Flags of our own come first so that a user's CFLAGS can add to them.
OPTFLAGS ?= -O2
BASE_CFLAGS := -std=c11 $(OPTFLAGS) -g $(WARNINGS) -fopenmp
LIB_CFLAGS  := $(BASE_CFLAGS) -fPIC -fvisibility=hidden -DFMNN_BUILDING \
               -Iinclude -Ilib
PKG_CFLAGS   = $(shell pkg-config --cflags $(DEP_PCS) 2>/dev/null)
PKG_LIBS     = $(shell pkg-config --libs $(DEP_PCS) 2>/dev/null)
LIBS_PRIVATE := -fopenmp -lm
CHECK_CFLAGS = $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   = $(shell pkg-config --libs check 2>/dev/null)

LIB_SRCS := $(sort $(wildcard lib/*.c lib/layers/*.c lib/kernels/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(B)/obj/%.o)
HEADERS  := include/fmnn.h $(wildcard include/fmnn/*.h)

STATIC_LIB := $(B)/libfmnn.a
SONAME     := libfmnn.so.$(VERSION_MAJOR)
SHARED_LIB := $(B)/libfmnn.so.$(VERSION)

# Example programs: every examples/*.c with a main(); shared helpers
# (examples/*/ folders) are linked into the programs that use them.
EXAMPLE_SRCS := $(wildcard examples/*.c)
EXAMPLE_BINS := $(EXAMPLE_SRCS:examples/%.c=$(B)/examples/%)
EXAMPLE_LIB_SRCS := $(wildcard examples/support/*.c)
EXAMPLE_LIB_OBJS := $(EXAMPLE_LIB_SRCS:%.c=$(B)/obj/%.o)

TEST_SRCS := $(wildcard tests/check_*.c)
TEST_BINS := $(TEST_SRCS:tests/%.c=$(B)/tests/%)
TEST_SUPPORT_SRCS := $(filter-out $(TEST_SRCS),$(wildcard tests/*.c))
TEST_SUPPORT_OBJS := $(TEST_SUPPORT_SRCS:%.c=$(B)/obj/%.o)

BENCH_SRCS := $(wildcard bench/*.c)

.PHONY: all lib examples check test deps need-deps install uninstall clean \
        experiments quick-experiments
.DELETE_ON_ERROR:
.SECONDARY:

all: lib examples bench

lib: need-deps $(STATIC_LIB) $(B)/libfmnn.so

# ---- dependencies ---------------------------------------------------

# Plain `make` installs nothing: it only says what is missing.
need-deps:
	@command -v pkg-config >/dev/null 2>&1 || { \
	  echo "error: pkg-config is missing; run 'make deps' (or apt-get install $(APT_PACKAGES))" >&2; exit 1; }
	@for pc in $(DEP_PCS); do pkg-config --exists $$pc || { \
	  echo "error: the development files for '$$pc' are missing; run 'make deps'" >&2; exit 1; }; done

# Installs only what is missing, so it is a no-op on a ready machine.
deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing:$$missing"; \
	  SUDO=; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "All dependencies are installed."; fi

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
	echo "== symbols"; sh tests/symbols.sh $(B)/libfmnn.so.$(VERSION) || failed=1; \
	echo "== headers"; sh tests/headers.sh "$(CC)" || failed=1; \
	echo "== downstream"; sh tests/downstream.sh "$(MAKE)" || failed=1; \
	if [ $$failed -ne 0 ]; then echo "FAILED"; exit 1; fi; echo "All test suites passed."

test: check

# ---- benchmark ------------------------------------------------------

BENCH_ARGS ?= --threads 2

.PHONY: bench bench-run
bench: $(B)/bench/fmnn_bench

$(B)/bench/fmnn_bench: bench/bench.c $(EXAMPLE_LIB_OBJS) $(STATIC_LIB) $(HEADERS) lib/model_impl.h
	@mkdir -p $(dir $@)
	$(CC) $(APP_CFLAGS) -Ilib -o $@ $< $(EXAMPLE_LIB_OBJS) $(APP_LIBS)

# Prints the same figures as shared/bench/torch_ref.py, for a side-by-side run.
bench-run: bench
	$(B)/bench/fmnn_bench $(BENCH_ARGS)

# ---- experiments ----------------------------------------------------

experiments: deps
	@$(MAKE) --no-print-directory all
	$(B)/examples/fashion_experiments --out fmnn-results

# ---- install --------------------------------------------------------

install: lib
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR)/fmnn $(DESTDIR)$(PKGCONFIGDIR)
	install -m 644 include/fmnn.h $(DESTDIR)$(INCLUDEDIR)/fmnn.h
	install -m 644 $(wildcard include/fmnn/*.h) $(DESTDIR)$(INCLUDEDIR)/fmnn/
	install -m 644 $(STATIC_LIB) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(SHARED_LIB) $(DESTDIR)$(LIBDIR)/
	ln -sf libfmnn.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libfmnn.so
	$(PC_SED) pkgconfig/fmnn.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/fmnn.pc
	@if [ -f docs/fmnn.3 ]; then \
	  install -d $(DESTDIR)$(MANDIR)/man3 && \
	  install -m 644 docs/fmnn.3 $(DESTDIR)$(MANDIR)/man3/fmnn.3; fi

uninstall:
	rm -f $(DESTDIR)$(INCLUDEDIR)/fmnn.h
	rm -f $(addprefix $(DESTDIR)$(INCLUDEDIR)/fmnn/,$(notdir $(wildcard include/fmnn/*.h)))
	-rmdir $(DESTDIR)$(INCLUDEDIR)/fmnn 2>/dev/null
	rm -f $(DESTDIR)$(LIBDIR)/libfmnn.a $(DESTDIR)$(LIBDIR)/libfmnn.so \
	      $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/libfmnn.so.$(VERSION)
	rm -f $(DESTDIR)$(PKGCONFIGDIR)/fmnn.pc $(DESTDIR)$(MANDIR)/man3/fmnn.3

clean:
	rm -rf $(B)
