/*
 * cmd_maps.c: `heapscope maps PID|TRACE`: a process's memory mappings, the
 * way `pmap -x` lists them and grouped the way a person thinks (heap, the
 * program's own mappings, anonymous memory, thread stacks, each library's
 * code and data together, other files). For a live process it reads
 * /proc/PID/smaps; for a trace, the snapshots recorded at peak RSS and at
 * exit, where the live heap blocks of that moment tell malloc's mappings
 * apart. Totals are smaps' own, so they agree with `pmap -x`.
 * Exit status: 0 printed, 1 the process or trace cannot be read, 2 bad usage.
 */
#include "cli.h"
#include "analyze/model.h"
#include "procfs/procfs.h"
#include "report/report.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define USAGE "usage: heapscope maps PID|TRACE [--pmap | --grouped] [--at peak|exit] [--json]"

enum { SHOW_PMAP = 1, SHOW_GROUPED = 2 };

/* One set of mappings to show, from a process or a trace snapshot. */
struct view {
	const char *what;             /* "pid 123", "at peak RSS (12.3 ms)" */
	const struct procfs_map *v;
	size_t n;
	const uint64_t *live;         /* per mapping: live heap bytes (trace only) */
	const struct procfs_group *g;
	size_t ng;
};

static void help(void)
{
	printf("%s\n\n"
	       "The memory mappings of a running process (PID, read from /proc/PID/smaps) or\n"
	       "of a recorded program (TRACE: the snapshots taken at peak RSS and at exit).\n\n"
	       "  --pmap      only the list of mappings, as pmap -x shows it\n"
	       "  --grouped   only the groups: heap, mmap, anonymous, stacks, each library,\n"
	       "              files, kernel, heapscope\n"
	       "  --at WHEN   a trace's snapshot at 'peak' RSS or at 'exit' (default both)\n"
	       "  --json      one JSON object instead of text\n\n"
	       "A number is a process id; name a trace called like a number ./123.\n"
	       "Sizes are in kB as in pmap -x; its 'total kB' line is the same sum of smaps.\n"
	       "Exit status: 0 printed, 1 the process or trace cannot be read, 2 bad usage.\n",
	       USAGE);
}

/* "heapscope: maps: WHAT 'ARG'; <usage>", exit status 2; arg may be NULL. */
static int usage_error(const char *what, const char *arg)
{
	return cli_usage_error("maps", USAGE, "%s%s%s%s", what, arg ? " '" : "", arg ? arg : "", arg ? "'" : "");
}

static int is_pid(const char *s)
{
	size_t n = strspn(s, "0123456789");
	return n && n < 10 && !s[n];
}

static uint64_t kb(uint64_t bytes)
{
	return bytes / 1024;
}

static const char *group_name(const struct procfs_group *g)
{
	if (g->kind == PROCFS_LIB && g->name)
		return procfs_basename(g->name);
	switch (g->kind) {
	case PROCFS_HEAP: return "heap (malloc)";
	case PROCFS_MMAP: return "mmap (the program's own)";
	case PROCFS_ANON: return "anonymous (unnamed)";
	case PROCFS_STACK: return "thread stacks";
	case PROCFS_LIB: return "libraries";
	case PROCFS_FILE: return "other files";
	case PROCFS_KERNEL: return "kernel";
	case PROCFS_SELF: return "heapscope";
	default: return procfs_kind_name(g->kind);
	}
}

static void put_pmap(FILE *out, const struct view *w)
{
	struct procfs_totals t = { 0 };
	char mode[6];
	fprintf(out, "%-16s %7s %7s %7s %-5s %-9s %s\n", "Address", "Kbytes", "RSS", "Dirty", "Mode", "Kind", "Mapping");
	for (size_t i = 0; i < w->n; i++) {
		const struct procfs_map *m = &w->v[i];
		procfs_total_add(&t, m);
		fprintf(out, "%016" PRIx64 " %7" PRIu64 " %7" PRIu64 " %7" PRIu64 " %-5s %-9s ", m->start,
			kb(m->end - m->start), kb(m->rss), kb(procfs_dirty(m)), procfs_mode(m, mode),
			procfs_kind_name(m->kind));
		report_put_text(out, procfs_map_name(m));
		putc('\n', out);
	}
	fputs("---------------- ------- ------- -------\n", out);
	fprintf(out, "total kB         %7" PRIu64 " %7" PRIu64 " %7" PRIu64 "\n", kb(t.size), kb(t.rss), kb(t.dirty));
}

static void put_grouped(FILE *out, const struct view *w)
{
	struct procfs_totals t = { 0 };
	uint64_t live_total = 0;
	for (size_t i = 0; i < w->n; i++) {
		procfs_total_add(&t, &w->v[i]);
		live_total += w->live ? w->live[i] : 0;
	}
	fprintf(out, "%-32s %5s %9s %9s %9s %9s %7s%s\n", "Group", "Maps", "Kbytes", "RSS", "Dirty", "Anon",
		"of RSS", w->live ? "  live heap kB" : "");
	for (size_t i = 0; i < w->ng; i++) {
		const struct procfs_group *g = &w->g[i];
		size_t width = report_put_text(out, group_name(g));
		fprintf(out, "%*s %5zu %9" PRIu64 " %9" PRIu64 " %9" PRIu64 " %9" PRIu64 " %6.1f%%",
			width < 32 ? (int)(32 - width) : 0, "", g->t.maps, kb(g->t.size), kb(g->t.rss), kb(g->t.dirty),
			kb(g->t.anonymous), t.rss ? 100.0 * (double)g->t.rss / (double)t.rss : 0.0);
		if (w->live && g->kind == PROCFS_HEAP)
			fprintf(out, "  %12" PRIu64, kb(live_total));
		putc('\n', out);
	}
	fputs("-------------------------------- ----- --------- --------- --------- ---------\n", out);
	fprintf(out, "%-32s %5zu %9" PRIu64 " %9" PRIu64 " %9" PRIu64 " %9" PRIu64 "\n", "total kB", t.maps, kb(t.size),
		kb(t.rss), kb(t.dirty), kb(t.anonymous));
}

static void put_text(FILE *out, const struct view *w, int show)
{
	fprintf(out, "%s\n", w->what);
	if (show & SHOW_PMAP)
		put_pmap(out, w);
	if ((show & SHOW_PMAP) && (show & SHOW_GROUPED))
		putc('\n', out);
	if (show & SHOW_GROUPED)
		put_grouped(out, w);
}

static void json_totals(FILE *out, const struct procfs_totals *t)
{
	fprintf(out, "{\"mappings\": %zu, \"size_bytes\": %" PRIu64 ", \"rss_bytes\": %" PRIu64 ", \"pss_bytes\": %" PRIu64
		     ", \"dirty_bytes\": %" PRIu64 ", \"anon_bytes\": %" PRIu64 ", \"swap_bytes\": %" PRIu64 "}",
		t->maps, t->size, t->rss, t->pss, t->dirty, t->anonymous, t->swap);
}

static void put_json(FILE *out, const struct view *w, const char *at, uint64_t time_ns, int first)
{
	struct procfs_totals t = { 0 };
	char mode[6];
	fprintf(out, "%s\n    {\"at\": \"%s\", \"time_ns\": %" PRIu64 ",\n      \"mappings\": [", first ? "" : ",", at,
		time_ns);
	for (size_t i = 0; i < w->n; i++) {
		const struct procfs_map *m = &w->v[i];
		procfs_total_add(&t, m);
		fprintf(out, "%s\n        {\"start\": \"0x%" PRIx64 "\", \"end\": \"0x%" PRIx64 "\", \"perms\": ",
			i ? "," : "", m->start, m->end);
		rjson_string(out, m->perms);
		fprintf(out, ", \"mode\": \"%s\", \"kind\": \"%s\", \"path\": ", procfs_mode(m, mode),
			procfs_kind_name(m->kind));
		rjson_string(out, m->path);
		fprintf(out, ", \"size_bytes\": %" PRIu64 ", \"rss_bytes\": %" PRIu64 ", \"pss_bytes\": %" PRIu64
			     ", \"dirty_bytes\": %" PRIu64 ", \"anon_bytes\": %" PRIu64 ", \"swap_bytes\": %" PRIu64,
			m->end - m->start, m->rss, m->pss, procfs_dirty(m), m->anonymous, m->swap);
		if (w->live)
			fprintf(out, ", \"live_heap_bytes\": %" PRIu64, w->live[i]);
		fputs("}", out);
	}
	fputs(w->n ? "\n      ],\n      \"groups\": [" : "],\n      \"groups\": [", out);
	for (size_t i = 0; i < w->ng; i++) {
		const struct procfs_group *g = &w->g[i];
		fprintf(out, "%s\n        {\"kind\": \"%s\", \"name\": ", i ? "," : "", procfs_kind_name(g->kind));
		rjson_string(out, g->kind == PROCFS_LIB ? g->name : NULL);
		fputs(", \"total\": ", out);
		json_totals(out, &g->t);
		fputs("}", out);
	}
	fputs(w->ng ? "\n      ],\n      \"total\": " : "],\n      \"total\": ", out);
	json_totals(out, &t);
	fputs("}", out);
}

/* pmap's first line: the pid and its command line. */
static void process_line(char *buf, size_t len, int pid)
{
	char path[64], cmd[512];
	size_t n = 0;
	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	FILE *f = fopen(path, "re");
	if (f) {
		n = fread(cmd, 1, sizeof(cmd) - 1, f);
		fclose(f);
	}
	for (size_t i = 0; i + 1 < n; i++)
		if (!cmd[i])
			cmd[i] = ' ';
	cmd[n] = 0;
	snprintf(buf, len, "pid %d: %s", pid, n ? cmd : "(no command line)");
}

static int maps_pid(int pid, int show, int json)
{
	struct procfs_maps m = { 0 };
	char err[256], what[600];
	int ret = procfs_smaps_read(&m, pid, err, sizeof(err));
	if (ret == -ENOENT) {
		cli_error("maps: no process %d; check the id with ps or pgrep", pid);
		return 1;
	}
	if (ret == -EACCES || ret == -EPERM) {
		cli_error("maps: cannot read /proc/%d/smaps: %s; run as the process's user or as root", pid,
			  strerror(-ret));
		return 1;
	}
	if (ret < 0) {
		cli_error("maps: %s; try again, or check /proc is mounted", err);
		return 1;
	}
	procfs_classify(m.v, m.n, NULL);
	struct procfs_group *g = malloc((m.n + PROCFS_KINDS) * sizeof(*g));
	if (!g) {
		procfs_maps_free(&m);
		cli_error("maps: out of memory; free memory and try again");
		return 1;
	}
	size_t ng = procfs_group(m.v, m.n, g, m.n + PROCFS_KINDS);
	process_line(what, sizeof(what), pid);
	struct view w = { what, m.v, m.n, NULL, g, ng };
	if (json) {
		printf("{\n  \"format\": \"heapscope-maps\",\n  \"version\": 1,\n  \"pid\": %d,\n  \"snapshots\": [", pid);
		put_json(stdout, &w, "live", 0, 1);
		fputs("\n  ]\n}\n", stdout);
	} else {
		put_text(stdout, &w, show);
	}
	free(g);
	procfs_maps_free(&m);
	return 0;
}

static int maps_trace(const char *path, int show, int json, int at_mask)
{
	struct model *m;
	char err[600];
	struct stat st;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		cli_error("maps: %s is a directory; give a trace file or a process id", path);
		return 1;
	}
	int ret = model_load(&m, path, err, sizeof(err));
	if (ret < 0) {
		if (ret == -ENOENT)
			cli_error("%s; give a process id or a trace written by 'heapscope record'", err);
		else
			cli_error("%s; is it a trace written by 'heapscope record'?", err);
		return 1;
	}
	int shown = 0;
	if (json) {
		fputs("{\n  \"format\": \"heapscope-maps\",\n  \"version\": 1,\n  \"trace\": ", stdout);
		rjson_string(stdout, path);
		fputs(",\n  \"snapshots\": [", stdout);
	}
	for (int a = 0; a < MODEL_AT_N; a++) {
		const struct model_snapshot *sn = &m->snap[a];
		char what[200], t[64];
		if (!(at_mask & (1 << a)) || !sn->present)
			continue;
		snprintf(what, sizeof(what), "%s (%s) of %s", a == MODEL_AT_PEAK ? "at peak RSS" : "at exit",
			 report_duration(t, sizeof(t), sn->time_ns), path);
		struct view w = { what, sn->maps, sn->nmaps, sn->map_live, sn->groups, sn->ngroups };
		if (json) {
			put_json(stdout, &w, a == MODEL_AT_PEAK ? "peak" : "exit", sn->time_ns, !shown);
		} else {
			if (shown)
				putc('\n', stdout);
			put_text(stdout, &w, show);
		}
		shown++;
	}
	if (json)
		fputs(shown ? "\n  ]\n}\n" : "]\n}\n", stdout);
	model_free(m);
	if (!shown) {
		cli_error("maps: %s has no snapshot of the mappings%s; record the program again with this heapscope",
			  path, at_mask == 3 ? "" : at_mask == 1 ? " at peak RSS" : " at exit");
		return 1;
	}
	return 0;
}

int cmd_maps(int argc, char **argv)
{
	const char *target = NULL;
	int show = 0, json = 0, at_mask = 3, no_more_opts = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (no_more_opts || a[0] != '-' || !a[1]) {
			if (target)
				return usage_error("more than one process or trace given:", a);
			target = a;
		} else if (!strcmp(a, "--")) {
			no_more_opts = 1;
		} else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			help();
			return 0;
		} else if (!strcmp(a, "--pmap")) {
			show |= SHOW_PMAP;
		} else if (!strcmp(a, "--grouped")) {
			show |= SHOW_GROUPED;
		} else if (!strcmp(a, "--json")) {
			json = 1;
		} else if (!strcmp(a, "--at") || !strncmp(a, "--at=", 5)) {
			const char *v = a[4] == '=' ? a + 5 : i + 1 < argc ? argv[++i] : NULL;
			if (!v)
				return usage_error("--at needs 'peak' or 'exit'", NULL);
			if (!strcmp(v, "peak"))
				at_mask = 1 << MODEL_AT_PEAK;
			else if (!strcmp(v, "exit"))
				at_mask = 1 << MODEL_AT_EXIT;
			else
				return usage_error("--at takes 'peak' or 'exit', not", v);
		} else {
			return usage_error("unknown option", a);
		}
	}
	if (!target)
		return usage_error("no process id or trace given", NULL);
	if (!show)
		show = SHOW_PMAP | SHOW_GROUPED;
	if (is_pid(target)) {
		if (!atoi(target))
			return usage_error("no process has id", target);
		return maps_pid(atoi(target), show, json);
	}
	return maps_trace(target, show, json, at_mask);
}
