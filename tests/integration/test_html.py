#!/usr/bin/env python3
"""heapscope html: the data in the page against the model, self-containment,
escaping of hostile names, the embedded assets being current, and the report
of the seed's CSV example drawn in headless Chromium (with a screenshot in
build/test-artifacts/html-report.png). Also: a 10^7-event trace gives a small
file that opens fast."""
import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "browser"))
import browser as B  # noqa: E402
import hstest as T  # noqa: E402
from hstest import check, eq  # noqa: E402

MiB = 1 << 20
SCREENSHOT = os.path.join(B.ARTIFACTS, "html-report.png")
DATA = re.compile(r'<script type="application/json" id="hs-data">(.*?)</script>', re.S)


def html(trace, *args):
    T.need_heapscope()
    out = os.path.join(T.TMP, os.path.basename(trace) + ".html")
    p = T.run([T.HEAPSCOPE, "html", trace, "-o", out, *args])
    check(not T.crashed(p), f"html crashed (exit {p.returncode}): {T.tail(p.stderr)}")
    eq(p.returncode, 0, f"html exit status ({T.tail(p.stderr)})")
    check(p.stderr.startswith("heapscope: wrote "), f"html said: {p.stderr!r}")
    return out


def page_data(path):
    text = open(path, encoding="utf-8").read()
    m = DATA.search(text)
    check(m, "no JSON data element in the page")
    try:
        return text, json.loads(m.group(1))
    except ValueError as e:
        raise T.Fail(f"the page's data is not JSON: {e}")


@T.once
def known():
    trace, _ = T.record(T.build("known"))
    return trace


@T.test("data: known.c's numbers, as the model has them")
def _():
    trace = known()
    _, d = page_data(html(trace))
    want = T.report_json(trace)["summary"]
    s = d["summary"]
    for k, j in (("allocations", "allocations"), ("frees", "frees"), ("allocated_bytes", "allocated_bytes"),
                 ("temporary", "temporary"), ("peak_heap", "peak_heap_bytes"), ("leaked_bytes", "leaked_bytes"),
                 ("leaked_blocks", "leaked_blocks"), ("peak_rss", "peak_rss_bytes")):
        eq(s[k], want[j], f"summary.{k}")
    eq((s["allocations"], s["peak_heap"], s["leaked_bytes"]), (127, 3 * MiB, 480), "known.c's totals")
    # the call tree's root holds every metric's total: peak, allocations, bytes, temporary, leaked
    t = d["tree"]
    eq(t["v"][0:5], [3 * MiB, 127, 25 * 200 + 3 * MiB + 100 * 48, 25, 480], "tree root values")
    eq(t["parent"][0], -1, "root's parent")
    names = [d["strings"][i] for i in t["name"]]
    for fn in ("main", "f", "g", "temporaries"):
        check(fn in names, f"no {fn} in the call tree: {names}")
    # tables: the top peak stack is the 2 MiB block, the one leak is g's
    top = d["stacks"][d["tables"]["peak"]["rows"][0]]
    eq((top["n"][5], top["n"][6]), (2 * MiB, 1), "top peak stack (bytes, blocks)")
    leak = d["stacks"][d["tables"]["leaks"]["rows"][0]]
    eq((leak["n"][7], leak["n"][8]), (480, 10), "leak stack (bytes, blocks)")
    eq(d["strings"][d["frames"][leak["f"][0]][0]], "g", "leak's innermost frame")
    # the chart's series add up to no more than the heap at every point
    tl = d["timeline"]
    check(tl["heap"] and max(tl["heap"]) == 3 * MiB, f"timeline heap max {max(tl['heap'] or [0])}")
    for i in range(len(tl["heap"])):
        check(sum(sr["v"][i] for sr in tl["series"]) <= tl["heap"][i], f"series exceed the heap at point {i}")
    peak_point = max(range(len(tl["heap"])), key=lambda i: tl["heap"][i])
    eq(sum(sr["v"][peak_point] for sr in tl["series"]), 3 * MiB, "series at the peak")
    eq(sum(h[2] for h in d["hist"]), 127, "histogram counts")
    # the waterfall: both moments, and where the trace has a snapshot its steps add up to RSS
    eq([w["at"] for w in d["waterfall"]], ["peak", "exit"], "waterfall moments")
    for w in d["waterfall"]:
        if w["present"]:
            eq(sum(v for _, v in w["steps"]), w["rss"], f"waterfall at {w['at']}: steps sum to RSS")


@T.test("self-contained: nothing loaded from anywhere, CSP forbids it")
def _():
    text, _ = page_data(html(known()))
    check("default-src 'none'" in text, "no Content-Security-Policy with default-src 'none'")
    for bad in (r"\bsrc\s*=", r"\bhref\s*=", r"url\(", r"@import", r"\bfetch\(", r"XMLHttpRequest", r"WebSocket",
                r"<link\b", r"<iframe\b", r"<img\b"):
        check(not re.search(bad, text), f"the page has {bad}")
    eq(len(re.findall(r"</script", text)), 2, "script elements (data and code)")


@T.test("hostile names stay data: markup, quotes, '&', U+2028, invalid UTF-8")
def _():
    trace, _ = T.record(B.hostile_program())
    path = html(trace)
    raw = open(path, "rb").read()
    raw.decode("utf-8")  # valid UTF-8 throughout
    check(b"<script>alert" not in raw and b"alert(1)</script>" not in raw, "a name's markup reached the page")
    eq(raw.count(b"</script"), 2, "script elements")
    text, d = page_data(path)
    check(B.hostile_name_as_decoded() in d["strings"], "the hostile name is not in the data as written")
    check("\u2028" not in text and "\u2029" not in text, "raw U+2028/2029 in the page")


@T.test("embedded assets are current (src/report/html_assets/embed.py was run)")
def _():
    here = os.path.join(T.ROOT, "src", "report")
    out = os.path.join(T.TMP, "assets")
    os.makedirs(out, exist_ok=True)
    p = T.run([sys.executable, os.path.join(here, "html_assets", "embed.py"), out])
    eq(p.returncode, 0, f"embed.py: {T.tail(p.stderr)}")
    for f in ("html_assets.c", "html_assets.h"):
        check(open(os.path.join(out, f)).read() == open(os.path.join(here, f)).read(),
              f"src/report/{f} is stale: run src/report/html_assets/embed.py and commit it")


@T.test("usage errors say what to do")
def _():
    p = T.run([T.HEAPSCOPE, "html", os.path.join(T.TMP, "missing.hst")])
    eq(p.returncode, 1, "missing trace exit status")
    check(p.stderr.startswith("heapscope: ") and "; " in p.stderr and len(p.stderr.splitlines()) == 1, p.stderr)
    p = T.run([T.HEAPSCOPE, "html", known(), "--metric", "nope"])
    eq(p.returncode, 2, "bad metric exit status")
    p = T.run([T.HEAPSCOPE, "html", known(), "-o", os.path.join(T.TMP, "no-dir", "r.html")])
    eq(p.returncode, 1, "unwritable output exit status")
    check("cannot create" in p.stderr, p.stderr)
    # the default output is beside the trace, .hst replaced by .html
    p = T.run([T.HEAPSCOPE, "html", known()])
    eq(p.returncode, 0, f"default output: {T.tail(p.stderr)}")
    check(os.path.exists(known()[:-4] + ".html"), "no report beside the trace")


# ---- the seed story in a browser --------------------------------------------------

def cargo():
    for c in (os.environ.get("CARGO"), shutil.which("cargo"), os.path.expanduser("~/.cargo/bin/cargo")):
        if c and os.access(c, os.X_OK):
            return c
    return None


@T.once
def csv_trace():
    """The seed's Rust CSV loader on its CSV; the C twin when cargo is missing."""
    d = os.path.join(T.TMP, "csv")
    os.makedirs(d, exist_ok=True)
    p = T.run([sys.executable, os.path.join(T.EXAMPLES, "gen_csv.py"), "-o", os.path.join(d, "example.csv")])
    check(p.returncode == 0, f"gen_csv.py: {T.tail(p.stderr)}")
    c = cargo()
    if c:
        target = os.path.join(T.BUILD, "examples", "csv-rust")
        p = T.run([c, "build", "--release", "--offline", "--locked", "-q", "--manifest-path",
                   os.path.join(T.EXAMPLES, "csv-rust", "Cargo.toml")], env=dict(os.environ, CARGO_TARGET_DIR=target))
        check(p.returncode == 0, f"cargo build: {T.tail(p.stderr)}")
        prog = os.path.join(target, "release", "heaptrace_csv")
    else:
        prog = os.path.join(T.TMP, "csv_load")
        p = T.run([os.environ.get("CC", "cc"), "-O2", "-g", "-o", prog, os.path.join(T.EXAMPLES, "csv-c", "csv_load.c")])
        check(p.returncode == 0, f"cannot compile csv_load.c: {T.tail(p.stderr)}")
    trace, _ = T.record(prog, out=os.path.join(d, "csv.hst"), cwd=d)
    return trace


@T.test("browser: the CSV example's report draws, zooms, switches metric")
def _():
    trace = csv_trace()
    path = html(trace)
    os.makedirs(B.ARTIFACTS, exist_ok=True)
    if os.path.exists(SCREENSHOT):
        os.unlink(SCREENSHOT)
    r = B.check(path, "html", screenshot=SCREENSHOT)
    eq(r["console_errors"], [], "console errors")
    eq(r["page_errors"], [], "uncaught errors")
    eq(r["requests"], [], "network requests")
    eq(r["dialogs"], [], "dialogs")
    eq(r["warnings"], [], "sections that could not be drawn")
    eq(r["scripts"], 2, "script elements")
    s = T.report_json(trace)["summary"]
    # summary, chart, tree, tables, histogram: all drawn
    check(r["cards"] >= 6, f"{r['cards']} summary cards")
    check(r["timeline_layers"] >= 2 and r["timeline_heap"] > 100, f"chart: {r['timeline_layers']} layers")
    check(r["peak_label"] and r["peak_label"].startswith("peak "), f"peak mark: {r['peak_label']!r}")
    check(r["flame_frames"] >= 20, f"{r['flame_frames']} call tree frames")
    check(r["table_rows"] >= 3 and r["hist_bars"] >= 5, f"{r['table_rows']} table rows, {r['hist_bars']} bars")
    check(any("split_str" in x or "split" in x for x in r["table_sites"]), f"top call sites: {r['table_sites'][:5]}")
    check(any("main" in x for x in r["flame_labels"]), "no main among the call tree's labels")
    # a click zooms: the frame then spans the graph, its callers dim above it
    z = r["zoom"]
    check(z["target"], "no frame narrower than half the tree to click")
    check(z["tooltip"] and "share of all" in z["tooltip"], f"hover shows no tooltip: {z['tooltip']!r}")
    check(z["after"]["width"] > z["target"]["W"] * 0.95, f"clicked frame is {z['after']['width']} px, not the width")
    check(z["after"]["above"] > 0 and z["after"]["reset_enabled"], f"after the zoom: {z['after']}")
    check(z["back"], "Escape did not zoom out")
    for m, v in r["metrics"].items():
        eq(v["pressed"], m, f"metric button {m}")
        if m == "leaked" and not s["leaked_bytes"]:
            continue
        check(v["frames"] > 1, f"metric {m}: {v['frames']} frames")
    check(r["search"]["matches"] > 0 and r["search"]["text"].startswith("Matched:"), f"search: {r['search']}")
    check(r["stack_frames"] > 3, f"an opened row shows {r['stack_frames']} frames")
    _, d = page_data(path)
    if any(w["present"] for w in d["waterfall"]):
        check(r["waterfall_rows"] >= 5, f"waterfall: {r['waterfall_rows']} rows drawn")
    else:
        check("no snapshot" in r["waterfall_text"], f"waterfall placeholder: {r['waterfall_text']!r}")
    check(r["render_ms"] < 1000, f"drawing took {r['render_ms']} ms")
    check(os.path.getsize(SCREENSHOT) > 20000, "screenshot missing or empty")


# ---- a big trace ------------------------------------------------------------------

BIG = r"""
/* about 10^7 events: 5M malloc/free pairs from ~800 stacks of depth 3 to 20 */
#include <stdio.h>
#include <stdlib.h>
static void *keep[1 << 16];
static volatile unsigned long sink;
static inline void use(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }
#define SITE(n) __attribute__((noinline)) void *site##n(size_t sz, int d) { \
	void *p = d ? site##n(sz, d - 1) : malloc(sz + n); use(p); sink++; return p; }
SITE(0) SITE(1) SITE(2) SITE(3) SITE(4) SITE(5) SITE(6) SITE(7)
SITE(8) SITE(9) SITE(10) SITE(11) SITE(12) SITE(13) SITE(14) SITE(15)
static void *(*sites[16])(size_t, int) = { site0, site1, site2, site3, site4, site5, site6, site7,
	site8, site9, site10, site11, site12, site13, site14, site15 };
__attribute__((noinline)) void *layer(int a, int b, size_t sz, int d)
{
	void *p = a ? layer(a - 1, b, sz, d) : sites[b](sz, d);
	use(p);
	return p;
}
int main(void)
{
	unsigned long x = 88172645463325252ul;
	for (long i = 0; i < 5000000; i++) {
		x ^= x << 13; x ^= x >> 7; x ^= x << 17;
		void *p = layer((int)(x % 6), (int)((x >> 8) % 16), (x >> 20) % 4096, (int)((x >> 12) % 8));
		unsigned k = (unsigned)((x >> 32) % (1 << 16));
		free(keep[k]);
		keep[k] = p;
	}
	for (unsigned k = 0; k < (1 << 16); k += 2)
		free(keep[k]);
	printf("%lu\n", sink);
	return 0;
}
"""


@T.test("a 10^7-event trace: a report of a few MB that draws in under a second")
def _():
    src = os.path.join(T.TMP, "big.c")
    with open(src, "w") as f:
        f.write(BIG)
    prog = os.path.join(T.TMP, "big")
    p = T.run([os.environ.get("CC", "cc"), "-O2", "-g", "-o", prog, src])
    check(p.returncode == 0, f"cannot compile big.c: {T.tail(p.stderr)}")
    trace, _ = T.record(prog)
    s = T.report_json(trace, "--top", "1")["summary"]
    check(s["allocations"] + s["frees"] >= 9_900_000, f"only {s['allocations'] + s['frees']} events")
    path = html(trace)
    size = os.path.getsize(path)
    check(size < 8 * MiB, f"report of {size} bytes")
    r = B.check(path, "html")
    eq(r["console_errors"] + r["page_errors"], [], "console errors")
    check(r["render_ms"] < 1000, f"drawing took {r['render_ms']} ms")
    check(r["load_ms"] < 3000, f"loading took {r['load_ms']} ms")
    print(f"     big trace: {s['allocations'] + s['frees']:,} events -> {size / MiB:.1f} MiB report,"
          f" loaded in {r['load_ms']:.0f} ms, drawn in {r['render_ms']:.0f} ms", flush=True)


if __name__ == "__main__":
    T.main()
