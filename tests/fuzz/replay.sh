#!/bin/sh
# tests/fuzz/replay.sh: the fuzz targets, built with a plain main() under
# ASan and UBSan (make fuzz-replay), run once on every file of their corpus:
# the seeds and every input that once crashed a reader (regress-*). One
# process per file, so one finding does not hide the next.
# Prints one line per file and "N passed, M failed"; exits 1 if any failed.
#
# usage: tests/fuzz/replay.sh [TARGET...]   (default: every built target)
cd "$(dirname "$0")/../.." || exit 2
make --no-print-directory -s fuzz-replay >/dev/null || { echo "FAIL fuzz_replay: cannot build (make fuzz-replay)"; echo "0 passed, 1 failed"; exit 1; }
# An allocation over 256 MiB from a few KiB of input is a finding too;
# leaks are reported (detect_leaks) wherever LeakSanitizer can run.
ASAN_OPTIONS=${ASAN_OPTIONS:-max_allocation_size_mb=256:allocator_may_return_null=0:abort_on_error=0:detect_leaks=1}
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS UBSAN_OPTIONS
passed=0
failed=0
out=$(mktemp "${TMPDIR:-/tmp}/heapscope-replay.XXXXXX") || exit 2
trap 'rm -f "$out"' EXIT
targets=${*:-trace symbols symcache smaps}
for t in $targets; do
	bin=build-asan/fuzz/fuzz_$t
	if [ ! -x "$bin" ]; then
		# smaps is built once src/procfs exists; the others always
		[ "$t" = smaps ] && [ ! -d src/procfs ] && continue
		failed=$((failed + 1))
		echo "FAIL fuzz_replay: $bin not built"
		continue
	fi
	for f in tests/fuzz/corpus/$t/*; do
		[ -f "$f" ] || continue
		if "$bin" "$f" >"$out" 2>&1; then
			passed=$((passed + 1))
			echo "ok   fuzz_replay: $t/$(basename "$f")"
		else
			failed=$((failed + 1))
			echo "FAIL fuzz_replay: $t/$(basename "$f") (reproduce: $bin $f)"
			grep -m 12 -E "ERROR|SUMMARY|runtime error|#[0-9] " "$out" | sed 's/^/    /'
		fi
	done
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
