#!/bin/sh
# bench/run.sh: heapscope against heaptrack, side by side (`make bench`).
#
# For each workload: the program plain, under `heapscope record`, and under
# `heaptrack`, alternately, BENCH_ROUNDS rounds (the order rotates each
# round); then `heapscope report` against `heaptrack_print` on the same
# workload's traces; then `heapscope report` on synthetic traces of 10^8 and
# 10^9 events (bench/gen_trace.c). bench/summarize.py turns the raw figures
# into the tables of bench/RESULTS.md (between its bench:begin/end markers;
# the rest of that file is written by hand).
#
# Environment:
#   BENCH_ROUNDS=5       rounds per workload (medians and min-max over them)
#   BENCH_QUICK=1        a two-minute smoke run: small inputs, 1 round, 10^7-event synthetic trace
#   BENCH_ONLY="a b"     only these workloads (names as in the table)
#   BENCH_SYNTH="1e8 1e9"  synthetic trace sizes ("" skips them)
#   BENCH_MEM_CAP_MB=8192  address-space cap for every run (heaptrack's interpreter can grow without bound)
#   BENCH_TIMEOUT=900    seconds before a run is killed
#   BENCH_OUT=bench/RESULTS.md
#   BENCH_KEEP=1         keep traces and logs in build/bench
#   BENCH_COMMIT=abc123  the commit to name when the tree is not a git checkout
#
# Every timing is reported, none is a pass/fail test: the machine is shared.
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
	ROUNDS=${BENCH_ROUNDS:-1}
	SYNTH=${BENCH_SYNTH-1e7}
else
	ROUNDS=${BENCH_ROUNDS:-5}
	SYNTH=${BENCH_SYNTH-1e8 1e9}
fi
ONLY=${BENCH_ONLY:-}
CAP_MB=${BENCH_MEM_CAP_MB:-8192}
TIMEOUT=${BENCH_TIMEOUT:-900}
OUT=${BENCH_OUT:-bench/RESULTS.md}
W=$BUILD/bench
HEAPSCOPE=${BENCH_HEAPSCOPE:-$BUILD/heapscope}   # BENCH_HEAPSCOPE: an absolute path
CC=${CC:-cc}
PY=/usr/bin/python3   # the system's, not a version manager's shim

die() {
	echo "bench: $*" >&2
	exit 1
}
note() { echo "bench: $*" >&2; }

[ -x "$HEAPSCOPE" ] || die "$HEAPSCOPE is missing; run 'make' first"
[ -f "$BUILD/libheapscope-core.a" ] || die "$BUILD/libheapscope-core.a is missing; run 'make $BUILD/libheapscope-core.a'"
command -v heaptrack >/dev/null 2>&1 || die "heaptrack is not installed: apt-get install heaptrack"
command -v heaptrack_print >/dev/null 2>&1 || die "heaptrack_print is not installed: apt-get install heaptrack"
command -v zstd >/dev/null 2>&1 || die "zstd is not installed: apt-get install zstd"
[ -x "$PY" ] || die "$PY is missing: apt-get install python3"

rm -rf "$W/runs" "$W/logs" "$W/traces" "$W/cache"
# heapscope's symbol cache starts empty: each workload's first heapscope
# round fills it, the next ones use it (a user's repeated runs); the
# csv-rust-seed-cold row runs with --no-cache, as a first run would
export XDG_CACHE_HOME="$W/cache"
mkdir -p "$XDG_CACHE_HOME" || die "cannot create $XDG_CACHE_HOME"
mkdir -p "$W/bin" "$W/runs" "$W/logs" "$W/traces" "$W/in" || die "cannot create $W"
RAW=$W/raw.tsv
: >"$RAW"

# ---- build the tools and the workloads --------------------------------

note "building the tools and workloads in $W"
$CC -O2 -Wall -o "$W/bin/benchrun" bench/tools/benchrun.c || die "cannot build benchrun"
$CC -O2 -Wall -shared -fPIC -o "$W/bin/procstat.so" bench/tools/procstat.c || die "cannot build procstat.so"
$CC -O2 -g -Wall -std=c11 -Isrc -Itests/unit -o "$W/bin/gen_trace" bench/gen_trace.c "$BUILD/libheapscope-core.a" \
	$(pkg-config --libs libzstd 2>/dev/null || echo -lzstd) || die "cannot build gen_trace"
$CC -O2 -g -pthread -o "$W/bin/alloc_heavy" bench/workloads/alloc_heavy.c || die "cannot build alloc_heavy"
$CC -O2 -g -o "$W/bin/csv_load" examples/csv-c/csv_load.c || die "cannot build csv_load"
cargo=$(command -v cargo 2>/dev/null)
[ -n "$cargo" ] || [ ! -x "$HOME/.cargo/bin/cargo" ] || cargo=$HOME/.cargo/bin/cargo
RUST_BIN=$BUILD/examples/csv-rust/release/heaptrace_csv
if [ -n "$cargo" ]; then
	CARGO_TARGET_DIR=$BUILD/examples/csv-rust "$cargo" build -q --release --offline --locked \
		--manifest-path examples/csv-rust/Cargo.toml || note "cargo build failed: the Rust workloads are skipped"
else
	note "cargo not found: the Rust workloads are skipped"
fi

# ---- inputs ------------------------------------------------------------

if [ "$QUICK" = 1 ]; then
	CSV_SCALE=5 CALLS=1000000 BIGC_FUNCS=30 PY_N=100000
else
	CSV_SCALE=50 CALLS=10000000 BIGC_FUNCS=200 PY_N=200000
fi
mkdir -p "$W/in/csv1" "$W/in/csvN"
$PY examples/gen_csv.py -o "$W/in/csv1/example.csv" 2>/dev/null || die "gen_csv.py failed"
$PY examples/gen_csv.py --scale "$CSV_SCALE" -o "$W/in/csvN/example.csv" 2>/dev/null || die "gen_csv.py failed"
$PY bench/workloads/gen_bigc.py -n "$BIGC_FUNCS" -o "$W/in/big.c" || die "gen_bigc.py failed"

# cc1's own command line, as the gcc driver would run it (gcc -###)
CC1_LINE=$(cd "$W/in" && gcc -### -O2 -g -c big.c -o big.o 2>&1 | grep '/cc1 ' | head -n 1)
[ -n "$CC1_LINE" ] || die "gcc -### shows no cc1 command line"
# its words, with the temporary assembler output replaced by ours
CC1_ARGS=$(echo "$CC1_LINE" | sed -e 's/"//g' -e 's| -o [^ ]*| -o big.s|' -e 's/^ *//')

# ---- workloads ---------------------------------------------------------
#
# wl NAME sets: W_DIR (run there), W_ENV (extra environment, one VAR=value),
# W_COMM (the target's process name, for telling it from the profiler's),
# W_CMD (the command's words). Names are the table's.

ALL="alloc-1t alloc-2t csv-c csv-rust csv-rust-seed csv-rust-seed-cold cc1 python-dict"

wl() {
	W_DIR=. W_ENV= W_CMD= W_COMM= W_HSOPT=
	case $1 in
	alloc-1t) W_COMM=alloc_heavy W_CMD="$W/bin/alloc_heavy -n $CALLS" ;;
	alloc-2t) W_COMM=alloc_heavy W_CMD="$W/bin/alloc_heavy -t 2 -n $CALLS" ;;
	csv-c) W_COMM=csv_load W_CMD="$W/bin/csv_load $W/in/csvN/example.csv" ;;
	csv-rust) [ -x "$RUST_BIN" ] || return 1
		W_DIR=$W/in/csvN W_COMM=heaptrace_csv W_CMD=$RUST_BIN ;;
	csv-rust-seed) [ -x "$RUST_BIN" ] || return 1
		W_DIR=$W/in/csv1 W_COMM=heaptrace_csv W_CMD=$RUST_BIN ;;
	csv-rust-seed-cold) [ -x "$RUST_BIN" ] || return 1 # heapscope without its symbol cache
		W_DIR=$W/in/csv1 W_COMM=heaptrace_csv W_CMD=$RUST_BIN W_HSOPT=--no-cache ;;
	cc1) W_DIR=$W/in W_COMM=cc1 W_CMD=$CC1_ARGS ;;
	python-dict) W_ENV=PYTHONMALLOC=malloc W_COMM=python3
		W_CMD="$PY bench/workloads/pydict.py $PY_N" ;;
	*) return 1 ;;
	esac
	return 0
}

# A path to use from W_DIR: the program's path is absolute or from the root.
from_dir() {
	case $1 in
	/*) echo "$1" ;;
	*) echo "$ROOT/$1" ;;
	esac
}

# run_one TOOL WORKLOAD ROUND: one run; appends its figures to raw.tsv
run_one() {
	tool=$1 name=$2 round=$3
	base=$W/runs/$name.$tool.$round
	log=$W/logs/$name.$tool.$round.err
	set -- $W_CMD
	prog=$(from_dir "$1")
	shift
	case $tool in
	plain) set -- "$prog" "$@" ;;
	heapscope)
		rm -f "$W/traces/$name.hst"
		set -- "$HEAPSCOPE" record -f $W_HSOPT -o "$W/traces/$name.hst" -- "$prog" "$@" ;;
	heaptrack)
		rm -f "$W/traces/$name.ht.zst"
		set -- heaptrack -o "$W/traces/$name.ht" "$prog" "$@" ;;
	esac
	rm -f "$base.procstat"
	res=$(env $W_ENV "$W/bin/benchrun" -m "$CAP_MB" -T "$TIMEOUT" -C "$W_DIR" -e "$log" \
		-p "$W/bin/procstat.so" -s "$base.procstat" -- "$@")
	procs=$(tr '\n' ';' <"$base.procstat" 2>/dev/null)
	printf 'run\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$tool" "$round" "$W_COMM" "$res" "$procs" >>"$RAW"
	case $res in *status=0*) ;; *) note "$name under $tool: $res (see $log)" ;; esac
}

# time_report TOOL WORKLOAD ROUND: the report of the workload's trace
time_report() {
	tool=$1 name=$2 round=$3
	log=$W/logs/$name.report-$tool.$round.err
	case $tool in
	heapscope) [ -s "$W/traces/$name.hst" ] || return 0
		set -- "$HEAPSCOPE" report "$W/traces/$name.hst" ;;
	heaptrack) [ -s "$W/traces/$name.ht.zst" ] || return 0
		set -- heaptrack_print "$W/traces/$name.ht.zst" ;;
	esac
	res=$("$W/bin/benchrun" -m "$CAP_MB" -T "$TIMEOUT" -e "$log" -- "$@")
	printf 'report\t%s\t%s\t%s\t%s\n' "$name" "$tool" "$round" "$res" >>"$RAW"
}

uname_m=$(uname -m)
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
mem_kb=$(sed -n 's/^MemTotal:[[:space:]]*\([0-9]*\).*/\1/p' /proc/meminfo)
distro=$(sed -n 's/^PRETTY_NAME="\(.*\)"/\1/p' /etc/os-release 2>/dev/null)
hyper=$(lscpu 2>/dev/null | sed -n 's/^Hypervisor vendor:[[:space:]]*//p')
{
	printf 'meta\tdate\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
	printf 'meta\tmachine\t%s cores (%s), %s, %s GiB memory, Linux %s, %s%s\n' "$(nproc)" "$cpu" "$uname_m" \
		"$((mem_kb / 1048576))" "$(uname -r)" "$distro" "${hyper:+, a $hyper virtual machine}"
	if [ -n "${BENCH_COMMIT:-}" ]; then
		printf 'meta\tcommit\t%s\n' "$BENCH_COMMIT"
	else
		printf 'meta\tcommit\t%s%s\n' "$(git rev-parse --short HEAD 2>/dev/null)" \
			"$(git diff --quiet HEAD -- src 2>/dev/null || echo ' (with uncommitted changes in src/)')"
	fi
	printf 'meta\theaptrack\t%s\n' "$(heaptrack --version 2>&1 | head -n 1)"
	printf 'meta\tgcc\t%s\n' "$(gcc --version | head -n 1)"
	printf 'meta\tpython\t%s\n' "$($PY --version 2>&1)"
	printf 'meta\trounds\t%s\n' "$ROUNDS"
	printf 'meta\tquick\t%s\n' "$QUICK"
	printf 'meta\tcap\t%s\n' "$CAP_MB"
	printf 'meta\tinputs\t%s\n' "examples/gen_csv.py --scale $CSV_SCALE -o build/bench/in/csvN/example.csv; examples/gen_csv.py -o build/bench/in/csv1/example.csv; bench/workloads/gen_bigc.py -n $BIGC_FUNCS -o build/bench/in/big.c; cc1's command line from gcc -### -O2 -g -c big.c"
} >>"$RAW"

# ---- does heapscope reach cc1 through the gcc driver? -------------------

$PY bench/workloads/gen_bigc.py -n 20 -o "$W/in/small.c"
drv_events=$(cd "$W/in" && "$HEAPSCOPE" record -f -o "$W/traces/driver.hst" -- gcc -O2 -c small.c -o small.o 2>&1 |
	sed -n 's/.*heapscope: \([0-9]*\) events.*/\1/p' | tail -n 1)
cc1_small=$(echo "$CC1_ARGS" | sed 's/big\./small./g')
cc1_events=$(cd "$W/in" && "$HEAPSCOPE" record -f -o "$W/traces/cc1small.hst" -- $cc1_small 2>&1 |
	sed -n 's/.*heapscope: \([0-9]*\) events.*/\1/p' | tail -n 1)
printf 'check\tgcc-driver\t%s\t%s\n' "${drv_events:-?}" "${cc1_events:-?}" >>"$RAW"
rm -f "$W/traces/driver.hst" "$W/traces/cc1small.hst"

# ---- the rounds ----------------------------------------------------------

for name in $ALL; do
	if [ -n "$ONLY" ]; then
		case " $ONLY " in *" $name "*) ;; *) continue ;; esac
	fi
	wl "$name" || { note "$name: skipped (its program is missing)"; continue; }
	set -- $W_CMD
	cmd=$(echo "$W_CMD" | sed "s|$ROOT/||g")
	printf 'cmd\t%s\t%s\t%s\t%s\n' "$name" "$(echo "$W_DIR" | sed "s|^$ROOT/||")" "$W_ENV" "$cmd" >>"$RAW"
	note "$name: $ROUNDS round(s) of plain, heapscope, heaptrack"
	r=1
	while [ "$r" -le "$ROUNDS" ]; do
		# rotate the order so no tool always runs first (a cold page cache)
		case $((r % 3)) in
		1) order="plain heapscope heaptrack" ;;
		2) order="heapscope heaptrack plain" ;;
		0) order="heaptrack plain heapscope" ;;
		esac
		for tool in $order; do
			run_one "$tool" "$name" "$r"
		done
		r=$((r + 1))
	done
	# trace sizes and event counts, from the last round's traces
	hs_events=$(sed -n 's/.*heapscope: \([0-9]*\) events.*/\1/p' "$W/logs/$name.heapscope.$ROUNDS.err" | tail -n 1)
	hs_bytes=$(stat -c %s "$W/traces/$name.hst" 2>/dev/null)
	ht_bytes=$(stat -c %s "$W/traces/$name.ht.zst" 2>/dev/null)
	ht_events=
	[ -s "$W/traces/$name.ht.zst" ] && ht_events=$(zstd -dc "$W/traces/$name.ht.zst" 2>/dev/null | LC_ALL=C grep -c '^[-+] ')
	printf 'trace\t%s\t%s\t%s\t%s\t%s\n' "$name" "${hs_events:-}" "${hs_bytes:-}" "${ht_events:-}" "${ht_bytes:-}" >>"$RAW"
	# report time: the two readers alternately on the same workload's traces
	rr=1
	while [ "$rr" -le "$ROUNDS" ] && [ "$rr" -le 3 ]; do
		time_report heapscope "$name" "$rr"
		time_report heaptrack "$name" "$rr"
		rr=$((rr + 1))
	done
	[ "${BENCH_KEEP:-0}" = 1 ] || rm -f "$W/traces/$name.hst" "$W/traces/$name.ht.zst"
done

# ---- synthetic traces ------------------------------------------------------

for n in $SYNTH; do
	f=$W/traces/synthetic.hst
	# a generous bound: 16 bytes an event, and a quarter of the disk left over
	need_kb=$($PY -c "print(int(float('$n') * 16 / 1024))")
	avail_kb=$(df -Pk "$W/traces" | awk 'NR == 2 { print $4 }')
	if [ "$need_kb" -gt $((avail_kb * 3 / 4)) ]; then
		note "synthetic $n: skipped, needs up to $((need_kb / 1024)) MiB and $((avail_kb / 1024)) MiB are free"
		printf 'synth\t%s\tskipped\tdisk\n' "$n" >>"$RAW"
		continue
	fi
	note "synthetic trace of $n events: generate, then report"
	res=$("$W/bin/benchrun" -T 3600 -e "$W/logs/synth.$n.gen.err" -- "$W/bin/gen_trace" -e "$n" -o "$f")
	printf 'synth\t%s\tgen\t%s\t%s\n' "$n" "$res" "$(stat -c %s "$f" 2>/dev/null)" >>"$RAW"
	res=$("$W/bin/benchrun" -m "$CAP_MB" -T 3600 -e "$W/logs/synth.$n.report.err" -- "$HEAPSCOPE" report "$f")
	printf 'synth\t%s\treport\t%s\n' "$n" "$res" >>"$RAW"
	rm -f "$f"
done

note "writing $OUT"
$PY bench/summarize.py "$RAW" "$OUT" || die "summarize.py failed"
[ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$W/traces"
note "done: $OUT (raw figures in $RAW)"
