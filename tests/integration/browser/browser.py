"""browser.py: headless Chromium for the integration tests (test_html.py,
test_flamegraph.py). Debian's chromium package is the browser; the npm
package playwright-core (pinned in package.json here) drives it, installed
on first use into $HEAPSCOPE_BUILD/test-browser from the npm registry.
No chromium, node or npm: the tests that need them are skipped, not passed.
"""
import json
import os
import shutil
import subprocess

import hstest as T

HERE = os.path.dirname(os.path.abspath(__file__))
MODULES = os.path.join(T.BUILD, "test-browser")
ARTIFACTS = os.path.join(T.BUILD, "test-artifacts")


def chromium():
    for c in (os.environ.get("HEAPSCOPE_CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium"):
        if c and os.access(c, os.X_OK):
            return c
    raise T.Skip("chromium not installed (apt-get install chromium)")


@T.once
def driver():
    """Installs playwright-core once; returns the directory holding node_modules."""
    chromium()
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        raise T.Skip("node or npm not installed (apt-get install nodejs npm)")
    pkg = os.path.join(MODULES, "node_modules", "playwright-core", "package.json")
    want = json.load(open(os.path.join(HERE, "package.json")))["dependencies"]["playwright-core"]
    have = json.load(open(pkg)).get("version") if os.path.exists(pkg) else None
    if have != want:
        os.makedirs(MODULES, exist_ok=True)
        shutil.copy(os.path.join(HERE, "package.json"), os.path.join(MODULES, "package.json"))
        p = T.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=MODULES, timeout=600)
        if p.returncode != 0 or not os.path.exists(pkg):
            raise T.Skip(f"cannot install playwright-core from the npm registry: {T.tail(p.stderr)}")
    return MODULES


def check(page, kind, screenshot=None):
    """Loads page (an HTML report or a flame graph SVG) in Chromium; returns what
    tests/integration/browser/check_page.js saw."""
    cfg = {"modules": driver(), "chromium": chromium(), "page": os.path.abspath(page), "kind": kind,
           "screenshot": screenshot, "profile": os.path.join(T.TMP, f"chromium-profile-{os.getpid()}-{kind}")}
    shutil.rmtree(cfg["profile"], ignore_errors=True)
    p = T.run(["node", os.path.join(HERE, "check_page.js"), json.dumps(cfg)], timeout=180)
    T.check(p.returncode == 0, f"check_page.js exit {p.returncode}: {T.tail(p.stderr)}")
    try:
        out = json.loads(p.stdout)
    except ValueError:
        raise T.Fail(f"check_page.js printed no JSON: {p.stdout[:200]!r} {T.tail(p.stderr)}")
    T.check(not out.get("error"), f"browser: {out.get('error')}")
    return out


# x86-64 assembly for a function whose symbol name holds markup, quotes, an
# ampersand, ';' and bytes that are not UTF-8: no C compiler takes such a name,
# the assembler does when it is quoted. The C test program calls it.
HOSTILE_NAME = b'evil<script>alert(1)</script>&amp;\\"q\'\xff\xfe;x\xe2\x80\xa8y'


def hostile_program():
    """Builds the program whose allocating function has a hostile name (x86-64 only)."""
    import platform
    if platform.machine() not in ("x86_64", "AMD64"):
        raise T.Skip("the hostile-name program is x86-64 assembly")

    def cstr(b):
        return '"' + "".join(chr(c) if 32 <= c < 127 and c not in (34, 92, 63) else "\\%03o" % c for c in b) + '"'
    name = cstr(b'"' + HOSTILE_NAME + b'"')
    src = f"""#include <stdlib.h>
/* a function named {{HOSTILE}} that allocates 100 bytes, called by tramp() */
__asm__(".text\\n"
	".type " {name} ", @function\\n"
	{name} ":\\n"
	".Lhostile:\\n"
	".cfi_startproc\\n"
	"\\tsubq $8, %rsp\\n"
	"\\t.cfi_def_cfa_offset 16\\n"
	"\\tmovl $100, %edi\\n"
	"\\tcall malloc@PLT\\n"
	"\\taddq $8, %rsp\\n"
	"\\t.cfi_def_cfa_offset 8\\n"
	"\\tret\\n"
	".cfi_endproc\\n"
	".size " {name} ", .-.Lhostile\\n"
	".globl tramp\\n.type tramp, @function\\n"
	"tramp:\\n"
	".cfi_startproc\\n"
	"\\tsubq $8, %rsp\\n"
	"\\t.cfi_def_cfa_offset 16\\n"
	"\\tcall .Lhostile\\n"
	"\\taddq $8, %rsp\\n"
	"\\t.cfi_def_cfa_offset 8\\n"
	"\\tret\\n"
	".cfi_endproc\\n"
	".size tramp, .-tramp\\n");
void *tramp(void);
int main(void)
{{
	void *p = tramp();
	__asm__ volatile("" : : "r"(p) : "memory");
	return 0;
}}
"""
    path = os.path.join(T.TMP, "hostile.c")
    with open(path, "w") as f:
        f.write(src)
    out = os.path.join(T.TMP, "hostile")
    p = T.run([os.environ.get("CC", "cc"), "-O2", "-g", "-o", out, path])
    T.check(p.returncode == 0, f"cannot compile hostile.c: {T.tail(p.stderr)}")
    return out


def hostile_name_as_decoded():
    """The name as a reader sees it: invalid bytes replaced by U+FFFD."""
    return HOSTILE_NAME.replace(b"\\", b"").decode("utf-8", "replace")
