/* flame_svg.js: click-to-zoom and search for the standalone flame graph SVG
 * that `heapscope flamegraph` writes. The frames are static <g class="f">
 * elements (rect + text + title), so the picture is whole without script;
 * this only rearranges them. Labels are refitted to the new widths from the
 * short name (data-s) or the full one (the title's first line). */
(function () {
	"use strict";
	var svg = document.documentElement, NS = "http://www.w3.org/2000/svg";
	var W = +svg.getAttribute("width"), PAD = 10, CW = +svg.getAttribute("data-cw") || 6.6;
	var frames = [], zoomed = null, term = "";
	var details, unzoomBtn, searchBtn, matched;

	function attr(e, a) { return parseFloat(e.getAttribute(a)); }

	function fullName(g) {
		var t = g.querySelector("title");
		return t ? t.textContent.split("\n")[0] : "";
	}

	/* The label that fits w pixels: the short name, else its head and "…". */
	function fit(name, w) {
		var n = Math.floor((w - 6) / CW);
		if (n < 3)
			return "";
		var chars = Array.from(name);
		if (chars.length <= n)
			return name;
		return chars.slice(0, n - 1).join("") + "\u2026";
	}

	function place(f, x, w, hidden) {
		f.g.style.display = hidden ? "none" : "";
		if (hidden)
			return;
		f.rect.setAttribute("x", x.toFixed(2));
		f.rect.setAttribute("width", w.toFixed(2));
		if (f.text) {
			f.text.setAttribute("x", (x + 3).toFixed(2));
			f.text.textContent = fit(f.label, w);
		}
	}

	function zoom(f) {
		var x0 = f.x, w0 = f.w, scale = (W - 2 * PAD) / w0, eps = 1e-6;
		zoomed = f;
		frames.forEach(function (e) {
			e.g.classList.remove("parent");
			if (e.y > f.y && e.x <= x0 + eps && e.x + e.w >= x0 + w0 - eps) {
				e.g.classList.add("parent");
				place(e, PAD, W - 2 * PAD, false);
			} else if (e.y <= f.y && e.x >= x0 - eps && e.x + e.w <= x0 + w0 + eps) {
				place(e, PAD + (e.x - x0) * scale, e.w * scale, false);
			} else {
				place(e, 0, 0, true);
			}
		});
		unzoomBtn.classList.remove("hide");
		if (term)
			search(term);
	}

	function unzoom() {
		zoomed = null;
		frames.forEach(function (e) {
			e.g.classList.remove("parent");
			place(e, e.x, e.w, false);
		});
		unzoomBtn.classList.add("hide");
		if (term)
			search(term);
	}

	function search(t) {
		term = t;
		var total = 0, hit = [], lt = t.toLowerCase();
		frames.forEach(function (e) {
			var on = t !== "" && fullName(e.g).toLowerCase().indexOf(lt) >= 0;
			e.g.classList.toggle("match", on);
			if (on)
				hit.push(e);
		});
		/* a match inside another match is counted once */
		hit.sort(function (a, b) { return a.x - b.x || b.y - a.y; });
		var end = -1;
		hit.forEach(function (e) {
			if (e.x >= end) {
				total += e.w;
				end = e.x + e.w;
			}
		});
		var all = frames.length ? frames[0].rootW : 1;
		matched.textContent = t ? "Matched: " + (100 * total / all).toFixed(1) + "%" : "";
		searchBtn.textContent = t ? "Clear search" : "Search";
	}

	function init() {
		details = document.getElementById("details");
		unzoomBtn = document.getElementById("unzoom");
		searchBtn = document.getElementById("search");
		matched = document.getElementById("matched");
		var gs = document.querySelectorAll("g.f"), rootW = 0;
		for (var i = 0; i < gs.length; i++) {
			var g = gs[i], r = g.querySelector("rect"), tx = g.querySelector("text");
			var f = { g: g, rect: r, text: tx, x: attr(r, "x"), w: attr(r, "width"), y: attr(r, "y") };
			f.label = g.getAttribute("data-s") || fullName(g);
			rootW = Math.max(rootW, f.w);
			frames.push(f);
			g.addEventListener("click", (function (f) { return function () { zoom(f); }; })(f));
			g.addEventListener("mouseover", (function (g) {
				return function () {
					var t = g.querySelector("title");
					details.textContent = t ? t.textContent.replace(/\n/g, "  \u00b7  ") : "";
				};
			})(g));
			g.addEventListener("mouseout", function () { details.textContent = " "; });
		}
		if (frames.length)
			frames[0].rootW = rootW;
		unzoomBtn.addEventListener("click", unzoom);
		searchBtn.addEventListener("click", function () {
			if (term) {
				search("");
				return;
			}
			var t = window.prompt("Search for a function (case-insensitive substring):", "");
			if (t)
				search(t);
		});
		document.addEventListener("keydown", function (e) {
			if ((e.ctrlKey || e.metaKey) && e.key === "f") {
				e.preventDefault();
				searchBtn.dispatchEvent(new Event("click"));
			} else if (e.key === "Escape") {
				unzoom();
			}
		});
	}

	if (document.readyState === "loading")
		window.addEventListener("load", init);
	else
		init();
})();
