#!/usr/bin/env python3
"""Hostile surroundings: the trace file never follows a link nor silently
replaces a file; names taken from binaries are escaped in every output
(JSON, text, HTML, SVG); nothing listens on the network; programs that
LD_PRELOAD cannot enter (static, setuid, setgid) are refused with a reason."""
import html.parser
import json
import os
import shutil
import stat
import subprocess
import time
import xml.etree.ElementTree as ET

import hstest as T
from hstest import check, eq

# Names the test gives functions in the object file (ELF names are bytes).
NAMES = {
    "hs_name_script": b"evil<script>alert(1)</script>",
    "hs_name_quotes": b"quote\"and'apos&amp;<b>",
    "hs_name_badutf8": b"bad\xff\xfeutf8\xc3(",
    "hs_name_ctl": b"ctl\\back\tslash\x01",
}


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def rec(out, *opts, prog=None):
    prog = prog or T.build("known")
    return T.run([T.HEAPSCOPE, "record", *opts, "-o", out, "--", prog])


def is_trace(path):
    with open(path, "rb") as f:
        return f.read(8) == b"HEAPSCP\0"


@T.test("trace files: 0600, a symlink at the path refused, never followed")
def _():
    T.need_heapscope()
    d = os.path.join(T.TMP, "links")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    victim = os.path.join(d, "victim")
    with open(victim, "w") as f:
        f.write("precious\n")
    os.chmod(victim, 0o644)
    for opts in ((), ("--force",)):
        link = os.path.join(d, f"link{len(opts)}.hst")
        os.symlink(victim, link)
        p = rec(link, *opts)
        check(p.returncode != 0 and not T.crashed(p), f"record {' '.join(opts)} onto a symlink: exit {p.returncode}")
        check(link in p.stderr, f"the message does not name {link}: {T.tail(p.stderr)}")
        eq(open(victim).read(), "precious\n", f"the link's target after record {' '.join(opts)}")
        eq(oct(mode(victim)), oct(0o644), "the link's target's mode")
        check(os.path.islink(link), "the symlink itself was replaced")
    # a dangling link: its target must not be created
    dangling = os.path.join(d, "dangling.hst")
    os.symlink(os.path.join(d, "created-through-link"), dangling)
    for opts in ((), ("--force",)):
        p = rec(dangling, *opts)
        check(p.returncode != 0, f"record {' '.join(opts)} onto a dangling symlink: exit 0")
        check(not os.path.exists(os.path.join(d, "created-through-link")), "a file was created through the link")
    # a new trace is 0600 whatever the umask
    old = os.umask(0)
    try:
        fresh = os.path.join(d, "fresh.hst")
        p = rec(fresh)
    finally:
        os.umask(old)
    eq(p.returncode, 0, f"record ({T.tail(p.stderr)})")
    eq(oct(mode(fresh)), oct(0o600), "mode of a new trace")


@T.test("an existing file: kept without --force, replaced (0600) with it")
def _():
    d = os.path.join(T.TMP, "existing")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    path = os.path.join(d, "old.hst")
    with open(path, "w") as f:
        f.write("an older trace\n")
    os.chmod(path, 0o644)
    p = rec(path)
    check(p.returncode != 0 and not T.crashed(p), f"record onto an existing file: exit {p.returncode}")
    check("--force" in p.stderr, f"the message does not point to --force: {T.tail(p.stderr)}")
    eq(open(path).read(), "an older trace\n", "the existing file after record without --force")
    p = rec(path, "--force")
    eq(p.returncode, 0, f"record --force ({T.tail(p.stderr)})")
    check(is_trace(path), "--force did not write a trace")
    eq(oct(mode(path)), oct(0o600), "mode of the replaced file")
    T.report_json(path)
    # --force replaces regular files only: not a directory, not a fifo
    fifo = os.path.join(d, "fifo.hst")
    os.mkfifo(fifo)
    p = rec(fifo, "--force")
    check(p.returncode != 0, "record --force onto a fifo: exit 0")
    check(stat.S_ISFIFO(os.lstat(fifo).st_mode), "the fifo was replaced")


def names_program():
    """robust_names with its functions renamed in the object file."""
    if "names" in T._built:
        return T._built["names"]
    cc = os.environ.get("CC", "cc")
    obj = os.path.join(T.TMP, "robust_names.o")
    exe = os.path.join(T.TMP, "robust_names")
    p = T.run([cc, "-O2", "-g0", "-c", "-o", obj, T.source_of("robust_names")])
    check(p.returncode == 0, f"cannot compile robust_names.c: {T.tail(p.stderr)}")
    objcopy = shutil.which("objcopy")
    check(objcopy, "objcopy (binutils) not found")
    args = [objcopy]
    for old, new in NAMES.items():
        args += [b"--redefine-sym", old.encode() + b"=" + new]
    args.append(obj.encode())
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    check(p.returncode == 0, f"objcopy: {p.stderr[-300:]!r}")
    p = T.run([cc, "-o", exe, obj])
    check(p.returncode == 0, f"cannot link robust_names: {T.tail(p.stderr)}")
    T._built["names"] = exe
    return exe


def names_trace():
    path, _ = T.record(names_program(), out=os.path.join(T.TMP, "names.hst"))
    return path


def output_of(args):
    p = subprocess.run([T.HEAPSCOPE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=T.TIMEOUT, cwd=T.TMP)
    check(p.returncode >= 0 and p.returncode < 128, f"{args[0]} crashed: {p.stderr[-300:]!r}")
    return p


@T.test("hostile symbol names: JSON valid, text free of control bytes")
def _():
    path = names_trace()
    p = output_of(["report", path, "--json", "--top", "0"])
    eq(p.returncode, 0, "report --json exit")
    try:
        doc = json.loads(p.stdout.decode("utf-8"))  # strict: invalid UTF-8 fails here
    except (UnicodeDecodeError, ValueError) as e:
        raise T.Fail(f"report --json is not valid UTF-8 JSON: {e}")
    fns = {T.fn(e["stack"][0]) for e in doc["leaks"] if e["stack"]}
    for raw in NAMES.values():
        want = raw.decode("utf-8", errors="replace")
        check(want in fns, f"{want!r} not among the leaks' functions {sorted(fns)}")
    t = output_of(["report", path, "--top", "0"])
    eq(t.returncode, 0, "report exit")
    text = t.stdout
    text.decode("utf-8")  # raises on invalid UTF-8
    bad = sorted({c for c in text if c < 0x20 and c not in (0x0A,)})
    check(not bad, f"text report holds control bytes {bad}")
    check(b"evil<script>" in text, "the text report does not name the function")


class Tags(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.scripts = []
        self.tags = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "script":
            self._in_script = True
            self.scripts.append("")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data


@T.test("hostile symbol names: the HTML report escapes them")
def _():
    path = names_trace()
    out = os.path.join(T.TMP, "names.html")
    p = output_of(["html", path, "-o", out])
    if p.returncode == 2 and b"not built yet" in p.stderr:
        raise T.Skip("heapscope html is not built yet")
    eq(p.returncode, 0, f"html exit ({p.stderr[-200:]!r})")
    data = open(out, "rb").read()
    try:
        page = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise T.Fail(f"the HTML is not valid UTF-8: {e}")
    check("<script>alert(1)" not in page and "alert(1)</script>" not in page,
          "a function name reached the page as markup: <script>alert(1)</script>")
    check("\x01" not in page, "a control byte reached the page")
    check("alert(1)" in page, "the hostile function name is not in the page at all")
    # The same page with plain names has as many <script> elements: none came from a name.
    base, _ = T.record(T.build("known"), out=os.path.join(T.TMP, "plain-for-html.hst"))
    plain = os.path.join(T.TMP, "plain.html")
    eq(output_of(["html", base, "-o", plain]).returncode, 0, "html of a plain trace")
    a, b = Tags(), Tags()
    a.feed(page)
    b.feed(open(plain, encoding="utf-8").read())
    eq(len(a.scripts), len(b.scripts), "<script> elements (hostile names vs plain names)")
    eq(a.tags.count("b"), b.tags.count("b"), "<b> elements (hostile names vs plain names)")


@T.test("hostile symbol names: the SVG flame graph is well-formed and escapes them")
def _():
    path = names_trace()
    out = os.path.join(T.TMP, "names.svg")
    p = output_of(["flamegraph", path, "--metric", "leaked", "-o", out])
    if p.returncode == 2 and b"not built yet" in p.stderr:
        raise T.Skip("heapscope flamegraph is not built yet")
    eq(p.returncode, 0, f"flamegraph exit ({p.stderr[-200:]!r})")
    data = open(out, "rb").read()
    try:
        root = ET.fromstring(data)  # well-formed XML: escaped <, &, quotes, valid UTF-8
    except ET.ParseError as e:
        raise T.Fail(f"the SVG is not well-formed XML: {e}")
    tags = {el.tag.split("}")[-1] for el in root.iter()}
    # a flame graph may carry its own (zoom) script, but no name makes one
    base, _ = T.record(T.build("known"), out=os.path.join(T.TMP, "plain-for-svg.hst"))
    plain = os.path.join(T.TMP, "plain.svg")
    eq(output_of(["flamegraph", base, "--metric", "leaked", "-o", plain]).returncode, 0, "flamegraph of a plain trace")
    plain_root = ET.parse(plain).getroot()
    count = lambda r, t: sum(1 for el in r.iter() if el.tag.split("}")[-1] == t)
    eq(count(root, "script"), count(plain_root, "script"), "<script> elements (hostile names vs plain)")
    check("b" not in tags, "a <b> element came from a function name")
    text = " ".join(t for el in root.iter() for t in (el.text, el.get("title")) if t)
    check("evil<script>alert(1)</script>" in text or "evil<script>alert(1)" in text,
          "the hostile name is not in the SVG's text once parsed")


@T.test("a hostile program name and arguments: escaped in JSON, HTML and SVG")
def _():
    d = os.path.join(T.TMP, "argv")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    exe = os.path.join(d, "we\"ird'<b>&amp;x")
    shutil.copy(T.build("known"), exe)
    out = os.path.join(d, "argv.hst")
    args = [b"<script>alert(2)</script>", b"\xff\xfe", b"tab\there"]
    p = subprocess.run([T.HEAPSCOPE.encode(), b"record", b"-o", out.encode(), b"--", exe.encode(), *args],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=T.TIMEOUT, cwd=d)
    eq(p.returncode, 0, f"record exit ({p.stderr[-200:]!r})")
    j = output_of(["report", out, "--json"])
    try:
        s = json.loads(j.stdout.decode("utf-8"))["summary"]
    except (UnicodeDecodeError, ValueError) as e:
        raise T.Fail(f"report --json is not valid UTF-8 JSON: {e}")
    eq(s["argv"][1:], ["<script>alert(2)</script>", "\ufffd\ufffd", "tab\there"], "argv in JSON")
    check(s["program"].endswith("we\"ird'<b>&amp;x"), f"program in JSON: {s['program']!r}")
    html_out = os.path.join(d, "argv.html")
    p = output_of(["html", out, "-o", html_out])
    if not (p.returncode == 2 and b"not built yet" in p.stderr):
        eq(p.returncode, 0, "html exit")
        page = open(html_out, "rb").read().decode("utf-8")
        check("<script>alert(2)" not in page and "<b>&amp;x" not in page,
              "the program's name or arguments reached the page as markup")
        check("alert(2)" in page, "the arguments are not in the page")
    svg_out = os.path.join(d, "argv.svg")
    p = output_of(["flamegraph", out, "-o", svg_out])
    if not (p.returncode == 2 and b"not built yet" in p.stderr):
        eq(p.returncode, 0, "flamegraph exit")
        try:
            ET.parse(svg_out)
        except ET.ParseError as e:
            raise T.Fail(f"the SVG is not well-formed XML: {e}")


def sockets_of(pid):
    found = []
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:"):
                found.append(link)
    except OSError:
        pass
    return found


def listening():
    """(proto, local address) of every listening TCP and bound UDP socket."""
    out = set()
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        try:
            with open(f"/proc/net/{proto}") as f:
                next(f)
                for line in f:
                    w = line.split()
                    if proto.startswith("tcp") and w[3] != "0A":
                        continue  # not LISTEN
                    out.add((proto, w[1]))
        except OSError:
            pass
    return out


@T.test("nothing listens on the network: no socket in heapscope or the program")
def _():
    prog = T.build("robust_outlive")
    res = os.path.join(T.TMP, "net.out")
    go = os.path.join(T.TMP, "net.go")
    out = os.path.join(T.TMP, "net.hst")
    for f in (res, go, out):
        if os.path.exists(f):
            os.unlink(f)
    before = listening()
    hs = subprocess.Popen([T.HEAPSCOPE, "record", "-o", out, "--", prog, res, go, "1000"],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=T.TMP)
    try:
        for _ in range(3000):
            if os.path.exists(res) and open(res).read().startswith("pid "):
                break
            time.sleep(0.01)
        target = int(open(res).read().split()[1])
        time.sleep(0.3)
        during = listening()
        socks = {"heapscope": sockets_of(hs.pid), "program": sockets_of(target)}
        ss = shutil.which("ss")
        ss_out = subprocess.run([ss, "-lntupH"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True).stdout if ss else ""
    finally:
        open(go, "w").close()
        try:
            hs.wait(timeout=60)
        except subprocess.TimeoutExpired:
            hs.kill()
            hs.wait()
    eq(hs.returncode, 0, "record exit")
    check(not socks["heapscope"] and not socks["program"], f"sockets open while recording: {socks}")
    new = during - before
    check(not new, f"new listening sockets while recording: {sorted(new)}")
    for name in ("heapscope", "robust_outlive"):
        check(f'"{name}"' not in ss_out, f"ss -lntup shows {name} listening: {ss_out.strip()}")


@T.test("a static program is refused, with the reason")
def _():
    T.need_heapscope()
    exe = os.path.join(T.TMP, "static_known")
    p = T.run([os.environ.get("CC", "cc"), "-static", "-O2", "-o", exe, T.source_of("exit3")])
    if p.returncode != 0:
        raise T.Skip(f"cannot link statically here (no libc.a): {T.tail(p.stderr, 1)}")
    out = os.path.join(T.TMP, "static.hst")
    p = T.run([T.HEAPSCOPE, "record", "-o", out, "--", exe])
    eq(p.returncode, 126, f"record exit ({T.tail(p.stderr)})")
    check("statically linked" in p.stderr, f"no reason given: {T.tail(p.stderr)}")
    check(not os.path.exists(out), "a trace was left for a program that never ran")


@T.test("setuid and setgid programs of another owner are refused, with the reason")
def _():
    T.need_heapscope()
    if os.geteuid() != 0:
        raise T.Skip("needs root to give a file another owner")
    for bit, what in ((stat.S_ISUID, "setuid"), (stat.S_ISGID, "setgid")):
        exe = os.path.join(T.TMP, f"{what}_copy")
        shutil.copy(T.build("exit3"), exe)
        os.chown(exe, 65534, 65534)  # nobody: the exec would change our ids
        os.chmod(exe, 0o755 | bit)   # after chown, which clears the bits
        out = os.path.join(T.TMP, f"{what}.hst")
        p = T.run([T.HEAPSCOPE, "record", "-o", out, "--", exe])
        eq(p.returncode, 126, f"{what}: record exit ({T.tail(p.stderr)})")
        check(what in p.stderr and "LD_PRELOAD" in p.stderr, f"{what}: no reason given: {T.tail(p.stderr)}")
        check(not os.path.exists(out), f"{what}: a trace was left for a program that never ran")


if __name__ == "__main__":
    T.main()
