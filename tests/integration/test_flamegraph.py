#!/usr/bin/env python3
"""heapscope flamegraph: folded stacks and the SVG, checked against known.c's
exact numbers and the model's totals; names that would break XML; --diff;
and the SVG's click-to-zoom in a real browser."""
import os
import re
import sys
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "browser"))
import browser as B  # noqa: E402
import hstest as T  # noqa: E402
from hstest import check, eq  # noqa: E402

SVG = "{http://www.w3.org/2000/svg}"
MiB = 1 << 20
METRICS = {  # metric -> the summary total its folded values add up to
    "peak": "peak_heap_bytes", "leaked": "leaked_bytes", "allocations": "allocations",
    "temporary": "temporary", "bytes": "allocated_bytes",
}
ROOT = "_start;__libc_start_main;__libc_start_call_main;main"


@T.once
def known():
    path, _ = T.record(T.build("known"))
    return path


def flamegraph(*args, expect=0):
    T.need_heapscope()
    p = T.run([T.HEAPSCOPE, "flamegraph", *args])
    check(not T.crashed(p), f"flamegraph crashed (exit {p.returncode}): {T.tail(p.stderr)}")
    eq(p.returncode, expect, f"flamegraph {' '.join(args)} exit status ({T.tail(p.stderr)})")
    return p


def folded(trace, metric):
    """{path: value} of `flamegraph --folded`; every line is 'path value'."""
    out = {}
    # split at "\n" only: a name may hold U+2028, which splitlines() also splits at
    for line in flamegraph(trace, "--folded", "--metric", metric).stdout.rstrip("\n").split("\n"):
        if not line:
            continue
        m = re.fullmatch(r"(.+) (\d+)", line)
        check(m, f"folded line is not 'path value': {line!r}")
        check(m.group(1) not in out, f"folded path twice: {m.group(1)!r}")
        out[m.group(1)] = int(m.group(2))
    return out


def leaf(lines, suffix):
    """The value of the one line whose path ends with suffix (after ROOT-like callers)."""
    found = {p: v for p, v in lines.items() if p == suffix or p.endswith(";" + suffix)}
    check(len(found) == 1, f"{len(found)} folded lines end with {suffix!r}: {sorted(lines)}")
    return next(iter(found.values()))


def svg(trace, metric, *extra):
    out = os.path.join(T.TMP, f"{os.path.basename(trace)}.{metric}.svg")
    flamegraph(trace, "--metric", metric, "-o", out, *extra)
    try:
        root = ET.parse(out).getroot()  # well-formed XML or an exception
    except ET.ParseError as e:
        raise T.Fail(f"{out} is not well-formed XML: {e}")
    frames = {}
    for g in root.iter(SVG + "g"):
        if g.get("class") != "f":
            continue
        title = g.find(SVG + "title").text.split("\n")
        frames.setdefault(title[0], []).append({"title": title, "rect": g.find(SVG + "rect"), "g": g})
    return out, root, frames


def one(frames, name):
    check(len(frames.get(name, [])) == 1, f"{len(frames.get(name, []))} frames named {name!r}; have {sorted(frames)}")
    return frames[name][0]


@T.test("folded: known.c's exact values per metric")
def _():
    t = known()
    eq(folded(t, "peak"), {ROOT: 3 * MiB}, "peak: the 1 and 2 MiB blocks, both in main")
    eq(folded(t, "leaked"), {ROOT + ";f;g": 480}, "leaked: 10 blocks of 48 from g inlined in f")
    eq(folded(t, "allocations"), {ROOT: 2, ROOT + ";f;g": 100, ROOT + ";temporaries": 25}, "allocations")
    eq(folded(t, "temporary"), {ROOT + ";temporaries": 25}, "temporary")
    eq(folded(t, "bytes"), {ROOT: 3 * MiB, ROOT + ";f;g": 4800, ROOT + ";temporaries": 5000}, "bytes")


@T.test("folded: values add up to the model's totals, every metric")
def _():
    for trace in (known(), T.record(T.build("threads"))[0], T.record(T.build("cpp_new"))[0]):
        s = T.report_json(trace)["summary"]
        for metric, total in METRICS.items():
            eq(sum(folded(trace, metric).values()), s[total], f"{os.path.basename(trace)}: sum of --metric {metric}")


@T.test("svg: well-formed, known.c's functions with their exact values")
def _():
    t = known()
    _, root, fr = svg(t, "peak")
    check("3,145,728 B" in one(fr, "main")["title"][1], f"main's tooltip: {one(fr, 'main')['title']}")
    check("in 2 blocks" in one(fr, "main")["title"][1], f"main's tooltip: {one(fr, 'main')['title']}")
    check("100.00%" in one(fr, "all")["title"][1], "the root is not 100%")
    check(root.find(SVG + "script") is not None, "no script for zoom and search")

    _, _, fr = svg(t, "leaked")
    g = one(fr, "g")["title"]
    check(g[1].startswith("480 B in 10 blocks, 100.00% of leaked bytes"), f"g's tooltip under leaked: {g}")
    check(g[2].endswith("(inlined)") and "known.c:" in g[2], f"g's location: {g}")

    _, root, fr = svg(t, "allocations")
    for name, want in (("f", "100 allocations, 4.7 KiB (4,800 B)"), ("temporaries", "25 allocations, 4.9 KiB (5,000 B)"),
                       ("main", "127 allocations")):
        check(one(fr, name)["title"][1].startswith(want), f"{name}'s tooltip: {one(fr, name)['title']}")
    # widths are proportional: f is 100/127 of the root
    w = {n: float(one(fr, n)["rect"].get("width")) for n in ("all", "f", "temporaries")}
    check(abs(w["f"] / w["all"] - 100 / 127) < 1e-3, f"f's width {w['f']} of {w['all']}")
    check(abs(w["temporaries"] / w["all"] - 25 / 127) < 1e-3, f"temporaries' width {w['temporaries']}")
    # callers below callees: f sits above main
    check(float(one(fr, "f")["rect"].get("y")) < float(one(fr, "main")["rect"].get("y")), "f is not above main")


@T.test("svg: every metric is well-formed, an empty one says so")
def _():
    for metric in METRICS:
        svg(known(), metric)
    trace = T.record(T.build("exit3"), expect_rc=3)[0]
    _, root, fr = svg(trace, "temporary")
    if T.report_json(trace)["summary"]["temporary"]:
        check(fr, "temporary allocations but no frame")
    else:
        check(not fr and "No temporary allocations" in "".join(root.itertext()),
              "an empty flame graph without a word")


@T.test("names with markup, quotes, '&', ';' and invalid UTF-8 stay escaped")
def _():
    trace, _ = T.record(B.hostile_program())
    name = B.hostile_name_as_decoded()
    out, root, fr = svg(trace, "allocations")
    check(name in fr, f"the hostile name is not a frame: {sorted(fr)}")
    f = one(fr, name)
    eq(f["title"][1].split(",")[0], "1 allocation", "hostile frame's value")
    data = open(out, "rb").read()
    check(b"<script>alert" not in data and b"</script>&" not in data, "markup from a name reached the SVG")
    check(all(s.tag != SVG + "script" or "alert(1)" not in (s.text or "") for s in root.iter()),
          "a name inside the SVG's script")
    data.decode("utf-8")  # valid UTF-8 throughout
    lines = folded(trace, "allocations")
    want = name.replace("\ufffd", "?").replace(";", ":")
    eq(leaf(lines, "tramp;" + want), 1, "folded line of the hostile frame (';' to ':', bad bytes to '?')")


@T.test("--diff: growth and shrinkage between two builds")
def _():
    src = open(T.source_of("known")).read()
    check("#define N 100" in src and "#define K 10" in src, "known.c's N or K changed; update this test")
    d = os.path.join(T.TMP, "known-v2")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "known.c"), "w") as f:  # the same file name: stacks match by it
        f.write(src.replace("#define N 100", "#define N 150").replace("#define TEMPS 25", "#define TEMPS 5"))
    v2 = os.path.join(d, "known")
    p = T.run([os.environ.get("CC", "cc"), "-O2", "-g", "-o", v2, os.path.join(d, "known.c")])
    check(p.returncode == 0, f"cannot compile the second build: {T.tail(p.stderr)}")
    new, _ = T.record(v2, out=os.path.join(d, "known.hst"))
    base = known()

    lines = flamegraph("--diff", base, new, "--folded", "--metric", "allocations").stdout.splitlines()
    vals = {ln.rsplit(" ", 2)[0]: tuple(map(int, ln.rsplit(" ", 2)[1:])) for ln in lines}
    eq(vals.get(ROOT + ";f;g"), (100, 150), "g: base and new allocations")
    eq(vals.get(ROOT + ";temporaries"), (25, 5), "temporaries: base and new")
    eq(vals.get(ROOT), (2, 2), "main's own allocations")

    out = os.path.join(T.TMP, "diff.svg")
    flamegraph("--diff", base, new, "--metric", "allocations", "-o", out)
    root = ET.parse(out).getroot()
    fills = {}
    for g in root.iter(SVG + "g"):
        if g.get("class") == "f":
            title = g.find(SVG + "title").text.split("\n")
            fills[title[0]] = (g.find(SVG + "rect").get("fill"), title[1])
    r, _, b = map(int, re.findall(r"\d+", fills["g"][0]))
    check(r == 255 and b < 255, f"g grew but is not red: {fills['g']}")
    r, _, b = map(int, re.findall(r"\d+", fills["temporaries"][0]))
    check(b == 255 and r < 255, f"temporaries shrank but is not blue: {fills['temporaries']}")
    check(fills["g"][1].startswith("+50: 100 \u2192 150 (+50.0%)"), f"g's tooltip: {fills['g'][1]}")


def short_labels(out):
    """{full name: short name} of an SVG's frames that have a short label."""
    root = ET.parse(out).getroot()
    return {g.find(SVG + "title").text.split("\n")[0]: g.get("data-s")
            for g in root.iter(SVG + "g") if g.get("class") == "f" and g.get("data-s")}


@T.test("labels: C++ and Rust names shortened, the full name in the tooltip")
def _():
    out, _, _ = svg(T.record(T.build("cpp_new"))[0], "allocations")
    eq(short_labels(out).get("operator new(unsigned long)"), "operator new(\u2026)", "C++ operator new's label")
    try:
        prog = T.rust_csv()
    except T.Skip:
        raise T.Skip("cargo not installed: the Rust names are not checked")
    trace, _ = T.record(prog, cwd=T.example_csv())
    labels = short_labels(svg(trace, "peak")[0])
    for full, short in (
            ("<alloc::vec::Vec<T> as core::iter::traits::collect::FromIterator<T>>::from_iter",
             "<Vec<\u2026> as FromIterator<\u2026>>::from_iter"),
            ("alloc::raw_vec::RawVecInner<A>::reserve", "RawVecInner<\u2026>::reserve"),
            ("core::iter::traits::iterator::Iterator::collect", "Iterator::collect")):
        eq(labels.get(full), short, f"label of {full}")


@T.test("usage errors say what to do")
def _():
    p = flamegraph(known(), "--metric", "nope", "--folded", expect=2)
    check("--metric needs one of peak|leaked|allocations|temporary|bytes" in p.stderr, p.stderr)
    p = flamegraph(os.path.join(T.TMP, "missing.hst"), "--folded", expect=1)
    check(p.stderr.startswith("heapscope: ") and "; " in p.stderr and len(p.stderr.splitlines()) == 1, p.stderr)
    p = flamegraph("--diff", known(), "--folded", expect=2)
    check("--diff needs two traces" in p.stderr, p.stderr)
    out = os.path.join(T.TMP, "no-such-dir", "x.svg")
    p = flamegraph(known(), "-o", out, expect=1)
    check("cannot create" in p.stderr and not os.path.exists(out), p.stderr)


@T.test("browser: the SVG zooms on a click")
def _():
    out, _, _ = svg(known(), "allocations")
    r = B.check(out, "svg")
    eq(r["console_errors"] + r["page_errors"], [], "console errors")
    eq(r["requests"], [], "network requests")
    check(r["frames"] >= 7, f"{r['frames']} frames drawn")
    z = r["zoom"]
    check(z["target"], "no frame narrower than half the graph to click")
    check(z["width"] > z["target"]["w"] * 1.5 and z["width"] > z["target"]["W"] * 0.9,
          f"clicked frame {z['target']['w']:.0f} px wide became {z['width']:.0f} px, not the full width")
    check(z["hidden"] > 0, "zoom hid no frame outside the clicked one")


if __name__ == "__main__":
    T.main()
