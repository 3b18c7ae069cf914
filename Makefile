# heapscope: GNU make, pkg-config, C11. `make demo` and `make test` install
# what is missing first (scripts/install-deps.sh), so two commands do all.

CC ?= cc
CFLAGS ?= -O2 -g
BUILD ?= build
PKGS := libdw libelf libzstd zlib libunwind

WARN := -Wall -Wextra
BASE_CFLAGS = -std=c11 $(WARN) -D_GNU_SOURCE -Isrc -Isrc/common -MMD -MP
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs libdw libelf libzstd zlib 2>/dev/null)

PRELOAD_SRC := $(wildcard src/preload/*.c)
CORE_SRC := $(wildcard src/trace/*.c src/record/*.c src/symbols/*.c src/analyze/*.c src/report/*.c)
CLI_SRC := $(wildcard src/cli/*.c)
UNIT_SRC := $(wildcard tests/unit/test_*.c)

PRELOAD_OBJ := $(PRELOAD_SRC:%.c=$(BUILD)/pic/%.o)
CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

CORE_LIBS = $(PKG_LIBS) -liberty -lm

.PHONY: all deps demo test unit clean bench
all: $(BUILD)/heapscope $(BUILD)/libheapscope.so

deps:
	@sh scripts/install-deps.sh

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(PKG_CFLAGS) $(CFLAGS) -c $< -o $@

# The preload library runs inside the target: hidden visibility, only the hooks exported.
$(BUILD)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -fPIC -fvisibility=hidden -ftls-model=initial-exec -c $< -o $@

$(BUILD)/libheapscope.so: $(PRELOAD_OBJ)
	$(CC) -shared -o $@ $^ $(shell pkg-config --libs libunwind 2>/dev/null || echo -lunwind) -ldl -lpthread -Wl,-z,nodelete

$(BUILD)/libheapscope-core.a: $(CORE_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/heapscope: $(CLI_OBJ) $(BUILD)/libheapscope-core.a
	$(CC) -o $@ $(CLI_OBJ) $(BUILD)/libheapscope-core.a $(CORE_LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libheapscope-core.a
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(PKG_CFLAGS) $(CFLAGS) -o $@ $< $(BUILD)/libheapscope-core.a $(CORE_LIBS)

unit: $(UNIT_BIN)

demo: deps
	@$(MAKE) --no-print-directory all
	@sh examples/demo.sh

test: deps
	@$(MAKE) --no-print-directory all unit
	@sh tests/run.sh

bench: deps
	@$(MAKE) --no-print-directory all
	@sh bench/run.sh

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
