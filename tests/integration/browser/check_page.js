/* check_page.js: loads a heapscope HTML report or flame graph SVG in headless
 * Chromium and reports what a person would see, as one JSON object on
 * standard output; tests/integration/test_html.py judges it.
 *
 * usage: node check_page.js CONFIG_JSON
 *   {"modules": DIR with node_modules, "chromium": PATH, "page": FILE,
 *    "kind": "html" | "svg", "screenshot": PNG or null, "profile": DIR}
 */
"use strict";
const path = require("path");
const cfg = JSON.parse(process.argv[2]);
const { chromium } = require(path.join(cfg.modules, "node_modules", "playwright-core"));

const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
	"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"];

async function html(page, out) {
	await page.waitForSelector("body[data-ready='1']", { timeout: 15000 });
	Object.assign(out, await page.evaluate(() => {
		const nav = performance.getEntriesByType("navigation")[0];
		return {
			load_ms: nav ? nav.loadEventEnd - nav.startTime : null,
			render_ms: +document.body.dataset.renderMs,
			title: document.title,
			program: document.getElementById("program").textContent,
			cards: document.querySelectorAll("#summary .card").length,
			timeline_layers: document.querySelectorAll("#timeline path.layer").length,
			timeline_heap: (document.querySelector("#timeline .heap-line") || { getAttribute: () => "" }).getAttribute("d").length,
			timeline_rss: !!document.querySelector("#timeline .rss-line"),
			peak_label: (document.querySelector("#timeline .peak-label") || {}).textContent || null,
			legend: Array.from(document.querySelectorAll("#timeline-legend .name")).map(e => e.textContent),
			flame_frames: document.querySelectorAll("#flame g.fr").length,
			flame_labels: Array.from(document.querySelectorAll("#flame g.fr text")).map(e => e.textContent),
			table_rows: document.querySelectorAll("#table tr.row").length,
			table_sites: Array.from(document.querySelectorAll("#table tr.row .site")).map(e => e.textContent),
			hist_bars: document.querySelectorAll("#hist rect.hbar").length,
			waterfall_rows: document.querySelectorAll("#waterfall .wrow").length,
			waterfall_text: document.getElementById("waterfall").textContent.slice(0, 200),
			scripts: document.querySelectorAll("script").length,
			warnings: Array.from(document.querySelectorAll(".warn")).filter(e => !e.hidden && e.offsetParent).map(e => e.textContent),
		};
	}));

	/* click a frame narrower than half the graph: after the zoom it spans it all */
	const target = await page.evaluate(() => {
		const svg = document.querySelector("#flame svg");
		if (!svg)
			return null; /* nothing to draw for this metric */
		const W = svg.viewBox.baseVal.width;
		let best = null;
		for (const g of svg.querySelectorAll("g.fr")) {
			const r = g.querySelector("rect"), w = +r.getAttribute("width");
			if (+g.dataset.i && w < W * 0.5 && w > 30 && (!best || w > best.w))
				best = { i: g.dataset.i, w: w, name: g.querySelector("text") ? g.querySelector("text").textContent : "" };
		}
		return best && Object.assign(best, { W: W });
	});
	out.zoom = { target: target };
	if (target) {
		const rect = page.locator(`#flame g.fr[data-i="${target.i}"] rect`);
		await rect.scrollIntoViewIfNeeded();
		const box = await rect.boundingBox();
		await page.mouse.move(box.x + Math.min(10, box.width / 2), box.y + box.height / 2);
		out.zoom.tooltip = await page.evaluate(() => !document.getElementById("tip").hidden &&
			document.getElementById("tip").textContent);
		await page.mouse.click(box.x + Math.min(10, box.width / 2), box.y + box.height / 2);
		out.zoom.after = await page.evaluate((i) => {
			const g = document.querySelector(`#flame g.fr[data-i="${i}"]`);
			return {
				width: g ? +g.querySelector("rect").getAttribute("width") : null,
				frames: document.querySelectorAll("#flame g.fr").length,
				above: document.querySelectorAll("#flame g.fr.above").length,
				reset_enabled: !document.getElementById("flame-reset").disabled,
			};
		}, target.i);
		await page.keyboard.press("Escape");
		out.zoom.back = await page.evaluate(() => document.getElementById("flame-reset").disabled);
	}

	/* the metric switch redraws the tree */
	out.metrics = {};
	for (const m of ["allocations", "leaked", "temporary", "bytes", "peak"]) {
		await page.click(`#metrics button[data-metric="${m}"]`);
		out.metrics[m] = await page.evaluate(() => ({
			frames: document.querySelectorAll("#flame g.fr").length,
			pressed: (document.querySelector("#metrics button[aria-pressed='true']") || {}).dataset.metric,
			what: document.getElementById("flame-what").textContent,
		}));
	}

	/* search marks frames */
	await page.fill("#flame-search", "main");
	out.search = await page.evaluate(() => ({
		matches: document.querySelectorAll("#flame g.fr.match").length,
		text: document.getElementById("flame-matched").textContent,
	}));
	await page.fill("#flame-search", "");

	/* a table row opens its stack; every tab draws */
	if (out.table_rows) {
		await page.click("#table tr.row");
		out.stack_frames = await page.evaluate(() => document.querySelectorAll("#table tr.stack li").length);
	}
	out.tabs = {};
	for (const t of ["allocations", "temporary", "leaks", "peak"]) {
		await page.click(`#table-tabs button[data-table="${t}"]`);
		out.tabs[t] = await page.evaluate(() => document.querySelectorAll("#table tr.row").length);
	}
	/* leave the first row open for the screenshot */
	if (out.table_rows)
		await page.click("#table tr.row");
	await page.mouse.move(0, 0);
}

async function svg(page, out) {
	Object.assign(out, await page.evaluate(() => ({
		frames: document.querySelectorAll("g.f").length,
		labels: Array.from(document.querySelectorAll("g.f text")).map(e => e.textContent),
	})));
	const target = await page.evaluate(() => {
		const W = +document.documentElement.getAttribute("width");
		let best = null, k = 0;
		for (const g of document.querySelectorAll("g.f")) {
			const w = +g.querySelector("rect").getAttribute("width");
			if (k++ && w < W * 0.5 && w > 20 && (!best || w > best.w))
				best = { k: k - 1, w: w };
		}
		return best && Object.assign(best, { W: W });
	});
	out.zoom = { target: target };
	if (target) {
		const r = page.locator("g.f rect").nth(target.k);
		await r.scrollIntoViewIfNeeded();
		const box = await r.boundingBox();
		await page.mouse.click(box.x + 5, box.y + box.height / 2);
		out.zoom.width = +(await r.getAttribute("width"));
		out.zoom.hidden = await page.evaluate(() =>
			Array.from(document.querySelectorAll("g.f")).filter(g => g.style.display === "none").length);
	}
}

(async () => {
	const out = { console_errors: [], page_errors: [], requests: [], dialogs: [] };
	/* a fresh profile each run: nothing cached, nothing remembered */
	const browser = await chromium.launchPersistentContext(cfg.profile, { executablePath: cfg.chromium,
		headless: true, args: ARGS, viewport: { width: 1280, height: 900 } });
	try {
		const page = browser.pages()[0] || await browser.newPage();
		page.on("console", (m) => { if (m.type() === "error") out.console_errors.push(m.text()); });
		page.on("pageerror", (e) => out.page_errors.push(String(e)));
		page.on("dialog", (d) => { out.dialogs.push(d.message()); d.dismiss().catch(() => {}); });
		page.on("request", (r) => {
			const u = r.url();
			if (!u.startsWith("file:") && !u.startsWith("data:"))
				out.requests.push(u);
		});
		await page.goto("file://" + path.resolve(cfg.page), { waitUntil: "load" });
		if (cfg.kind === "svg")
			await svg(page, out);
		else
			await html(page, out);
		if (cfg.screenshot)
			await page.screenshot({ path: cfg.screenshot, fullPage: true });
	} catch (e) {
		out.error = String(e && e.stack || e);
	} finally {
		await browser.close();
	}
	process.stdout.write(JSON.stringify(out) + "\n");
})();
