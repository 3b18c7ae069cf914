/*
 * report_proc.c: the processes of a trace in the text and JSON reports: one
 * entry per process image with how it started, how it ended and its own
 * numbers (model_proc.h). The rest of the report is about all of them
 * together; `report --pid PID` gives one process the whole report.
 */
#include "report/report_proc.h"

#include <inttypes.h>
#include <signal.h>
#include <string.h>

/* Processes worth a section: more than one in the model, or one the
 * library missed. */
static int worth_showing(const struct model_process *v, size_t n)
{
	size_t shown = 0;
	for (size_t i = 0; i < n; i++) {
		if (v[i].in_model && (v[i].flags & TR_PROC_UNTRACED))
			return 1;
		shown += v[i].in_model;
	}
	return shown > 1;
}

static const char *why_untraced(unsigned flags)
{
	if (flags & TR_PROC_STATIC)
		return "statically linked: the library cannot enter it";
	if (flags & TR_PROC_SETID)
		return "set-user/group-id: the loader ignores LD_PRELOAD for it";
	return "its program runs without the library (an exec heapscope could not follow)";
}

static void put_end(FILE *out, const struct model_process *p)
{
	char d[32];
	const char *sig;
	switch (p->end) {
	case MODEL_PEND_EXITED:
		fprintf(out, "exited with status %" PRIu64, p->end_code);
		break;
	case MODEL_PEND_SIGNALED:
		sig = p->end_code < 128 ? sigabbrev_np((int)p->end_code) : NULL;
		fprintf(out, "killed by signal %" PRIu64 "%s%s%s", p->end_code, sig ? " (SIG" : "", sig ? sig : "",
			sig ? ")" : "");
		break;
	case MODEL_PEND_EXEC:
		fputs("replaced by exec", out);
		break;
	case MODEL_PEND_RUNNING:
		fputs("still running when the recording stopped", out);
		break;
	case MODEL_PEND_UNKNOWN:
		fputs(p->exit_mark ? "exited (status not seen)" : "ended (status not seen)", out);
		break;
	default:
		fputs("end not recorded", out);
		break;
	}
	if (p->end_ns >= p->start_ns && p->end != MODEL_PEND_NONE)
		fprintf(out, " after %s", report_duration(d, sizeof(d), p->end_ns - p->start_ns));
}

void report_text_processes(FILE *out, const struct model *m)
{
	size_t n, untraced = 0;
	const struct model_process *v = model_processes(m, &n);
	if (!worth_showing(v, n))
		return;
	size_t shown = 0;
	for (size_t i = 0; i < n; i++) {
		untraced += v[i].in_model && (v[i].flags & TR_PROC_UNTRACED);
		shown += v[i].in_model;
	}
	fprintf(out, "\nPROCESSES  %zu recorded", shown - untraced);
	if (untraced)
		fprintf(out, ", %zu not recorded", untraced);
	fputs("; the summary above is all of them, 'report --pid PID' one alone\n", out);
	for (size_t i = 0; i < n; i++) {
		const struct model_process *p = &v[i];
		char a[32], b[32], c[32], e[32], f[32];
		if (!p->in_model)
			continue; /* another process (--pid), or an index never described */
		fprintf(out, "  #%-3" PRIu64 " pid %-7" PRIu64 " %s", p->index, p->pid, model_proc_how_name(p->how));
		if (p->parent >= 0)
			fprintf(out, " %s #%" PRId64, p->how == TR_PROC_EXEC ? "of" : "from", p->parent);
		fputs("  ", out);
		for (uint32_t k = 0; k < p->argc && k < 8; k++) {
			if (k)
				putc(' ', out);
			report_put_text(out, p->argv[k]);
		}
		if (!p->argc && p->exe)
			report_put_text(out, p->exe);
		if (p->argc > 8 || (p->flags & TR_PROC_ARGV_CUT))
			fputs(" ...", out);
		putc('\n', out);
		if (p->flags & TR_PROC_UNTRACED) {
			fputs("        NOT RECORDED: ", out);
			fputs(why_untraced(p->flags), out);
			fputs("; ", out);
			put_end(out, p);
			putc('\n', out);
			continue;
		}
		fputs("        ", out);
		put_end(out, p);
		fprintf(out, ", %" PRIu64 " %s\n", p->threads, p->threads == 1 ? "thread" : "threads");
		fprintf(out, "        %s %s (%s), %s %s, peak heap %s, peak RSS %s, ",
			report_count(a, sizeof(a), p->allocations), p->allocations == 1 ? "allocation" : "allocations",
			report_bytes(b, sizeof(b), p->allocated_bytes), report_count(c, sizeof(c), p->frees),
			p->frees == 1 ? "free" : "frees", report_bytes(e, sizeof(e), p->peak_heap),
			p->rss_samples ? report_bytes(f, sizeof(f), p->peak_rss) : "-");
		if (p->end == MODEL_PEND_EXEC)
			fprintf(out, "live at exec %s in %s %s (not leaks)\n", report_bytes(b, sizeof(b), p->exec_live_bytes),
				report_count(c, sizeof(c), p->exec_live_blocks), p->exec_live_blocks == 1 ? "block" : "blocks");
		else if (p->end == MODEL_PEND_RUNNING)
			fprintf(out, "live when the recording stopped %s in %s %s\n", report_bytes(b, sizeof(b), p->leaked_bytes),
				report_count(c, sizeof(c), p->leaked_blocks), p->leaked_blocks == 1 ? "block" : "blocks");
		else
			fprintf(out, "leaked %s in %s %s\n", report_bytes(b, sizeof(b), p->leaked_bytes),
				report_count(c, sizeof(c), p->leaked_blocks), p->leaked_blocks == 1 ? "block" : "blocks");
		if (p->inherited_frees)
			fprintf(out, "        %s frees of blocks allocated by its parent before the fork\n",
				report_count(a, sizeof(a), p->inherited_frees));
	}
}

static void ju(FILE *out, const char *k, uint64_t v, int comma)
{
	fprintf(out, "\"%s\": %" PRIu64 "%s", k, v, comma ? ", " : "");
}

static const char *end_name(enum model_pend e)
{
	switch (e) {
	case MODEL_PEND_EXITED:
		return "exited";
	case MODEL_PEND_SIGNALED:
		return "signaled";
	case MODEL_PEND_EXEC:
		return "exec";
	case MODEL_PEND_RUNNING:
		return "running";
	case MODEL_PEND_UNKNOWN:
		return "unknown";
	default:
		return NULL;
	}
}

void report_json_processes(FILE *out, const struct model *m)
{
	size_t n;
	const struct model_process *v = model_processes(m, &n);
	int first = 1;
	fputs("  \"processes\": [", out);
	for (size_t i = 0; i < n; i++) {
		const struct model_process *p = &v[i];
		if (!p->in_model)
			continue;
		fputs(first ? "\n    {" : ",\n    {", out);
		first = 0;
		ju(out, "index", p->index, 1);
		ju(out, "pid", p->pid, 1);
		fputs("\"parent\": ", out);
		if (p->parent >= 0)
			fprintf(out, "%" PRId64 ", ", p->parent);
		else
			fputs("null, ", out);
		fprintf(out, "\"how\": \"%s\", \"recorded\": %s, \"not_recorded_reason\": ", model_proc_how_name(p->how),
			p->flags & TR_PROC_UNTRACED ? "false" : "true");
		if (!(p->flags & TR_PROC_UNTRACED))
			fputs("null", out);
		else
			fputs(p->flags & TR_PROC_STATIC ? "\"static\"" : p->flags & TR_PROC_SETID ? "\"setid\"" : "\"unknown\"", out);
		fputs(", \"exe\": ", out);
		rjson_string(out, p->exe);
		fputs(", \"argv\": [", out);
		for (uint32_t k = 0; k < p->argc; k++) {
			if (k)
				fputs(", ", out);
			rjson_string(out, p->argv[k]);
		}
		fprintf(out, "], \"argv_complete\": %s,\n      ", p->flags & TR_PROC_ARGV_CUT ? "false" : "true");
		ju(out, "start_ns", p->start_ns, 1);
		ju(out, "end_ns", p->end_ns, 1);
		fputs("\"end\": ", out);
		rjson_string(out, end_name(p->end));
		fputs(", \"exit_code\": ", out);
		if (p->end == MODEL_PEND_EXITED)
			fprintf(out, "%" PRIu64, p->end_code);
		else
			fputs("null", out);
		fputs(", \"exit_signal\": ", out);
		if (p->end == MODEL_PEND_SIGNALED)
			fprintf(out, "%" PRIu64, p->end_code);
		else
			fputs("null", out);
		fprintf(out, ", \"exit_mark\": %s, ", p->exit_mark ? "true" : "false");
		ju(out, "threads", p->threads, 0);
		fputs(",\n      \"summary\": {", out);
		ju(out, "allocations", p->allocations, 1);
		ju(out, "frees", p->frees, 1);
		ju(out, "allocated_bytes", p->allocated_bytes, 1);
		ju(out, "temporary", p->temporary, 1);
		ju(out, "temporary_bytes", p->temporary_bytes, 1);
		ju(out, "peak_heap_bytes", p->peak_heap, 1);
		ju(out, "peak_time_ns", p->peak_time_ns, 1);
		ju(out, "peak_blocks", p->peak_blocks, 1);
		ju(out, "peak_rss_bytes", p->peak_rss, 1);
		ju(out, "rss_samples", p->rss_samples, 1);
		ju(out, "leaked_bytes", p->leaked_bytes, 1);
		ju(out, "leaked_blocks", p->leaked_blocks, 1);
		ju(out, "live_at_exec_bytes", p->exec_live_bytes, 1);
		ju(out, "live_at_exec_blocks", p->exec_live_blocks, 1);
		ju(out, "live_bytes_at_end", p->live_bytes, 1);
		ju(out, "live_blocks_at_end", p->live_blocks, 1);
		ju(out, "inherited_frees", p->inherited_frees, 1);
		ju(out, "unknown_frees", p->unknown_frees, 0);
		fputs("}}", out);
	}
	fputs(first ? "],\n" : "\n  ],\n", out);
}
