"""pydict.py: the Python benchmark workload: builds a large dict of strings.

Run with PYTHONMALLOC=malloc (bench/run.sh does), so every object goes
through the C library's malloc and a heap profiler sees it, instead of
pymalloc's arenas, which would hide nearly every allocation.

usage: python3 pydict.py [N]     (default N = 600000 entries)

Deterministic: keys and values come from the entry number only.
"""
import sys

WORDS = ["heap", "stack", "arena", "chunk", "block", "page", "slab", "buffer",
         "record", "vector", "string", "mapping", "frame", "symbol", "trace"]


def build(n):
    d = {}
    for i in range(n):
        key = f"{WORDS[i % 15]}-{i:08d}"
        # values of 10 to ~300 characters, a few repeated words
        value = " ".join(WORDS[(i * 7 + k) % 15] for k in range(1 + i % 40))
        d[key] = value
    # a second pass that rebinds a fifth of the values: frees and reallocations
    for i in range(0, n, 5):
        key = f"{WORDS[i % 15]}-{i:08d}"
        d[key] = d[key].upper()
    return d


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 600000
    d = build(n)
    total = sum(len(v) for v in d.values())
    if len(d) != n:
        sys.exit("pydict: wrong size")
    print(f"pydict: {len(d)} entries, {total} characters of values")


if __name__ == "__main__":
    main()
