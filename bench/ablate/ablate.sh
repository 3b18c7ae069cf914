#!/bin/sh
# bench/ablate/ablate.sh: where the target's time goes, piece by piece.
#
# Builds variants of libheapscope.so from a copy of src/ with one more piece
# of the per-event work switched on at each step (bench/ablate/patch.py), and
# runs a workload under each, alternately, ROUNDS times. The target's own CPU
# time (bench/tools/procstat.c) per variant, over the events, is the cost of
# each piece. Not part of `make bench`; run it on a quiet machine:
#
#   sh bench/ablate/ablate.sh [ROUNDS] [-- PROGRAM ARGS...]
#
# Default workload: bench/workloads/alloc_heavy -n 1500000. Needs `make` first.
set -u
cd "$(dirname "$0")/../.." || exit 1
ROOT=$(pwd)
BUILD=${BUILD:-build}
ROUNDS=${1:-9}
[ $# -gt 0 ] && shift
[ "${1:-}" = -- ] && shift
T=$(mktemp -d) || exit 1
trap 'rm -rf "$T"' EXIT INT TERM
[ -x "$BUILD/heapscope" ] || { echo "ablate: run 'make' first" >&2; exit 1; }
cp -r src "$T/src"
python3 bench/ablate/patch.py "$T" || exit 1
cc -O2 -Wall -o "$T/benchrun" bench/tools/benchrun.c || exit 1
cc -O2 -Wall -shared -fPIC -o "$T/procstat.so" bench/tools/procstat.c || exit 1
if [ $# -eq 0 ]; then
	cc -O2 -g -pthread -o "$T/alloc_heavy" bench/workloads/alloc_heavy.c || exit 1
	set -- "$T/alloc_heavy" -n 1500000
fi
comm=$(basename "$1" | cut -c1-15)

# name, switches and environment; cumulative: each step adds one piece of
# work (B_clock: the clock the recorder chose, the TSC where it is usable;
# X_ steps are alternatives to F_intern)
VARIANTS="
A_interpose:-DABL_NO_CAPTURE -DABL_NO_RING -DABL_NO_MALLINFO
B_clock:-DABL_NO_CAPTURE -DABL_CLOCK_ONLY -DABL_NO_MALLINFO
C_ring:-DABL_NO_CAPTURE -DABL_NO_USABLE -DABL_NO_MALLINFO
D_usable_size:-DABL_NO_CAPTURE -DABL_NO_MALLINFO
E_unwind:-DABL_NO_INTERN -DABL_NO_MALLINFO
F_intern:-DABL_NO_MALLINFO
G_mallinfo:
X_gettime:-DABL_NO_MALLINFO:HEAPSCOPE_CLOCK=monotonic
"
names=plain
echo "$VARIANTS" | while IFS=: read -r name flags env; do
	[ -n "$name" ] || continue
	mkdir -p "$T/v-$name/obj"
	for f in "$T"/src/preload/*.c; do
		cc -std=c11 -D_GNU_SOURCE -I"$T/src" -I"$T/src/common" -O2 -g -fPIC -fvisibility=hidden \
			-ftls-model=initial-exec $flags -c "$f" -o "$T/v-$name/obj/$(basename "$f" .c).o" || exit 1
	done
	cc -shared -o "$T/v-$name/libheapscope.so" "$T/v-$name"/obj/*.o -lunwind -ldl -lpthread -Wl,-z,nodelete || exit 1
	cp "$BUILD/heapscope" "$T/v-$name/heapscope"
done || exit 1
names="plain $(echo "$VARIANTS" | cut -d: -f1 | tr '\n' ' ')"

: >"$T/res"
r=1
while [ "$r" -le "$ROUNDS" ]; do
	for v in $names; do
		rm -f "$T/ps"
		if [ "$v" = plain ]; then
			"$T/benchrun" -p "$T/procstat.so" -s "$T/ps" -- "$@" >/dev/null
		else
			venv=$(echo "$VARIANTS" | sed -n "s/^$v:[^:]*:\{0,1\}//p")
			env $venv "$T/benchrun" -e "$T/err" -p "$T/procstat.so" -s "$T/ps" -- "$T/v-$v/heapscope" record -f -o "$T/t.hst" -- "$@" >/dev/null
		fi
		ev=$(sed -n 's/.*heapscope: \([0-9]*\) events.*/\1/p' "$T/err" 2>/dev/null | tail -n 1)
		awk -v v="$v" -v c="$comm" -v ev="${ev:-0}" '{
			for (i = 1; i <= NF; i++) { split($i, a, "="); f[a[1]] = a[2] }
			cpu = (f["utime_us"] + f["stime_us"]) / 1000
			if (f["comm"] == c) t = cpu; else if (f["comm"] == "heapscope") rec = cpu
		} END { printf "%s %.1f %.1f %s\n", v, t, rec, ev }' "$T/ps" >>"$T/res"
		rm -f "$T/err"
	done
	r=$((r + 1))
done
python3 - "$T/res" <<'PY'
import sys, statistics, collections
cpu, rec, ev, order = collections.defaultdict(list), collections.defaultdict(list), {}, []
for line in open(sys.argv[1]):
    v, t, r, e = line.split()
    if v not in order: order.append(v)
    cpu[v].append(float(t)); rec[v].append(float(r))
    if int(e): ev[v] = int(e)
n = max(ev.values()) if ev else 0
print(f"{'variant':14s} {'target CPU ms (min / median)':>28s} {'step ns/event':>14s} {'recorder ms':>12s}")
prev = None
for v in order:
    m = statistics.median(cpu[v])
    step = f"{(m - prev) * 1e6 / n:+.0f}" if prev is not None and n and not v.startswith("X_") else ""
    if v.startswith("X_"):
        step = f"{(m - statistics.median(cpu['F_intern'])) * 1e6 / n:+.0f} vs F" if n and 'F_intern' in cpu else ""
    print(f"{v:14s} {min(cpu[v]):12.0f} / {m:8.0f}       {step:>14s} {statistics.median(rec[v]):12.0f}")
    if not v.startswith("X_"):
        prev = m
print(f"events: {n}")
PY
