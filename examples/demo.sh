#!/bin/sh
# examples/demo.sh: the seed story end to end (run by `make demo` after the build).
# Generates the story's 976 KB CSV, builds the Rust loader, records it with
# heapscope and prints the report. Exits non-zero at the first step that fails.
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
root=$(pwd)
heapscope=$root/$BUILD/heapscope
demo=$root/$BUILD/demo
target=$root/$BUILD/examples/csv-rust

step() { printf '\n== %s\n' "$*"; }
die() {
	echo "demo: $*" >&2
	exit 1
}

[ -x "$heapscope" ] || die "$heapscope is missing; run 'make' first"
mkdir -p "$demo" || die "cannot create $demo"

step "1/4 generate example.csv (12 427 lines, 7 columns, 976 KB)"
python3 examples/gen_csv.py -o "$demo/example.csv" || die "gen_csv.py failed"

step "2/4 build the Rust CSV loader (examples/csv-rust, release with debug info)"
cargo=$(command -v cargo 2>/dev/null)
[ -n "$cargo" ] || [ ! -x "$HOME/.cargo/bin/cargo" ] || cargo=$HOME/.cargo/bin/cargo
[ -n "$cargo" ] || die "cargo not found on PATH nor in ~/.cargo/bin; install Rust or run 'make deps'"
CARGO_TARGET_DIR=$target "$cargo" build --release --offline --locked \
	--manifest-path examples/csv-rust/Cargo.toml || die "cargo build failed"
prog=$target/release/heaptrace_csv
[ -x "$prog" ] || die "cargo built no $prog"

step "3/4 heapscope record -o $BUILD/demo/csv.hst -- heaptrace_csv   (in $BUILD/demo, reads ./example.csv)"
rm -f "$demo/csv.hst"
(cd "$demo" && "$heapscope" record -o csv.hst -- "$prog")
rc=$?
[ "$rc" -eq 0 ] || die "record failed (exit $rc)"
[ -s "$demo/csv.hst" ] || die "record wrote no trace"

step "4/4 heapscope report $BUILD/demo/csv.hst"
"$heapscope" report "$demo/csv.hst" || die "report failed"

printf '\nThe trace stays in %s/demo/csv.hst; try:\n' "$BUILD"
printf '  %s/heapscope report %s/demo/csv.hst --top 5 --depth 8\n' "$BUILD" "$BUILD"
printf '  %s/heapscope report %s/demo/csv.hst --json\n' "$BUILD" "$BUILD"
