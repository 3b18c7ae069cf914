#!/usr/bin/env python3
"""gen_csv.py: writes the CSV the seed story loads, deterministically.

At scale 1 the file has the story's shape: 12 427 lines (one header and
12 426 rows), 7 columns, exactly 999 000 bytes (976 KiB, as `du -h` shows).
At scale N it has N times the rows and N times the bytes. The same scale
always gives the same bytes: the generator uses its own LCG, not `random`,
whose sequences may change between Python versions.

No field is empty, so every field costs the loader exactly one allocation.

usage: gen_csv.py [--scale N] [-o FILE]      (default: ./example.csv)
"""
import argparse
import sys

ROWS = 12426
BYTES = 999000
HEADER = "id,name,email,city,country,amount,note"

FIRST = ["ada", "alan", "grace", "linus", "ken", "dennis", "barbara", "edsger",
         "donald", "margaret", "john", "frances", "niklaus", "tony", "leslie", "radia"]
LAST = ["lovelace", "turing", "hopper", "torvalds", "thompson", "ritchie",
        "liskov", "dijkstra", "knuth", "hamilton", "backus", "allen", "wirth",
        "hoare", "lamport", "perlman"]
CITIES = ["Krakow", "Warsaw", "Berlin", "Lisbon", "Oslo", "Madrid", "Prague",
          "Vienna", "Dublin", "Paris", "Rome", "Athens", "Helsinki", "Tallinn"]
COUNTRIES = ["PL", "DE", "PT", "NO", "ES", "CZ", "AT", "IE", "FR", "IT", "GR", "FI", "EE"]
WORDS = ["heap", "stack", "vector", "string", "buffer", "record", "sheet",
         "field", "memory", "page", "arena", "chunk", "block", "mapping"]


class Lcg:
    """64-bit linear congruential generator (Knuth's MMIX constants)."""

    def __init__(self, seed):
        self.state = seed

    def next(self, n):
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        return (self.state >> 33) % n


def row(rng, i, note_len):
    first = FIRST[rng.next(len(FIRST))]
    last = LAST[rng.next(len(LAST))]
    name = f"{first} {last}"
    email = f"{first}.{last}{rng.next(1000)}@example.com"
    city = CITIES[rng.next(len(CITIES))]
    country = COUNTRIES[rng.next(len(COUNTRIES))]
    amount = f"{rng.next(100000)}.{rng.next(100):02d}"
    prefix = f"{i},{name},{email},{city},{country},{amount},"
    note = []
    while sum(len(w) + 1 for w in note) < note_len:
        note.append(WORDS[rng.next(len(WORDS))])
    note = " ".join(note)
    return prefix, note


def generate(out, scale):
    rows = ROWS * scale
    total = BYTES * scale
    rng = Lcg(0x5EED)
    header = HEADER + "\n"
    out.write(header)
    left = total - len(header)
    for i in range(rows):
        # Each row takes its share of the bytes still to write, so the file
        # ends at exactly `total` bytes; the note column absorbs the slack.
        share = left // (rows - i)
        prefix, note = row(rng, i + 1, 8)
        room = share - len(prefix) - 1
        if room < 1:
            room = 1
        note = (note * (room // len(note) + 1))[:room].rstrip() or "x"
        if len(note) < room:
            note = note + "x" * (room - len(note))
        line = prefix + note + "\n"
        out.write(line)
        left -= len(line)
    return rows + 1, total - left


def main():
    ap = argparse.ArgumentParser(description="Write the seed story's CSV, deterministically.")
    ap.add_argument("--scale", type=int, default=1, help="multiply rows and bytes by N (default 1)")
    ap.add_argument("-o", "--output", default="example.csv", help="output file (default ./example.csv)")
    args = ap.parse_args()
    if args.scale < 1:
        ap.error("--scale must be at least 1")
    with open(args.output, "w", encoding="ascii", newline="\n") as f:
        lines, size = generate(f, args.scale)
    print(f"gen_csv: {args.output}: {lines} lines, {size} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
