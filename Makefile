# PGXS build of the sf_bulk extension: `make && make install`, then `make installcheck` against a running
# server (scripts/test starts a throwaway one). The core (src/core) is compiled without the server
# include path, exactly as CMake builds it for the unit tests.

# PostgreSQL 15's pg_config when it is installed (Debian puts it off PATH), else the one on PATH: Debian's
# pg_buildext runs `make clean` without PG_CONFIG, also on a Debian 13 machine that has only 17.
PG_CONFIG  ?= $(or $(wildcard /usr/lib/postgresql/15/bin/pg_config),pg_config)

EXTENSION   = sf_bulk
MODULE_big  = sf_bulk
DATA        = $(sort $(wildcard extension/sf_bulk--*.sql))

CORE_SRCS   = $(sort $(wildcard src/core/*.cpp))
GLUE_SRCS   = $(sort $(wildcard src/pg/*.cpp))
OBJS        = $(GLUE_SRCS:.cpp=.o) $(CORE_SRCS:.cpp=.o)

# pg_regress tests, listed explicitly; `make check-regress-list` fails when a sql/*.sql is not listed.
REGRESS     = guard fdw_validator ingest_validation ingest preflight query foreign_tables sync results security catalog
REGRESS_OPTS = --dbname=contrib_regression


WERROR     ?= 0
SFB_WARN    = -Wall -Wextra $(if $(filter 1,$(WERROR)),-Werror)

PG_CPPFLAGS = -Isrc -isystem $(shell $(PG_CONFIG) --includedir-server)
PG_CXXFLAGS = -std=c++17 $(SFB_WARN) -Wno-register
SHLIB_LINK  = -lcurl -lssl -lcrypto -lstdc++

# JIT-inlining our functions buys nothing, and PGXS's bitcode step would not see our C++17 flags.
override with_llvm = no

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

CORE_CXXFLAGS = -std=c++17 -O2 -g -fPIC $(SFB_WARN) -Isrc

# A more specific pattern than PGXS's %.o rule: core objects never see the server headers.
src/core/%.o: src/core/%.cpp
	$(CXX) $(CORE_CXXFLAGS) -MMD -MP -c -o $@ $<

-include $(CORE_SRCS:.cpp=.d) $(GLUE_SRCS:.cpp=.d)
src/pg/%.o: override CPPFLAGS += -MMD -MP

EXTRA_CLEAN = src/core/*.d src/pg/*.d

# Benchmarks (not part of the tests): prints a table of figures and ratios measured in one run.
.PHONY: bench
bench:
	bench/run --rows-scale full

.PHONY: check-regress-list
check-regress-list:
	@missing=$$(for f in sql/*.sql; do t=$$(basename $$f .sql); \
	  case " $(REGRESS) " in *" $$t "*) ;; *) echo $$t;; esac; done); \
	if [ -n "$$missing" ]; then echo "sql tests not listed in REGRESS: $$missing"; exit 1; fi

# One version, four places: sf_bulk.control's default_version (what CREATE EXTENSION installs), the user agent
# the module sends (kSfBulkVersion in src/core/http.h), META.json's release and provides versions, and an
# install script extension/sf_bulk--<version>.sql. Checked before every build; `make check-version` alone too.
.PHONY: check-version
check-version:
	@control=$$(sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" sf_bulk.control); \
	agent=$$(sed -n 's/.*kSfBulkVersion *= *"\([^"]*\)".*/\1/p' src/core/http.h); \
	meta=$$(python3 -c 'import json; m = json.load(open("META.json")); \
	  print(*sorted({m["version"], m["provides"]["sf_bulk"]["version"]}))'); \
	bad=; \
	[ -n "$$control" ] || bad="$$bad; no default_version in sf_bulk.control"; \
	[ "$$agent" = "$$control" ] || bad="$$bad; src/core/http.h kSfBulkVersion is '$$agent'"; \
	[ "$$meta" = "$$control.0" ] || bad="$$bad; META.json versions are '$$(echo $$meta)'"; \
	[ -f "extension/sf_bulk--$$control.sql" ] || bad="$$bad; extension/sf_bulk--$$control.sql is missing"; \
	if [ -n "$$bad" ]; then echo "version mismatch: sf_bulk.control says '$$control'$$bad" >&2; exit 1; fi

all: check-version

# PGXN release archive: sf_bulk-<version>.zip with one top directory sf_bulk-<version>/ holding the tree as git
# tracks it at DIST_REF (HEAD: a release is a commit; the tests pass `git stash create` to check the working
# tree's tracked files). The version is META.json's, the one PGXN indexes.
DIST_REF     ?= HEAD
DIST_VERSION  = $(shell python3 -c 'import json; print(json.load(open("META.json"))["version"])')
.PHONY: dist
dist: check-version
	git archive --format=zip --prefix=$(EXTENSION)-$(DIST_VERSION)/ -o $(EXTENSION)-$(DIST_VERSION).zip $(DIST_REF)
	@echo "$(EXTENSION)-$(DIST_VERSION).zip"
