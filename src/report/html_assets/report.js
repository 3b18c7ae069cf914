/* report.js: draws the heapscope HTML report from the JSON document in
 * #hs-data (written by src/report/html.c): the summary, memory over time,
 * the call tree with a metric switch, the top call sites and the size
 * histogram. Every text from the trace goes on the page through
 * textContent, never as markup. No network, no libraries. */
(function () {
	"use strict";
	var started = performance.now();
	var D = JSON.parse(document.getElementById("hs-data").textContent);
	var S = D.strings, SVGNS = "http://www.w3.org/2000/svg";
	var tip = document.getElementById("tip");

	/* ---- helpers --------------------------------------------------------- */

	function str(i) { return i >= 0 ? S[i] : null; }

	function el(tag, cls, text) {
		var e = document.createElement(tag);
		if (cls)
			e.className = cls;
		if (text !== undefined && text !== null)
			e.textContent = text;
		return e;
	}

	function sv(tag, attrs, parent) {
		var e = document.createElementNS(SVGNS, tag);
		for (var k in attrs)
			e.setAttribute(k, attrs[k]);
		if (parent)
			parent.appendChild(e);
		return e;
	}

	var UNITS = ["KiB", "MiB", "GiB", "TiB", "PiB"];
	/* the same units as the terminal report */
	function fmtBytes(b) {
		if (b < 1024)
			return b + " B";
		var v = b / 1024, u = 0;
		while (v >= 1023.95 && u < UNITS.length - 1) {
			v /= 1024;
			u++;
		}
		return v.toFixed(1) + " " + UNITS[u];
	}

	function fmtCount(n) { return Math.round(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ","); }

	function fmtDur(ns) {
		if (ns < 1e3)
			return Math.round(ns) + " ns";
		if (ns < 1e6)
			return (ns / 1e3).toFixed(1) + " \u00b5s";
		if (ns < 1e9)
			return (ns / 1e6).toFixed(2) + " ms";
		if (ns < 6e10)
			return (ns / 1e9).toFixed(3) + " s";
		return Math.floor(ns / 6e10) + " min " + ((ns % 6e10) / 1e9).toFixed(1) + " s";
	}

	/* a duration for an axis: no trailing zeros */
	function fmtTick(ns) { return ns === 0 ? "0" : fmtDur(ns).replace(/\.0+ /, " ").replace(/(\.\d*?)0+ /, "$1 "); }

	function pct(a, b) { return b ? (100 * a / b).toFixed(a === b ? 0 : 1) + "%" : "\u2013"; }

	function plural(n, one, many) { return n === 1 ? one : many; }

	function baseName(p) { return p ? p.slice(p.lastIndexOf("/") + 1) : ""; }

	/* a long path keeps its last three components, as the terminal report does */
	function shortPath(p) {
		if (!p || p.length <= 60)
			return p;
		var parts = p.split("/");
		return "\u2026/" + parts.slice(-3).join("/");
	}

	function nameHash(s) {
		var h = 2166136261;
		for (var i = 0; i < s.length; i++)
			h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0;
		return h;
	}

	/* the flame graph SVG's palette: own code warm, libraries sand, unknown grey */
	function frameColour(name, origin) {
		var h = nameHash(name), v1 = (h & 255) / 255, v2 = ((h >>> 8) & 255) / 255, v3 = ((h >>> 16) & 255) / 255;
		if (origin === 0)
			return "rgb(" + (225 + 30 * v1 | 0) + "," + (95 + 80 * v2 | 0) + "," + (45 + 30 * v3 | 0) + ")";
		if (origin === 1)
			return "rgb(" + (235 + 20 * v1 | 0) + "," + (190 + 40 * v2 | 0) + "," + (110 + 40 * v3 | 0) + ")";
		return "rgb(" + (190 + 20 * v1 | 0) + "," + (190 + 20 * v1 | 0) + "," + (196 + 20 * v1 | 0) + ")";
	}

	function showTip(rows, ev) {
		tip.textContent = "";
		rows.forEach(function (r) { tip.appendChild(r); });
		tip.hidden = false;
		var x = ev.clientX + 14, y = ev.clientY + 14, w = tip.offsetWidth, h = tip.offsetHeight;
		if (x + w > window.innerWidth - 8)
			x = Math.max(8, ev.clientX - w - 14);
		if (y + h > window.innerHeight - 8)
			y = Math.max(8, ev.clientY - h - 14);
		tip.style.left = x + "px";
		tip.style.top = y + "px";
	}

	function hideTip() { tip.hidden = true; }

	function tipRow(label, value, colour) {
		var r = el("div", "r"), l = el("span", "l");
		if (colour) {
			var sw = el("span", "sw");
			sw.style.background = colour;
			l.appendChild(sw);
		}
		l.appendChild(document.createTextNode(label));
		r.appendChild(l);
		r.appendChild(el("span", null, value));
		return r;
	}

	var textCanvas = document.createElement("canvas").getContext("2d");
	/* average advance of a character in font, for fitting labels */
	function charWidth(font) {
		textCanvas.font = font;
		var sample = "alloc::raw_vec::RawVecInner<A>::reserve main split_str Vec";
		return textCanvas.measureText(sample).width / sample.length;
	}

	function fit(name, w, cw) {
		var n = Math.floor((w - 8) / cw);
		if (n < 3)
			return "";
		var chars = Array.from(name);
		return chars.length <= n ? name : chars.slice(0, n - 1).join("") + "\u2026";
	}

	/* ---- frames and stacks ------------------------------------------------- */

	var APP = 0, INLINED = 1;

	function frame(i) {
		var f = D.frames[i];
		return { name: str(f[0]), file: str(f[1]), line: f[2], flags: f[3], module: str(f[4]), origin: f[5] };
	}

	function where(f) {
		var s = f.file ? shortPath(f.file) + (f.line ? ":" + f.line : "") : "";
		if (!s && f.module)
			s = "in " + baseName(f.module);
		return s;
	}

	/* The frame a stack is known by: the innermost one in the program's own
	 * code, else the innermost with a name. */
	function headline(st) {
		var i;
		for (i = 0; i < st.f.length; i++)
			if (D.frames[st.f[i]][5] === APP)
				return i;
		for (i = 0; i < st.f.length; i++)
			if (D.frames[st.f[i]][5] !== 2)
				return i;
		return 0;
	}

	/* The way from the headline frame down to the allocation, in short names:
	 * what tells apart two stacks that share a headline. */
	function via(st, h) {
		if (h === 0)
			return "";
		var inner = frame(st.f[0]).name, next = frame(st.f[h - 1]).name;
		var s = "\u2192 " + shortName(next);
		if (h > 1)
			s += (h > 2 ? " \u2192 \u2026" : "") + " \u2192 " + shortName(inner);
		return s;
	}

	/* the tree's short name of a function when it is in the tree, else the name */
	var shortNames = null;
	function shortName(name) {
		if (!shortNames) {
			shortNames = Object.create(null);
			for (var i = 1; i < D.tree.n; i++)
				shortNames[S[D.tree.name[i]]] = S[D.tree.sname[i]];
		}
		return shortNames[name] || name;
	}

	/* ---- header and summary ------------------------------------------------ */

	function header() {
		var s = D.summary, h1 = document.getElementById("program");
		h1.textContent = baseName(s.program) || D.trace;
		if (s.argv.length > 1)
			h1.appendChild(el("span", "args", " " + s.argv.slice(1).join(" ")));
		var meta = document.getElementById("meta"), items = [];
		if (s.program)
			items.push(s.program);
		if (s.pid)
			items.push("pid " + s.pid);
		if (s.start_unix_ns)
			items.push(new Date(s.start_unix_ns / 1e6).toLocaleString());
		items.push("ran " + fmtDur(s.run_time_ns));
		items.push(s.threads + " " + plural(s.threads, "thread", "threads"));
		items.push(s.exit === "exited" ? "exited with status " + s.exit_code
			   : s.exit === "signaled" ? "killed by signal " + s.exit_code : "exit status unknown");
		items.forEach(function (t) { meta.appendChild(el("span", null, t)); });
		document.getElementById("trace-name").textContent = D.trace;
		if (!s.complete) {
			var w = document.getElementById("incomplete");
			w.textContent = "Incomplete trace: " + s.incomplete_reason + ". The report covers what was recorded.";
			w.hidden = false;
		}
	}

	function summary() {
		var s = D.summary, box = document.getElementById("summary");
		function card(k, v, d, cls) {
			var c = el("div", "card" + (cls ? " " + cls : ""));
			c.appendChild(el("div", "k", k));
			c.appendChild(el("div", "v", v));
			if (d)
				c.appendChild(el("div", "d", d));
			box.appendChild(c);
		}
		card("Peak heap", fmtBytes(s.peak_heap), fmtCount(s.peak_blocks) + " " + plural(s.peak_blocks, "block", "blocks") +
		     " at " + fmtDur(s.peak_time_ns), "peak");
		card("Peak RSS", s.rss_samples ? fmtBytes(s.peak_rss) : "\u2013",
		     s.rss_samples ? "at " + fmtDur(s.peak_rss_time_ns) + ", sampled" : "no samples");
		card("Leaked", fmtBytes(s.leaked_bytes), fmtCount(s.leaked_blocks) + " " + plural(s.leaked_blocks, "block", "blocks") +
		     (s.leaks_at_exit ? " at exit" : " at the end of the trace"));
		card("Allocations", fmtCount(s.allocations), fmtCount(Math.round(s.allocations_per_sec)) + "/s, " +
		     fmtCount(s.frees) + " " + plural(s.frees, "free", "frees"));
		card("Allocated in total", fmtBytes(s.allocated_bytes), fmtCount(s.allocated_bytes) + " B");
		card("Temporary", fmtCount(s.temporary), pct(s.temporary, s.allocations) + " of allocations, " +
		     fmtBytes(s.temporary_bytes));
		card("Run time", fmtDur(s.run_time_ns), fmtCount(s.stacks) + " allocating " + plural(s.stacks, "stack", "stacks"));
		var notes = document.getElementById("notes"), calls = [];
		for (var k in s.calls)
			calls.push(k + " " + fmtCount(s.calls[k]));
		if (calls.length)
			notes.appendChild(el("div", null, "Calls: " + calls.join(", ")));
		if (s.dropped_events)
			notes.appendChild(el("div", null, fmtCount(s.dropped_events) + " events could not be recorded; the numbers miss them"));
		if (s.truncated_stacks)
			notes.appendChild(el("div", null, fmtCount(s.truncated_stacks) + " stacks were cut short at capture"));
		if (s.unknown_frees)
			notes.appendChild(el("div", null, fmtCount(s.unknown_frees) + " frees of blocks allocated before recording started (not errors)"));
	}

	/* ---- axes -------------------------------------------------------------- */

	/* ~n round ticks over [0, max]: 1, 2, 5 times a power of ten, or of 1024 for bytes */
	function ticks(max, n, bytes) {
		if (max <= 0)
			return [0];
		var base = 1;
		if (bytes)
			while (max / base >= 1024 * 4)
				base *= 1024;
		var raw = max / n / base, p = Math.pow(10, Math.floor(Math.log10(raw))), step;
		step = raw / p < 1.5 ? p : raw / p < 3.5 ? 2 * p : raw / p < 7.5 ? 5 * p : 10 * p;
		step *= base;
		var out = [];
		for (var v = 0; v <= max * 1.0001; v += step)
			out.push(v);
		return out;
	}

	function fmtAxisBytes(b) {
		if (b === 0)
			return "0";
		var s = fmtBytes(b);
		return s.replace(/\.0 /, " ");
	}

	/* ---- memory over time -------------------------------------------------- */

	var SERIES = ["#e8663d", "#2f81f7", "#2da44e", "#a371f7", "#d4a72c", "#1b7c83"];

	function timeline() {
		var T = D.timeline, n = T.heap.length, box = document.getElementById("timeline");
		var s = D.summary, legend = document.getElementById("timeline-legend");
		box.textContent = "";
		legend.textContent = "";
		if (!n) {
			box.appendChild(el("p", "muted", "No allocations were recorded."));
			return;
		}
		var W = Math.max(box.clientWidth, 480), H = 300, M = { l: 64, r: 14, t: 22, b: 26 };
		var iw = W - M.l - M.r, ih = H - M.t - M.b;
		var step = T.step_ns, tmax = Math.max(s.run_time_ns, (n - 1) * step, 1);
		var ymax = 0, i, k;
		for (i = 0; i < n; i++)
			ymax = Math.max(ymax, T.heap[i], T.rss[i]);
		ymax = ymax * 1.08 || 1;
		function X(t) { return M.l + iw * Math.min(t, tmax) / tmax; }
		function Y(v) { return M.t + ih - ih * v / ymax; }
		var svg = sv("svg", { viewBox: "0 0 " + W + " " + H, width: W, height: H, role: "img",
				     "aria-label": "Heap and RSS over time" });
		var grid = sv("g", { "class": "grid" }, svg), axis = sv("g", { "class": "axis" }, svg);
		ticks(ymax / 1.08, 5, true).forEach(function (v) {
			sv("line", { x1: M.l, x2: W - M.r, y1: Y(v), y2: Y(v) }, grid);
			sv("text", { x: M.l - 6, y: Y(v) + 4, "text-anchor": "end" }, axis).textContent = fmtAxisBytes(v);
		});
		ticks(tmax, Math.max(2, Math.floor(iw / 110)), false).forEach(function (t) {
			sv("line", { x1: X(t), x2: X(t), y1: M.t + ih, y2: M.t + ih + 4 }, axis);
			sv("text", { x: X(t), y: H - 8, "text-anchor": "middle" }, axis).textContent = fmtTick(t);
		});
		sv("line", { x1: M.l, x2: W - M.r, y1: M.t + ih, y2: M.t + ih }, axis);

		/* the chosen call sites stacked from the bottom, the rest up to the heap */
		var layers = T.series.map(function (sr, j) {
			var st = D.stacks[sr.stack], h = headline(st), f = frame(st.f[h]);
			var inner = h ? " \u2192 " + shortName(frame(st.f[0]).name) : "";
			return { v: sr.v, colour: SERIES[j % SERIES.length], name: shortName(f.name) + inner, full: f.name,
				 where: where(f), peak: st.n[5] };
		});
		var other = [];
		for (i = 0; i < n; i++) {
			var sum = 0;
			for (k = 0; k < layers.length; k++)
				sum += layers[k].v[i];
			other.push(Math.max(0, T.heap[i] - sum));
		}
		layers.push({ v: other, colour: "#b6bfc8", name: "everything else", other: true });
		var base = new Array(n).fill(0);
		layers.forEach(function (L) {
			var top = [], d = "";
			for (i = 0; i < n; i++)
				top.push(base[i] + L.v[i]);
			for (i = 0; i < n; i++)
				d += (i ? "L" : "M") + X(i * step).toFixed(1) + "," + Y(top[i]).toFixed(1);
			for (i = n - 1; i >= 0; i--)
				d += "L" + X(i * step).toFixed(1) + "," + Y(base[i]).toFixed(1);
			sv("path", { d: d + "Z", fill: L.colour, "fill-opacity": L.other ? 0.55 : 0.8, "class": "layer" }, svg);
			base = top;
		});
		var hd = "", rd = "", pen = false;
		for (i = 0; i < n; i++)
			hd += (i ? "L" : "M") + X(i * step).toFixed(1) + "," + Y(T.heap[i]).toFixed(1);
		sv("path", { d: hd, "class": "heap-line" }, svg);
		for (i = 0; i < n; i++) {
			if (!T.rss[i])
				continue;
			rd += (pen ? "L" : "M") + X(i * step).toFixed(1) + "," + Y(T.rss[i]).toFixed(1);
			pen = true;
		}
		if (rd)
			sv("path", { d: rd, "class": "rss-line" }, svg);

		/* the peak */
		var px = X(s.peak_time_ns);
		sv("line", { x1: px, x2: px, y1: M.t - 4, y2: M.t + ih, "class": "peak-mark" }, svg);
		sv("circle", { cx: px, cy: Y(s.peak_heap), r: 3.5, fill: "var(--peak)" }, svg);
		var pl = sv("text", { x: px + (px > W - 200 ? -6 : 6), y: M.t + 2, "class": "peak-label",
				     "text-anchor": px > W - 200 ? "end" : "start" }, svg);
		pl.textContent = "peak " + fmtBytes(s.peak_heap) + " at " + fmtDur(s.peak_time_ns);

		/* the values at the pointer */
		var cursor = sv("line", { y1: M.t, y2: M.t + ih, "class": "cursor", visibility: "hidden" }, svg);
		var hit = sv("rect", { x: M.l, y: M.t, width: iw, height: ih, fill: "transparent" }, svg);
		hit.addEventListener("mousemove", function (ev) {
			var r = svg.getBoundingClientRect(), x = (ev.clientX - r.left) * W / r.width;
			var p = Math.max(0, Math.min(n - 1, Math.round((x - M.l) / iw * tmax / step)));
			cursor.setAttribute("x1", X(p * step));
			cursor.setAttribute("x2", X(p * step));
			cursor.setAttribute("visibility", "visible");
			var rows = [el("div", "t", fmtDur(p * step) + " \u2013 " + fmtDur((p + 1) * step))];
			rows.push(tipRow("heap (highest)", fmtBytes(T.heap[p])));
			rows.push(tipRow("RSS", T.rss[p] ? fmtBytes(T.rss[p]) : "no sample"));
			layers.forEach(function (L) { rows.push(tipRow(L.name, fmtBytes(L.v[p]), L.colour)); });
			showTip(rows, ev);
		});
		hit.addEventListener("mouseleave", function () {
			cursor.setAttribute("visibility", "hidden");
			hideTip();
		});
		box.appendChild(svg);

		layers.forEach(function (L) {
			var it = el("div", "item"), sw = el("span", "sw");
			sw.style.background = L.colour;
			it.appendChild(sw);
			var nm = el("span", "name", L.name + (L.other ? "" : "  (" + fmtBytes(L.peak) + " at the peak)"));
			nm.title = (L.full || L.name) + (L.where ? "\n" + L.where : "");
			it.appendChild(nm);
			legend.appendChild(it);
		});
		[["heap", "line", "var(--heap)"], ["RSS (sampled)", "dash", ""]].forEach(function (x) {
			var it = el("div", "item"), sw = el("span", "sw " + x[1]);
			if (x[2])
				sw.style.background = x[2];
			it.appendChild(sw);
			it.appendChild(el("span", "name", x[0]));
			legend.appendChild(it);
		});
	}

	/* ---- the call tree (icicle: callers on top) ----------------------------- */

	var METRICS = [
		{ key: 0, name: "peak", label: "Peak", bytes: true, what: "heap at the peak", comp: ["block", "blocks"] },
		{ key: 4, name: "leaked", label: "Leaked", bytes: true, what: "leaked bytes", comp: ["block", "blocks"] },
		{ key: 1, name: "allocations", label: "Allocations", bytes: false, what: "number of allocations", comp: null },
		{ key: 3, name: "temporary", label: "Temporary", bytes: false, what: "number of temporary allocations", comp: null },
		{ key: 2, name: "bytes", label: "Allocated bytes", bytes: true, what: "bytes allocated", comp: ["allocation", "allocations"] },
	];
	var TR = D.tree, kids = [], flame = { metric: METRICS[0], zoom: 0, term: "" };
	var ROW = 18, MAX_DRAWN = 4000, flameFont = "11.5px system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', Arial, sans-serif", flameCW = 0;

	function tv(i, key) { return TR.v[i * 10 + key]; }
	function tc(i, key) { return TR.v[i * 10 + 5 + key]; }
	function tname(i) { return S[TR.name[i]]; }

	function fmtMetric(m, v) { return m.bytes ? fmtBytes(v) : fmtCount(v); }

	function fmtComp(m, i) {
		var c = tc(i, m.key);
		if (!m.comp)
			return fmtBytes(c);
		return fmtCount(c) + " " + plural(c, m.comp[0], m.comp[1]);
	}

	function initTree() {
		for (var i = 0; i < TR.n; i++)
			kids.push([]);
		for (i = 1; i < TR.n; i++)
			kids[TR.parent[i]].push(i);
		METRICS.forEach(function (m) {
			var b = el("button", null, m.label);
			b.type = "button";
			b.setAttribute("aria-pressed", "false");
			b.dataset.metric = m.name;
			b.addEventListener("click", function () { setMetric(m); });
			document.getElementById("metrics").appendChild(b);
		});
		var first = METRICS.filter(function (m) { return m.name === D.metric; })[0] || METRICS[0];
		document.getElementById("flame-search").addEventListener("input", function (e) {
			flame.term = e.target.value.trim().toLowerCase();
			drawFlame();
		});
		document.getElementById("flame-reset").addEventListener("click", function () { zoomTo(0); });
		document.addEventListener("keydown", function (e) {
			if (e.key === "Escape" && flame.zoom)
				zoomTo(0);
		});
		setMetric(first);
	}

	function setMetric(m) {
		flame.metric = m;
		if (!tv(flame.zoom, m.key))
			flame.zoom = 0;
		document.querySelectorAll("#metrics button").forEach(function (b) {
			b.setAttribute("aria-pressed", b.dataset.metric === m.name ? "true" : "false");
		});
		document.getElementById("flame-what").textContent = m.what;
		drawFlame();
	}

	function zoomTo(i) {
		flame.zoom = i;
		document.getElementById("flame-reset").disabled = !i;
		drawFlame();
	}

	function sortedKids(i, key) {
		return kids[i].filter(function (c) { return tv(c, key) > 0; }).sort(function (a, b) {
			return tv(b, key) - tv(a, key) || (tname(a) < tname(b) ? -1 : 1);
		});
	}

	function matches(i) { return flame.term && tname(i).toLowerCase().indexOf(flame.term) >= 0; }

	/* share of the root that matching frames account for, each path counted once */
	function matchedValue(i, key) {
		if (matches(i))
			return tv(i, key);
		var s = 0;
		for (var k = 0; k < kids[i].length; k++)
			s += matchedValue(kids[i][k], key);
		return s;
	}

	function drawFlame() {
		var box = document.getElementById("flame"), m = flame.metric, key = m.key;
		box.textContent = "";
		hideTip();
		if (!flameCW)
			flameCW = charWidth(flameFont);
		var total = tv(0, key);
		if (!total) {
			box.appendChild(el("p", "empty", "No " + m.what + " in this trace."));
			document.getElementById("flame-matched").textContent = "";
			return;
		}
		var W = Math.max(box.clientWidth, 480), z = flame.zoom, zv = tv(z, key), items = [];
		var path = [];
		for (var a = TR.parent[z]; z && a >= 0; a = TR.parent[a])
			path.unshift(a);
		path.forEach(function (a, d) { items.push({ i: a, x: 0, w: W, d: d, above: true }); });
		var depth0 = path.length, maxd = depth0;
		(function lay(i, x, w, d) {
			items.push({ i: i, x: x, w: w, d: d });
			if (d > maxd)
				maxd = d;
			var cx = x;
			sortedKids(i, key).forEach(function (c) {
				var cw = w * tv(c, key) / tv(i, key);
				if (cw >= 0.35)
					lay(c, cx, cw, d + 1);
				cx += cw;
			});
		})(z, 0, W, depth0);
		/* the narrowest go when there are too many to draw at once; a frame is
		 * never wider than its parent, so what is left stays a tree */
		if (items.length > MAX_DRAWN) {
			var ws = items.map(function (it) { return it.w; }).sort(function (a, b) { return b - a; });
			var cut = ws[MAX_DRAWN - 1];
			items = items.filter(function (it) { return it.w > cut || it.above; });
			maxd = 0;
			items.forEach(function (it) { maxd = Math.max(maxd, it.d); });
		}
		var H = (maxd + 1) * ROW + 1;
		var svg = sv("svg", { viewBox: "0 0 " + W + " " + H, width: W, height: H, role: "img",
				     "aria-label": "Call tree by " + m.what });
		items.forEach(function (it) {
			var g = sv("g", { "class": "fr" + (it.above ? " above" : "") + (matches(it.i) ? " match" : ""),
					  "data-i": it.i }, svg);
			var origin = TR.origin[it.i] & 3;
			sv("rect", { x: it.x.toFixed(2), y: it.d * ROW, width: Math.max(it.w - 0.5, 0.3).toFixed(2),
				     height: ROW - 1, rx: 2, fill: it.i ? frameColour(tname(it.i), origin) : "#d0d7de" }, g);
			var label = fit(it.i ? S[TR.sname[it.i]] : "all: " + fmtMetric(m, total), it.w, flameCW);
			if (label)
				sv("text", { x: (it.x + 4).toFixed(2), y: it.d * ROW + 13 }, g).textContent = label;
		});
		svg.addEventListener("click", function (ev) {
			var g = ev.target.closest("g.fr");
			if (!g)
				return;
			var i = +g.getAttribute("data-i");
			/* the zoomed frame itself goes one level out */
			zoomTo(i === flame.zoom && i ? Math.max(TR.parent[i], 0) : i);
		});
		svg.addEventListener("mousemove", function (ev) {
			var g = ev.target.closest("g.fr");
			if (!g) {
				hideTip();
				return;
			}
			var i = +g.getAttribute("data-i"), rows = [el("div", "t", i ? tname(i) : "all")];
			rows.push(tipRow(m.what, fmtMetric(m, tv(i, key))));
			rows.push(tipRow(m.comp ? m.comp[1] : "bytes", fmtComp(m, i)));
			rows.push(tipRow("share of all", pct(tv(i, key), total)));
			if (z && zv)
				rows.push(tipRow("share of the zoomed frame", pct(tv(i, key), zv)));
			var f = str(TR.file[i]);
			if (f || TR.origin[i] & 4)
				rows.push(el("div", "l", (f ? shortPath(f) + (TR.line[i] ? ":" + TR.line[i] : "") : "") +
					     (TR.origin[i] & 4 ? (f ? " (inlined)" : "inlined") : "")));
			showTip(rows, ev);
		});
		svg.addEventListener("mouseleave", hideTip);
		box.appendChild(svg);
		var mt = document.getElementById("flame-matched");
		mt.textContent = flame.term ? "Matched: " + pct(matchedValue(0, key), total) + " of " + m.what : "";
		if (TR.cut && !flame.term && !z)
			mt.textContent = fmtCount(TR.cut) + " smallest frames left out of the report";
	}

	/* ---- top call sites --------------------------------------------------- */

	var TABLES = [
		{ name: "peak", label: "Peak", value: 5, bytes: true, count: 6, countLabel: "blocks", total: "peak_heap",
		  head: "At the peak", empty: "Nothing was live at the peak." },
		{ name: "allocations", label: "Allocations", value: 0, bytes: false, count: 1, countLabel: "bytes",
		  total: "allocations", head: "Allocations", empty: "No allocations." },
		{ name: "temporary", label: "Temporary", value: 3, bytes: false, count: 4, countLabel: "bytes",
		  total: "temporary", head: "Temporary", empty: "No temporary allocations." },
		{ name: "leaks", label: "Leaks", value: 7, bytes: true, count: 8, countLabel: "blocks", total: "leaked_bytes",
		  head: "Leaked", empty: "Nothing leaked." },
	];

	function initTables() {
		var tabs = document.getElementById("table-tabs");
		TABLES.forEach(function (t) {
			var b = el("button", null, t.label + " (" + fmtCount(D.tables[t.name].ranked) + ")");
			b.type = "button";
			b.setAttribute("role", "tab");
			b.dataset.table = t.name;
			b.addEventListener("click", function () { drawTable(t); });
			tabs.appendChild(b);
		});
		drawTable(TABLES[0]);
	}

	function stackList(st, here) {
		var ol = el("ol", "frames");
		st.f.forEach(function (fi, k) {
			var f = frame(fi), li = el("li", (f.origin === APP ? "" : "lib") + (k === here ? " here" : ""));
			li.appendChild(document.createTextNode(f.name || "?"));
			if (f.flags & INLINED)
				li.appendChild(el("span", "badge", "inlined"));
			var w = where(f);
			if (w)
				li.appendChild(el("span", "loc", w));
			ol.appendChild(li);
		});
		if (st.frames_total > st.f.length)
			ol.appendChild(el("li", "lib", (st.frames_total - st.f.length) + " more frames"));
		return ol;
	}

	function drawTable(t) {
		document.querySelectorAll("#table-tabs button").forEach(function (b) {
			b.setAttribute("aria-selected", b.dataset.table === t.name ? "true" : "false");
		});
		var box = document.getElementById("table"), T = D.tables[t.name], total = D.summary[t.total];
		box.textContent = "";
		if (!T.rows.length) {
			box.appendChild(el("p", "muted", t.empty));
			return;
		}
		var table = el("table", "top"), thead = el("thead"), hr = el("tr");
		[["#", "num"], [t.head, "num"], ["share", ""], [t.countLabel, "num"], ["call site (click for the stack)", ""]].forEach(function (h) {
			hr.appendChild(el("th", h[1], h[0]));
		});
		thead.appendChild(hr);
		table.appendChild(thead);
		var tbody = el("tbody");
		T.rows.forEach(function (si, r) {
			var st = D.stacks[si], v = st.n[t.value], c = st.n[t.count], h = headline(st), f = frame(st.f[h]);
			var tr = el("tr", "row");
			tr.appendChild(el("td", "num", String(r + 1)));
			tr.appendChild(el("td", "num", t.bytes ? fmtBytes(v) : fmtCount(v)));
			var share = el("td"), bar = el("div", "bar"), fill = el("div");
			share.appendChild(document.createTextNode(pct(v, total)));
			fill.style.width = Math.min(100, total ? 100 * v / total : 0).toFixed(1) + "%";
			bar.appendChild(fill);
			share.appendChild(bar);
			tr.appendChild(share);
			tr.appendChild(el("td", "num", t.countLabel === "bytes" ? fmtBytes(c) : fmtCount(c)));
			var site = el("td"), name = el("div", "site");
			var tw = el("span", "tw", "\u25b8");
			name.appendChild(tw);
			name.appendChild(document.createTextNode(f.name || "?"));
			site.appendChild(name);
			var loc = where(f), path = via(st, h);
			if (path)
				site.appendChild(el("div", "via", path));
			site.appendChild(el("div", "loc", (loc ? loc + "  \u00b7  " : "") + st.frames_total + " " +
					    plural(st.frames_total, "frame", "frames")));
			tr.appendChild(site);
			tbody.appendChild(tr);
			var open = null;
			tr.addEventListener("click", function () {
				if (open) {
					open.remove();
					open = null;
					tw.textContent = "\u25b8";
					return;
				}
				open = el("tr", "stack");
				var td = el("td");
				td.colSpan = 5;
				td.appendChild(stackList(st, h));
				open.appendChild(td);
				tr.after(open);
				tw.textContent = "\u25be";
			});
		});
		table.appendChild(tbody);
		box.appendChild(table);
		if (T.ranked > T.rows.length)
			box.appendChild(el("p", "hint", "The top " + T.rows.length + " of " + fmtCount(T.ranked) +
					   " call sites; 'heapscope report --json --top 0' lists them all."));
	}

	/* ---- size histogram ---------------------------------------------------- */

	var histMode = "count";

	function bucketOf(lo) { return lo === 0 ? 0 : Math.round(Math.log2(lo)) + 1; }

	function sizeLabel(lo) {
		if (lo < 1024)
			return String(lo);
		var u = ["K", "M", "G", "T", "P", "E"], k = -1;
		while (lo >= 1024 && k < u.length - 1) {
			lo /= 1024;
			k++;
		}
		return lo + u[k];
	}

	function initHist() {
		var seg = document.getElementById("hist-mode");
		[["count", "Allocations"], ["bytes", "Bytes"]].forEach(function (x) {
			var b = el("button", null, x[1]);
			b.type = "button";
			b.dataset.mode = x[0];
			b.addEventListener("click", function () {
				histMode = x[0];
				drawHist();
			});
			seg.appendChild(b);
		});
		drawHist();
	}

	function drawHist() {
		document.querySelectorAll("#hist-mode button").forEach(function (b) {
			b.setAttribute("aria-pressed", b.dataset.mode === histMode ? "true" : "false");
		});
		var box = document.getElementById("hist"), hs = D.hist;
		box.textContent = "";
		if (!hs.length) {
			box.appendChild(el("p", "muted", "No allocations."));
			return;
		}
		/* every bucket from the smallest size seen to the largest, empty ones too */
		var first = bucketOf(hs[0][0]), last = bucketOf(hs[hs.length - 1][0]), bars = [], b, j = 0;
		for (b = first; b <= last; b++) {
			var lo = b === 0 ? 0 : Math.pow(2, b - 1), hi = b === 0 ? 0 : Math.pow(2, b) - 1;
			var h = j < hs.length && bucketOf(hs[j][0]) === b ? hs[j++] : [lo, hi, 0, 0];
			bars.push(h);
		}
		var idx = histMode === "count" ? 2 : 3, total = 0, max = 0;
		bars.forEach(function (h) {
			total += h[idx];
			max = Math.max(max, h[idx]);
		});
		var W = Math.max(box.clientWidth, 480), H = 220, M = { l: 64, r: 10, t: 10, b: 34 };
		var iw = W - M.l - M.r, ih = H - M.t - M.b, bw = iw / bars.length;
		var svg = sv("svg", { viewBox: "0 0 " + W + " " + H, width: W, height: H, role: "img",
				     "aria-label": "Allocation sizes" });
		var grid = sv("g", { "class": "grid" }, svg), axis = sv("g", { "class": "axis" }, svg);
		ticks(max, 4, idx === 3).forEach(function (v) {
			var y = M.t + ih - ih * v / (max || 1);
			sv("line", { x1: M.l, x2: W - M.r, y1: y, y2: y }, grid);
			sv("text", { x: M.l - 6, y: y + 4, "text-anchor": "end" }, axis).textContent =
				idx === 3 ? fmtAxisBytes(v) : fmtCount(v);
		});
		var every = Math.ceil(bars.length / Math.max(1, Math.floor(iw / 38)));
		bars.forEach(function (h, k) {
			var v = h[idx], bh = max ? ih * v / max : 0, x = M.l + k * bw;
			var r = sv("rect", { x: (x + 1).toFixed(1), y: (M.t + ih - bh).toFixed(1), width: Math.max(bw - 2, 1).toFixed(1),
					     height: Math.max(bh, v ? 1 : 0).toFixed(1), "class": "hbar" }, svg);
			r.addEventListener("mousemove", function (ev) {
				var range = h[0] === h[1] ? fmtCount(h[0]) + " B" : fmtCount(h[0]) + "\u2013" + fmtCount(h[1]) + " B";
				showTip([el("div", "t", range), tipRow("allocations", fmtCount(h[2]) + " (" + pct(h[2], D.summary.allocations) + ")"),
					 tipRow("bytes", fmtBytes(h[3]) + " (" + pct(h[3], D.summary.allocated_bytes) + ")")], ev);
			});
			r.addEventListener("mouseleave", hideTip);
			if (k % every === 0)
				sv("text", { x: x + bw / 2, y: H - 18, "text-anchor": "middle" }, axis).textContent = sizeLabel(h[0]);
		});
		sv("text", { x: M.l + iw / 2, y: H - 2, "text-anchor": "middle" }, axis).textContent = "requested size (bytes, from)";
		box.appendChild(svg);
	}

	/* ---- memory beyond the heap: the waterfall ------------------------------ */

	/* the words of each step, as the terminal report has them; [positive, negative] */
	var WSTEP = {
		requested: ["requested by the program"],
		usable: ["+ rounding up to the usable size"],
		headers: ["+ chunk headers, 8 B per block"],
		allocator_in_use: ["+ in use by the allocator, not live", "\u2212 live blocks the allocator's sample misses"],
		allocator_free: ["+ free memory the allocator holds"],
		not_resident: ["+ heap pages beyond what the allocator holds", "\u2212 held but not resident"],
		mmap: ["+ the program's own mappings"],
		thread_stacks: ["+ thread stacks"],
		library_data: ["+ libraries' written data and .bss"],
		file_copies: ["+ private copies of other files' pages"],
		heapscope: ["+ heapscope's own anonymous memory"],
		unexplained: ["+ unexplained anonymous memory"],
		library_files: ["+ libraries' code and read-only data"],
		other_files: ["+ other files"],
		mmap_files: ["+ the program's file and shared mappings"],
		kernel: ["+ kernel pages ([vdso])"],
		heapscope_files: ["+ heapscope's library and shared buffers"],
		unexplained_shared: ["+ unexplained shared memory"],
	};
	var WTOTAL = { not_resident: "= heap RSS", unexplained: "= anonymous RSS", unexplained_shared: "= RSS" };
	var wfAt = null;

	function fmtSigned(v) { return (v < 0 ? "\u2212" : v > 0 ? "+" : "") + fmtBytes(Math.abs(v)); }

	function waterfall() {
		var box = document.getElementById("waterfall"), snaps = (D.waterfall || []).filter(function (w) { return w.present; });
		box.textContent = "";
		if (!snaps.length) {
			box.appendChild(el("p", "muted", "This trace holds no snapshot of the process's mappings, so the way " +
					    "from bytes requested to resident memory cannot be drawn."));
			return;
		}
		if (!wfAt || !snaps.some(function (w) { return w.at === wfAt; }))
			wfAt = snaps[0].at;
		var bar = el("div", "toolbar"), seg = el("div", "seg");
		seg.setAttribute("role", "group");
		snaps.forEach(function (w) {
			var b = el("button", null, w.at === "peak" ? "At peak RSS" : "At exit");
			b.type = "button";
			b.dataset.at = w.at;
			b.setAttribute("aria-pressed", w.at === wfAt ? "true" : "false");
			b.addEventListener("click", function () {
				wfAt = w.at;
				waterfall();
			});
			seg.appendChild(b);
		});
		bar.appendChild(seg);
		var w = snaps.filter(function (x) { return x.at === wfAt; })[0];
		bar.appendChild(el("span", "muted", "at " + fmtDur(w.time_ns) + ": from the bytes the program requested to the " +
				   "memory resident in the process, step by step"));
		box.appendChild(bar);

		/* rows: each non-zero step, and the three running totals */
		var rows = [], total = 0, max = 0;
		w.steps.forEach(function (st) {
			var name = st[0], v = st[1], before = total;
			total += v;
			max = Math.max(max, before, total);
			if (v || name === "requested") {
				var words = WSTEP[name] || [name];
				var label = v < 0 && words[1] ? words[1] : words[0];
				if (name === "allocator_free" && !w.allocator_stats)
					label = "+ allocator overhead and free memory, resident";
				if (name === "requested")
					label += ", " + fmtCount(w.live_blocks) + " " + plural(w.live_blocks, "block", "blocks");
				rows.push({ label: label, from: before, to: total, v: v });
			}
			if (WTOTAL[name])
				rows.push({ label: WTOTAL[name], from: 0, to: total, v: null, sum: true });
		});
		var t = el("div", "wf");
		rows.forEach(function (r) {
			var row = el("div", "wrow" + (r.sum ? " sum" : ""));
			row.appendChild(el("div", "wl", r.label));
			var track = el("div", "wt"), b = el("div", "wb" + (r.sum ? " total" : r.v < 0 ? " neg" : ""));
			var lo = Math.min(r.from, r.to), hi = Math.max(r.from, r.to);
			b.style.left = (max ? 100 * lo / max : 0).toFixed(2) + "%";
			b.style.width = Math.max(max ? 100 * (hi - lo) / max : 0, 0.2).toFixed(2) + "%";
			track.appendChild(b);
			row.appendChild(track);
			row.appendChild(el("div", "wv", r.sum ? "" : fmtSigned(r.v)));
			row.appendChild(el("div", "wv", fmtBytes(r.to)));
			row.appendChild(el("div", "wv muted", pct(r.sum ? r.to : Math.abs(r.v), w.rss)));
			t.appendChild(row);
		});
		box.appendChild(t);
		var notes = el("div", "notes");
		notes.appendChild(el("div", null, "Unexplained: " + fmtBytes(w.unexplained) + ", " + pct(w.unexplained, w.anon_rss) +
				     " of anonymous RSS" + (w.unexplained ? " ('heapscope maps TRACE' lists the mappings)" : "")));
		var mi = w.mallinfo;
		notes.appendChild(el("div", null, mi ? "Allocator (mallinfo2 at " + fmtDur(mi.time_ns) + "): arena " + fmtBytes(mi.arena) +
				     ", in use " + fmtBytes(mi.in_use) + ", free " + fmtBytes(mi.free) + "; " + fmtBytes(mi.mmapped) +
				     " in " + fmtCount(mi.mmapped_chunks) + " mmapped " + plural(mi.mmapped_chunks, "chunk", "chunks")
				     : "Allocator: no mallinfo2 sample in the trace, so its overhead and free memory are one step"));
		box.appendChild(notes);
		if (w.groups.length) {
			var table = el("table", "top"), hr = el("tr"), tb = el("tbody");
			[["mappings by kind", ""], ["mappings", "num"], ["size", "num"], ["RSS", "num"], ["anonymous", "num"]].forEach(function (h) {
				hr.appendChild(el("th", h[1], h[0]));
			});
			var thead = el("thead");
			thead.appendChild(hr);
			table.appendChild(thead);
			w.groups.forEach(function (g) {
				var tr = el("tr");
				tr.appendChild(el("td", "site", g[0]));
				tr.appendChild(el("td", "num", fmtCount(g[1])));
				[2, 3, 4].forEach(function (k) { tr.appendChild(el("td", "num", fmtBytes(g[k]))); });
				tb.appendChild(tr);
			});
			table.appendChild(tb);
			box.appendChild(table);
		}
	}

	/* ---- go ---------------------------------------------------------------- */

	function run(name, f) {
		try {
			f();
		} catch (e) {
			var sec = document.getElementById(name);
			if (sec)
				sec.appendChild(el("p", "warn", "This part of the report could not be drawn: " + e.message));
			console.error(e);
		}
	}

	run("summary-sec", header);
	run("summary-sec", summary);
	run("timeline-sec", timeline);
	run("flame-sec", initTree);
	run("tables-sec", initTables);
	run("hist-sec", initHist);
	run("waterfall-sec", waterfall);

	var resizeTimer = 0, lastW = window.innerWidth;
	window.addEventListener("resize", function () {
		if (window.innerWidth === lastW)
			return;
		lastW = window.innerWidth;
		clearTimeout(resizeTimer);
		resizeTimer = setTimeout(function () {
			run("timeline-sec", timeline);
			run("flame-sec", drawFlame);
			run("hist-sec", drawHist);
		}, 150);
	});
	document.body.dataset.renderMs = (performance.now() - started).toFixed(1);
	document.body.dataset.ready = "1";
})();
