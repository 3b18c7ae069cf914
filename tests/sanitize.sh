#!/bin/sh
# tests/sanitize.sh: the analyzer and the CLI under AddressSanitizer and
# UndefinedBehaviorSanitizer (make sanitize-build: build-asan/, not the
# preload library, which runs inside other programs). Runs the unit tests,
# records a few test programs with the sanitized recorder (the target gets
# the normal libheapscope.so), reports each trace as text and JSON, reports
# damaged traces, and replays the fuzz corpus (tests/fuzz/replay.sh).
# One line per check, then "N passed, M failed"; exits 1 if any failed.
#
# usage: tests/sanitize.sh   (after make all; make sanitize does both)
cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
ASAN=build-asan
passed=0
failed=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/heapscope-asan.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:allocator_may_return_null=1}
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS UBSAN_OPTIONS
# the symbol cache of these recordings is their own, not the user's
XDG_CACHE_HOME=$tmp/xdg-cache
mkdir -p "$XDG_CACHE_HOME"
export XDG_CACHE_HOME

ok() { passed=$((passed + 1)); echo "ok   sanitize: $1"; }
bad() {
	failed=$((failed + 1))
	echo "FAIL sanitize: $1"
	[ -f "$tmp/err" ] && grep -m 8 -E "ERROR|SUMMARY|runtime error|#[0-9] " "$tmp/err" | sed 's/^/    /'
}
# check NAME WANT_STATUS CMD...: passes when CMD exits WANT_STATUS and no
# sanitizer spoke; WANT_STATUS "0|1" accepts either (a refusal with a reason)
check() {
	name=$1 want=$2
	shift 2
	"$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if grep -q -E "Sanitizer|runtime error" "$tmp/err"; then
		bad "$name: sanitizer report"
	elif [ "$want" = "0|1" ] && [ "$rc" -le 1 ]; then
		ok "$name"
	elif [ "$want" = "0|1" ] || [ "$rc" -ne "$want" ]; then
		bad "$name: exit $rc, want $want ($(tail -n 1 "$tmp/err"))"
	else
		ok "$name"
	fi
}

if ! make --no-print-directory -s sanitize-build >"$tmp/build" 2>&1; then
	tail -n 20 "$tmp/build"
	echo "FAIL sanitize: cannot build $ASAN (make sanitize-build)"
	echo "0 passed, 1 failed"
	exit 1
fi
# record finds the preload library next to the binary: the normal one
if [ ! -f "$BUILD/libheapscope.so" ]; then
	echo "FAIL sanitize: $BUILD/libheapscope.so missing (run make all first)"
	echo "0 passed, 1 failed"
	exit 1
fi
ln -sf "$(pwd)/$BUILD/libheapscope.so" "$ASAN/libheapscope.so"

echo "== unit tests under ASan+UBSan"
for t in "$ASAN"/tests/test_*; do
	[ -x "$t" ] && [ -f "$t" ] || continue
	case $t in *.d) continue ;; esac
	check "$(basename "$t")" 0 timeout 600 "$t"
done

echo "== record and report under ASan+UBSan"
hs=$ASAN/heapscope
for p in known threads family exit3 abort cpp_new; do
	src=tests/programs/$p.c
	cc=${CC:-cc}
	[ -f "$src" ] || { src=tests/programs/$p.cpp; cc=${CXX:-g++}; }
	[ -f "$src" ] || continue
	if ! $cc -O2 -g -o "$tmp/$p" "$src" -lpthread 2>"$tmp/err"; then
		bad "compile $p"
		continue
	fi
	want=0
	[ "$p" = exit3 ] && want=3
	[ "$p" = abort ] && want=134
	check "record $p" "$want" "$hs" record -o "$tmp/$p.hst" -- "$tmp/$p"
	# the reports below need a whole trace even when the recorder failed
	grep -q -E "Sanitizer|runtime error" "$tmp/err" &&
		"$BUILD/heapscope" record -f -o "$tmp/$p.hst" -- "$tmp/$p" >/dev/null 2>&1
	[ -f "$tmp/$p.hst" ] || continue
	check "report $p" 0 "$hs" report "$tmp/$p.hst" --top 0 --depth 0
	check "report --json $p" 0 "$hs" report "$tmp/$p.hst" --json --top 0
done

echo "== the other outputs under ASan+UBSan"
for p in known threads cpp_new; do
	t=$tmp/$p.hst
	[ -f "$t" ] || continue
	check "html $p" 0 "$hs" html "$t" -o "$tmp/$p.html"
	check "flamegraph $p" 0 "$hs" flamegraph "$t" -o "$tmp/$p.svg"
	for fmt in pprof speedscope massif folded json; do
		check "export $fmt $p" 0 "$hs" export "$t" --format "$fmt" -o "$tmp/$p.$fmt"
	done
	# a trace without a snapshot of the mappings is refused with a reason
	check "maps $p" "0|1" "$hs" maps "$t"
	check "diff $p $p" 0 "$hs" diff "$t" "$t"
done
[ -f "$tmp/known.hst" ] && [ -f "$tmp/threads.hst" ] &&
	check "diff known threads --json" 0 "$hs" diff "$tmp/known.hst" "$tmp/threads.hst" --json

echo "== damaged traces under ASan+UBSan"
if [ -f "$tmp/known.hst" ]; then
	size=$(wc -c <"$tmp/known.hst")
	cuts="16 20"
	[ "$size" -gt 48 ] && cuts="$cuts $((size / 2)) $((size - 1))"
	for cut in $cuts; do
		head -c "$cut" "$tmp/known.hst" >"$tmp/cut$cut.hst"
		check "report of known.hst cut at $cut bytes" 0 "$hs" report "$tmp/cut$cut.hst"
	done
	# a flipped byte in the middle: corrupt, reported as such (exit 1)
	python3 -c "import sys; b=bytearray(open(sys.argv[1],'rb').read()); b[len(b)//2]^=0xff; open(sys.argv[2],'wb').write(b)" \
		"$tmp/known.hst" "$tmp/flip.hst" && check "report of a corrupt block" 1 "$hs" report "$tmp/flip.hst"
fi
head -c 4096 /dev/urandom >"$tmp/noise.hst"
check "report of noise" 1 "$hs" report "$tmp/noise.hst"
for f in tests/fuzz/corpus/trace/*.trace; do
	check "report --json $(basename "$f")" 0 "$hs" report --json "$f"
done

echo "== fuzz corpus replay under ASan+UBSan"
sh tests/fuzz/replay.sh >"$tmp/replay" 2>&1
rc=$?
grep -E '^(ok|FAIL) ' "$tmp/replay"
last=$(tail -n 1 "$tmp/replay")
p=$(echo "$last" | sed -n 's/^\([0-9]*\) passed.*/\1/p')
f=$(echo "$last" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
passed=$((passed + ${p:-0}))
failed=$((failed + ${f:-0}))
if [ "$rc" -ne 0 ] && [ "${f:-0}" -eq 0 ]; then
	failed=$((failed + 1))
	echo "FAIL sanitize: replay.sh exited $rc"
fi
echo "replay: $last"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
