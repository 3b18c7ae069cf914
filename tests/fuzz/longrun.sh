#!/bin/sh
# tests/fuzz/longrun.sh: the long fuzz run of bench/FUZZING.md, one target
# after the other on one core. Builds the libFuzzer targets (make fuzz-fast:
# UBSan; or FUZZ_BUILD=build-fuzz after make fuzz: ASan+UBSan), runs each for
# RUNS executions from a scratch copy of its seed corpus, and prints each
# target's figures. Crashes land in WORK/crash-*: minimize one with
# `TARGET -minimize_crash=1 -runs=100000 CRASH`, add it to
# tests/fuzz/corpus/TARGET/regress-*, fix the reader.
#
# usage: [TARGETS="trace smaps symbols symcache"] tests/fuzz/longrun.sh [RUNS] [WORK]
#        (default 10000000 runs each, in a temp dir; an old WORK resumes its corpora)
cd "$(dirname "$0")/../.." || exit 2
root=$(pwd)
runs=${1:-10000000}
work=${2:-$(mktemp -d "${TMPDIR:-/tmp}/heapscope-fuzz.XXXXXX")}
build=${FUZZ_BUILD:-build-fuzz-fast}
[ "$build" = build-fuzz ] && target=fuzz || target=fuzz-fast
make --no-print-directory -s "$target" || exit 2
status=0
for t in ${TARGETS:-trace smaps symbols symcache}; do
	bin=$build/fuzz/fuzz_$t
	[ -x "$bin" ] || continue
	mkdir -p "$work/$t/corpus"
	start=$(date +%s)
	(cd "$work/$t" && nice -n 10 "$root/$bin" -runs="$runs" -max_len=8192 -timeout=60 \
		-rss_limit_mb=2048 -malloc_limit_mb=256 -print_final_stats=1 \
		-artifact_prefix="$work/$t-" corpus "$root/tests/fuzz/corpus/$t") \
		>"$work/$t.log" 2>&1
	rc=$?
	end=$(date +%s)
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t.log")
	crashes=$(ls "$work/$t-crash-"* "$work/$t-leak-"* "$work/$t-oom-"* "$work/$t-timeout-"* 2>/dev/null | wc -l)
	echo "fuzz_$t: ${execs:-?} executions in $((end - start)) s, exit $rc, $crashes crash files, log $work/$t.log"
	[ "$rc" -eq 0 ] || status=1
done
exit $status
