#!/usr/bin/env python3
"""mkcorpus.py: makes the seed corpora of the fuzz targets from real traces.

Records the small programs of tests/programs with build/heapscope, then
writes, for each trace:

  corpus/trace/NAME.trace  the trace, re-encoded block by block (same records)
  corpus/trace/NAME.raw    its raw records, all blocks' worth: fuzz_trace wraps
                           input without the magic into one zstd block
  corpus/symbols/NAME.sym  its TR_STRING and TR_SYMBOL records, with the ips
                           mapped onto the trie that fuzz_symbols.c builds

and, from the symbol cache the recordings filled (one file per object, all
programs' addresses in it), corpus/symcache/OBJECT.cache under the key
fuzz_symcache.c accepts, one under its own key, and damaged variants.

plus a few hand-made seeds for the records the recorder does not write yet
(TR_MAP, TR_MALLINFO, TR_SMAPS) and for truncated files. Paths are rewritten
so the corpus names no directory of the machine it was made on.

usage: tests/fuzz/mkcorpus.py [OUTDIR]   (default tests/fuzz/corpus; needs zstd(1))
"""
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HEAPSCOPE = os.path.join(ROOT, os.environ.get("HEAPSCOPE_BUILD", "build"), "heapscope")
PROGRAMS = ["known", "threads", "family", "exit3", "abort", "pvalloc", "cpp_new"]
MAGIC = b"HEAPSCP\0"

# fuzz_symbols.h, mirrored
FZ_SYM_NODES = 16
FZ_SYM_MODULES = 3


def fz_sym_ip(k):
    return 0x400000 * (1 + k % FZ_SYM_MODULES) + 0x1000 + 0x10 * k


# ---- varints and records ----------------------------------------------------

def get_u(b, pos):
    v, shift = 0, 0
    while True:
        c = b[pos]
        pos += 1
        v |= (c & 0x7F) << shift
        if not c & 0x80:
            return v, pos
        shift += 7


def put_u(v):
    out = bytearray()
    while True:
        c = v & 0x7F
        v >>= 7
        if v:
            out.append(c | 0x80)
        else:
            out.append(c)
            return bytes(out)


# Field layouts of docs/trace-format.md: u = varint, s = length + bytes.
LAYOUT = {
    1: "uuuuuuuuus", 2: "uuuuuss", 3: "uuuu", 4: "uuu", 5: "uuuu", 16: "uuuuuuu", 17: "uuuu", 18: "uuu",
    19: "uu", 20: "uuuuuuuuuuu", 21: "uuuuuuuuu", 32: "us", 48: "uuuuuuuu",
}


def decode(raw):
    """Yields records as (type, [fields]); strings are bytes."""
    pos = 0
    while pos < len(raw):
        t = raw[pos]
        pos += 1
        f = []
        if t in LAYOUT:
            for kind in LAYOUT[t]:
                v, pos = get_u(raw, pos)
                if kind == "s":
                    f.append(bytes(raw[pos:pos + v]))
                    pos += v
                else:
                    f.append(v)
            if t == 1:  # argc, argv
                argc, pos = get_u(raw, pos)
                f.append(argc)
                for _ in range(argc):
                    n, pos = get_u(raw, pos)
                    f.append(bytes(raw[pos:pos + n]))
                    pos += n
        elif t == 22:  # dt process reason n {start end offset perms path 8 sizes}
            for _ in range(4):
                v, pos = get_u(raw, pos)
                f.append(v)
            for _ in range(f[3]):
                for kind in "uuussuuuuuuuu":
                    v, pos = get_u(raw, pos)
                    if kind == "s":
                        f.append(bytes(raw[pos:pos + v]))
                        pos += v
                    else:
                        f.append(v)
        elif t == 33:  # space ip module offset n {function file line flags}
            for _ in range(5):
                v, pos = get_u(raw, pos)
                f.append(v)
            for _ in range(4 * f[4]):
                v, pos = get_u(raw, pos)
                f.append(v)
        else:
            raise ValueError(f"unknown record type {t} at {pos - 1}")
        yield t, f


def encode(t, f):
    out = bytearray([t])
    for v in f:
        if isinstance(v, bytes):
            out += put_u(len(v)) + v
        else:
            out += put_u(v)
    return bytes(out)


def blocks(path):
    """The raw bytes of each block of a trace file."""
    with open(path, "rb") as fh:
        data = fh.read()
    assert data[:8] == MAGIC, path
    pos, out = 16, []
    while pos + 8 <= len(data):
        clen = int.from_bytes(data[pos:pos + 4], "little")
        rlen = int.from_bytes(data[pos + 4:pos + 8], "little")
        frame = data[pos + 8:pos + 8 + clen]
        raw = subprocess.run(["zstd", "-dcq"], input=frame, stdout=subprocess.PIPE, check=True).stdout
        assert len(raw) == rlen
        out.append(raw)
        pos += 8 + clen
    return out


def compress(raw):
    return subprocess.run(["zstd", "-cq", "-3", "--check"], input=raw, stdout=subprocess.PIPE, check=True).stdout


def trace_file(blks):
    out = bytearray(MAGIC + (3).to_bytes(4, "little") + (0).to_bytes(4, "little"))
    for raw in blks:
        comp = compress(raw)
        out += len(comp).to_bytes(4, "little") + len(raw).to_bytes(4, "little") + comp
    return bytes(out)


# ---- seeds ------------------------------------------------------------------

def scrub(b, subst):
    for old, new in subst:
        b = b.replace(old, new)
    return b


def scrubbed_blocks(path, subst):
    out = []
    for raw in blocks(path):
        recs = [(t, [scrub(v, subst) if isinstance(v, bytes) else v for v in f]) for t, f in decode(raw)]
        out.append(b"".join(encode(t, f) for t, f in recs))
    return out


def symbol_seed(blks):
    """The symbol table, its ips mapped onto fuzz_symbols.c's nodes."""
    out, ips = bytearray(), {}
    for raw in blks:
        for t, f in decode(raw):
            if t == 32:
                out += encode(t, f)
            elif t == 33:
                # fuzz_symbols.c's nodes hang from no root: space 0
                ip = ips.setdefault((f[0], f[1]), fz_sym_ip(1 + len(ips) % FZ_SYM_NODES))
                mod = 1 + (ip // 0x400000 - 1) % FZ_SYM_MODULES
                out += encode(t, [0, ip, mod, ip - 0x400000 * mod] + f[4:])
    return bytes(out)


def handmade():
    """Raw record streams for what real traces do not hold yet."""
    proc = encode(1, [0, 7, 0, 0, 0, 0, 1700000000000000000, 4096, 10000000, b"/bin/prog", 1, b"prog"])
    child = encode(1, [1, 8, 1, 1, 0, 5, 1700000000000000000, 4096, 10000000, b"/bin/prog", 1, b"prog"])
    gap = encode(1, [2, 8, 2, 2, 3, 9, 1700000000000000000, 4096, 10000000, b"/bin/static", 2, b"static", b"x"])
    ends = (encode(5, [0, 20, 0, 0]) + encode(5, [1, 15, 3, 0]) + encode(5, [2, 19, 1, 9]))
    thread = encode(3, [5, 0, 8, 0])
    stack = encode(4, [1, 0, 0x401000])
    maps = [encode(20, [10, 0, k, 1, 0x7f0000000000, 8192, 0x7f0000001000, 4096, 3, 0x22, 0])
            for k in (1, 2, 3, 4, 5)]
    mallinfo = encode(21, [10, 0, 135168, 1, 0, 0, 1024, 134144, 134000])
    smaps = encode(22, [10, 0, 1, 3,
                        0x400000, 0x401000, 0, b"r-xp", b"/bin/prog", 4096, 4096, 0, 0, 4096, 0, 0, 0,
                        0x600000, 0x621000, 0, b"rw-p", b"[heap]", 8192, 8192, 0, 0, 0, 8192, 8192, 0,
                        0x7ffc0000, 0x7ffc1000, 0, b"rw-p", b"", 0, 0, 0, 0, 0, 0, 0, 4096])
    smaps_exit = encode(22, [10, 0, 2, 1, 0x600000, 0x621000, 0, b"rw-p", b"[anon:x]", 1, 2, 3, 4, 5, 6, 7, 8])
    alloc = encode(16, [1, 0, 1, 1, 100, 0x600010, 12])
    free = encode(17, [1, 0, 32, 0x600010])
    end = encode(48, [1, 0, 0, 2, 0, 0, 0, 0])
    # a fork child (thread 1) that frees its copy of the parent's block, at
    # the same address: two processes, two blocks
    root2 = encode(4, [2, 0, 0])
    under = encode(4, [3, 2, 0x401000])
    thread1 = encode(3, [1, 1, 9, 1])
    calloc = encode(16, [1, 1, 1, 3, 50, 0x600010, 0])
    cfree = encode(17, [1, 1, 32, 0x600010])
    marks = encode(19, [1, 1]) + encode(18, [1, 1, 4096]) + encode(19, [1, 0])
    return {
        "maps": proc + thread + stack + b"".join(maps) + alloc + free + end,
        "mallinfo_smaps": proc + mallinfo + smaps + thread + alloc + smaps_exit + mallinfo + end,
        "interrupted": proc + thread + alloc + encode(48, [1, 2, 0, 1, 0, 0, 1, 0]),
        "processes": (proc + thread + root2 + under + alloc + child + thread1 + cfree + calloc + gap + marks
                      + free + ends + end),
    }


# ---- symbol cache files (src/symbols/symcache.c) ------------------------------

SC_MAGIC = 0x43535348
SC_VERSION = 1
FZ_SYMCACHE_KEY = b"heapscope symbols\nfuzz\n"  # fuzz_symcache.c, mirrored


def fnv(b):
    h = 0xCBF29CE484222325
    for c in b:
        h = ((h ^ c) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def u32(b, pos):
    return int.from_bytes(b[pos:pos + 4], "little"), pos + 4


def sc_decode(b):
    """(key, strings, entries) of a cache file; entries are
    (addr, [(function, file, line, inlined)]) with string indexes + 1."""
    assert fnv(b[:-8]) == int.from_bytes(b[-8:], "little")
    magic, pos = u32(b, 0)
    version, pos = u32(b, pos)
    assert (magic, version) == (SC_MAGIC, SC_VERSION)
    n, pos = u32(b, pos)
    key, pos = b[pos:pos + n], pos + n
    n, pos = u32(b, pos)
    strs = []
    for _ in range(n):
        k, pos = u32(b, pos)
        strs.append(b[pos:pos + k])
        pos += k
    n, pos = u32(b, pos)
    ents = []
    for _ in range(n):
        addr = int.from_bytes(b[pos:pos + 8], "little")
        k, pos = u32(b, pos + 8)
        frames = []
        for _ in range(k):
            f = []
            for _ in range(4):
                v, pos = u32(b, pos)
                f.append(v)
            frames.append(tuple(f))
        ents.append((addr, frames))
    assert pos == len(b) - 8
    return key, strs, ents


def sc_encode(key, strs, ents):
    le = lambda v, n=4: v.to_bytes(n, "little")
    out = bytearray(le(SC_MAGIC) + le(SC_VERSION) + le(len(key)) + key + le(len(strs)))
    for s in strs:
        out += le(len(s)) + s
    out += le(len(ents))
    for addr, frames in ents:
        out += le(addr, 8) + le(len(frames))
        for f in frames:
            out += b"".join(le(v) for v in f)
    return bytes(out + le(fnv(out), 8))


def symcache_seeds(cache_dir, out, subst):
    files = {}
    for name in sorted(os.listdir(cache_dir)):
        with open(os.path.join(cache_dir, name), "rb") as fh:
            key, strs, ents = sc_decode(fh.read())
        obj = [line[7:] for line in key.split(b"\n") if line.startswith(b"object ")][0]
        files[os.path.basename(obj).decode()] = (scrub(key, subst), [scrub(s, subst) for s in strs], ents)
    for name, (key, strs, ents) in files.items():
        with open(os.path.join(out, name + ".cache"), "wb") as fh:
            fh.write(sc_encode(FZ_SYMCACHE_KEY, strs, ents))
    # the largest: under its own key, and damaged
    name = max(files, key=lambda n: len(sc_encode(FZ_SYMCACHE_KEY, *files[n][1:])))
    key, strs, ents = files[name]
    good = sc_encode(FZ_SYMCACHE_KEY, strs, ents)
    (addr, frames), rest = ents[0], ents[1:]
    variants = {
        "own-key": sc_encode(key, strs, ents),
        "empty": sc_encode(FZ_SYMCACHE_KEY, [], []),
        "cut-half": good[:len(good) // 2],
        "cut-checksum": good[:-3],
        "flipped": good[:40] + bytes([good[40] ^ 0x20]) + good[41:],
        "version": good[:4] + (SC_VERSION + 1).to_bytes(4, "little") + good[8:],
        "key-len": good[:8] + (1 << 31).to_bytes(4, "little") + good[12:],
        # checksums that hold over fields that do not
        "string-index": sc_encode(FZ_SYMCACHE_KEY, strs, [(addr, [(len(strs) + 1, 0, 1, 0)])] + rest),
        "no-frames": sc_encode(FZ_SYMCACHE_KEY, strs, [(addr, [])] + rest),
        "inlined-2": sc_encode(FZ_SYMCACHE_KEY, strs, [(addr, [frames[0][:3] + (2,)] + frames[1:])] + rest),
        "same-addr": sc_encode(FZ_SYMCACHE_KEY, strs, [(addr, frames)] + ents),
        "nul-string": sc_encode(FZ_SYMCACHE_KEY, [b"a\0b"] + strs[1:], ents),
    }
    for v, b in variants.items():
        with open(os.path.join(out, f"{name}-{v}.cache"), "wb") as fh:
            fh.write(b)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests", "fuzz", "corpus")
    if not shutil.which("zstd"):
        sys.exit("mkcorpus: needs zstd(1) (Debian package zstd)")
    if not os.access(HEAPSCOPE, os.X_OK):
        sys.exit(f"mkcorpus: {HEAPSCOPE} is not built (run make)")
    for sub in ("trace", "symbols", "symcache"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="hs-corpus-")
    # the recordings' symbol cache: theirs alone, made afresh
    env = dict(os.environ, XDG_CACHE_HOME=os.path.join(tmp, "xdg"))
    os.makedirs(env["XDG_CACHE_HOME"])
    subst = [(os.path.join(ROOT, "").encode(), b""), (ROOT.encode(), b"."),
             (os.path.join(tmp, "").encode(), b"/tmp/")]
    try:
        for name in PROGRAMS:
            src = os.path.join(ROOT, "tests", "programs", name)
            exe = os.path.join(tmp, name)
            cc = ["g++", src + ".cpp"] if os.path.exists(src + ".cpp") else ["cc", src + ".c", "-lpthread"]
            subprocess.run(cc[:2] + ["-O2", "-g", f"-fdebug-prefix-map={ROOT}=.", "-o", exe] + cc[2:],
                           check=True)
            hst = os.path.join(tmp, name + ".hst")
            subprocess.run([HEAPSCOPE, "record", "-o", hst, "--", exe], cwd=tmp, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            blks = scrubbed_blocks(hst, subst)
            whole = trace_file(blks)
            with open(os.path.join(out, "trace", name + ".trace"), "wb") as fh:
                fh.write(whole)
            with open(os.path.join(out, "trace", name + ".raw"), "wb") as fh:
                fh.write(b"".join(blks))
            with open(os.path.join(out, "symbols", name + ".sym"), "wb") as fh:
                fh.write(symbol_seed(blks))
            if name == "known":
                # cut inside the last block, and after the first one
                with open(os.path.join(out, "trace", "known-cut.trace"), "wb") as fh:
                    fh.write(whole[:len(whole) - 7])
                with open(os.path.join(out, "trace", "known-header.trace"), "wb") as fh:
                    fh.write(whole[:16 + 8])
        symcache_seeds(os.path.join(env["XDG_CACHE_HOME"], "heapscope"), os.path.join(out, "symcache"), subst)
        for name, raw in handmade().items():
            with open(os.path.join(out, "trace", name + ".raw"), "wb") as fh:
                fh.write(raw)
            with open(os.path.join(out, "trace", name + ".trace"), "wb") as fh:
                fh.write(trace_file([raw]))
    finally:
        shutil.rmtree(tmp, True)


if __name__ == "__main__":
    main()
