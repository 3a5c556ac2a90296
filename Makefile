# metald — one plain Makefile. `make`, `make check`, `make SANITIZE=1 check`, `make install`, `make V=1`.
PREFIX  ?= /usr/local
DESTDIR ?=
VERSION := 0.1.0

PKGS := libnl-3.0 libnl-route-3.0 libseccomp libcap jansson libnftnl libmnl
# headers only: lib/nft.c and lib/curl-load.c load these with dlopen() when a command needs them
PKGS_DLOPEN := libnftables libcurl

ifeq ($(SANITIZE),1)
B := build/san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
B := build
SANFLAGS :=
endif

CC      ?= cc
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
           -Wno-format-nonliteral
CFLAGS  ?= -O2 -g
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(SANFLAGS) -Ilib \
              -DMETALD_VERSION='"$(VERSION)"' -DMETALD_PREFIX='"$(PREFIX)"' \
              $(shell pkg-config --cflags $(PKGS) $(PKGS_DLOPEN) 2>/dev/null) -MMD -MP
# Libraries with a static archive in their Debian -dev package are linked statically: these
# programs start once per VM operation, and dynamic linking of libnl alone cost ~0.2 ms per start
# (libmnl stays shared: Debian ships no archive of it; libcurl is loaded on first use, above)
STATIC_PKGS := libnl-3.0 libnl-route-3.0 jansson libseccomp libcap libnftnl
LDLIBS  := -Wl,-Bstatic $(shell pkg-config --libs $(STATIC_PKGS) 2>/dev/null) -Wl,-Bdynamic \
           $(shell pkg-config --libs $(filter-out $(STATIC_PKGS),$(PKGS)) 2>/dev/null) -ldl -lpthread -lm
ALL_LDFLAGS := $(LDFLAGS) $(SANFLAGS)

ifeq ($(V),1)
Q :=
else
Q := @
endif

LIB_SRC  := $(wildcard lib/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(B)/%.o)
BIN_SRC  := $(wildcard bin/metald-*.c)
BINS     := $(BIN_SRC:bin/%.c=$(B)/bin/%)
UNIT_SRC := $(wildcard t/unit/test-*.c)
UNITS    := $(UNIT_SRC:t/unit/%.c=$(B)/t/unit/%)
PROBE_SRC := $(wildcard t/helpers/*.c)
PROBES   := $(PROBE_SRC:t/helpers/%.c=$(B)/t/helpers/%)

.PHONY: all deps check check-unit check-bats install uninstall clean demo bench lint-man guest
all: $(B)/lib/libmetald.a $(BINS) $(UNITS) $(PROBES)

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(B)/lib/libmetald.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(B)/bin/%: $(B)/bin/%.o $(B)/lib/libmetald.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(B)/lib/libmetald.a $(LDLIBS)

$(B)/t/unit/%: $(B)/t/unit/%.o $(B)/lib/libmetald.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(B)/lib/libmetald.a $(LDLIBS)

# Probes run inside jails: static, no sanitizer, no libmetald.
$(B)/t/helpers/%: t/helpers/%.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  PROBE   $@")
	$(Q)$(CC) -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -static -o $@ $<

-include $(LIB_OBJ:.o=.d) $(BINS:%=%.d) $(UNITS:%=%.d)

# Debian packages needed to build, test and run the demo (see t/deps.sh).
deps:
	@sh t/deps.sh

# The test command: install dependencies, build (normal and ASan+UBSan), lint the man pages, run
# the unit tests and the bats suites against both builds, then print one summary line.
check: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(MAKE) --no-print-directory SANITIZE=1 all
	$(Q)$(MAKE) --no-print-directory lint-man
	$(Q)METALD_BUILD=$(B) METALD_UNIT_BUILDS="$(sort build $(B) build/san)" \
	    METALD_BATS_BUILDS="$(sort build $(B) build/san)" sh t/run-tests

check-unit: all
	$(Q)METALD_BUILD=$(B) METALD_ONLY=unit sh t/run-tests

check-bats: all
	$(Q)METALD_BUILD=$(B) METALD_ONLY=bats sh t/run-tests

lint-man:
	$(Q)sh t/lint-man

guest: all
	$(Q)sh share/metald/guest/build-guest --out build/guest

demo: deps all
	$(Q)sh share/metald/examples/demo.sh

bench: all
	$(Q)for b in t/bench/*.sh; do [ -e "$$b" ] && bash "$$b"; done

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man7 \
	  $(DESTDIR)$(PREFIX)/share/bash-completion/completions $(DESTDIR)$(PREFIX)/share/zsh/site-functions \
	  $(DESTDIR)$(PREFIX)/share/metald
	install -m 755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 man/man1/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 man/man7/*.7 $(DESTDIR)$(PREFIX)/share/man/man7/
	install -m 644 completions/bash/* $(DESTDIR)$(PREFIX)/share/bash-completion/completions/
	install -m 644 completions/zsh/* $(DESTDIR)$(PREFIX)/share/zsh/site-functions/
	cp -R share/metald/. $(DESTDIR)$(PREFIX)/share/metald/

uninstall:
	rm -f $(BINS:$(B)/bin/%=$(DESTDIR)$(PREFIX)/bin/%)
	rm -rf $(DESTDIR)$(PREFIX)/share/metald

clean:
	rm -rf build
