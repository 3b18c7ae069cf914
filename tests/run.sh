#!/bin/sh
# tests/run.sh: runs every unit test binary ($BUILD/tests/test_*) and every
# integration test (tests/integration/test_*.py), one after the other.
# A unit binary passes with status 0 and is skipped with 77 (automake's
# convention); an integration file prints one "ok", "FAIL" or "skip" line per
# test. Skipped tests are counted apart: only a missing optional tool
# (valgrind, cargo) skips; a missing or broken heapscope fails.
# Ends with "N passed, M failed, K skipped"; exits 1 if any failed.
#
# usage: tests/run.sh [PATTERN]   (runs only the tests whose file name contains PATTERN)
cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
pattern=${1:-}
passed=0
failed=0
skipped=0

tmp=$(mktemp -d "${TMPDIR:-/tmp}/heapscope-test.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

matches() {
	[ -z "$pattern" ] && return 0
	case "$1" in *"$pattern"*) return 0 ;; esac
	return 1
}

# timeout(1) keeps a hung test from hanging the run; without it, run as is.
limit() {
	if command -v timeout >/dev/null 2>&1; then
		timeout "$@"
	else
		shift
		"$@"
	fi
}

echo "== unit tests"
for t in "$BUILD"/tests/test_*; do
	[ -f "$t" ] && [ -x "$t" ] || continue
	name=$(basename "$t")
	matches "$name" || continue
	limit 300 "$t" >"$tmp/out" 2>&1
	rc=$?
	case $rc in
	0)
		passed=$((passed + 1))
		echo "ok   $name" ;;
	77)
		skipped=$((skipped + 1))
		echo "skip $name" ;;
	*)
		failed=$((failed + 1))
		echo "FAIL $name (exit $rc)"
		tail -n 20 "$tmp/out" | sed 's/^/    /' ;;
	esac
done

echo "== integration tests"
py=$(command -v python3)
# run_py FILE [VAR=value]: one integration file, in that environment (named
# on each of its lines)
run_py() {
	t=$1
	name=$(basename "$t" .py)
	if [ -z "$py" ]; then
		failed=$((failed + 1))
		echo "FAIL $name: python3 not found"
		return
	fi
	limit 1800 env ${2:-} HEAPSCOPE_BUILD=$BUILD HEAPSCOPE_TEST_TMP=$tmp/$name "$py" "$t" >"$tmp/raw" 2>&1
	rc=$?
	sed "s/^\(ok   \|FAIL \|skip \)$name/&${2:+ ($2)}/" "$tmp/raw" >"$tmp/out"
	cat "$tmp/out"
	p=$(grep -c '^ok ' "$tmp/out")
	f=$(grep -c '^FAIL ' "$tmp/out")
	s=$(grep -c '^skip ' "$tmp/out")
	# A file that died or hung without saying FAIL still failed.
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		echo "FAIL $name: exited $rc"
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	skipped=$((skipped + s))
}
for t in tests/integration/test_*.py; do
	[ -f "$t" ] || continue
	matches "$(basename "$t" .py)" && run_py "$t"
done
# The threads' tests again with the ring protocol of processes that cannot
# use membarrier (test_clock and test_ring run both themselves).
for t in tests/integration/test_threads.py tests/integration/test_robust_threads.py; do
	[ -f "$t" ] || continue
	matches "$(basename "$t" .py)" && run_py "$t" HEAPSCOPE_RING=fence
done

# The readers under AddressSanitizer and UndefinedBehaviorSanitizer: the unit
# tests, recordings and every output of a sanitized CLI, and the fuzz corpus
# replayed (tests/sanitize.sh, tests/fuzz/replay.sh).
if matches "sanitize"; then
	echo "== sanitizers and fuzz corpus"
	if ! make --no-print-directory sanitize-build >"$tmp/out" 2>&1; then
		failed=$((failed + 1))
		echo "FAIL sanitize: the ASan/UBSan build failed"
		tail -n 20 "$tmp/out" | sed 's/^/    /'
	else
		BUILD=$BUILD limit 1800 sh tests/sanitize.sh >"$tmp/out" 2>&1
		rc=$?
		grep -E '^(ok|FAIL|skip) ' "$tmp/out" | grep -v '^ok '
		p=$(grep -c '^ok ' "$tmp/out")
		f=$(grep -c '^FAIL ' "$tmp/out")
		s=$(grep -c '^skip ' "$tmp/out")
		echo "ok   sanitize: $p checks passed under ASan and UBSan"
		if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
			f=1
			echo "FAIL sanitize: exited $rc"
			tail -n 20 "$tmp/out" | sed 's/^/    /'
		fi
		passed=$((passed + p))
		failed=$((failed + f))
		skipped=$((skipped + s))
	fi
fi

if [ "$skipped" -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
