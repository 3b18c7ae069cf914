/*
 * report_json.c: the model as one JSON object (`heapscope report --json`).
 * The fields are documented in docs/json.md; later versions add fields but
 * keep these ones and their meaning.
 */
#include "report/report.h"
#include "report/report_proc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#define JSON_FORMAT_VERSION 1

static void key(FILE *out, const char *k)
{
	fprintf(out, "\"%s\": ", k);
}

static void kv_u(FILE *out, const char *indent, const char *k, uint64_t v, int last)
{
	fprintf(out, "%s\"%s\": %" PRIu64 "%s\n", indent, k, v, last ? "" : ",");
}

static void kv_s(FILE *out, const char *indent, const char *k, const char *v)
{
	fprintf(out, "%s\"%s\": ", indent, k);
	rjson_string(out, v);
	fputs(",\n", out);
}

static void frame(FILE *out, const struct model_frame *f)
{
	char label[256];
	fputs("{", out);
	key(out, "function");
	rjson_string(out, f->function);
	fputs(", ", out);
	key(out, "file");
	rjson_string(out, f->file);
	fputs(", ", out);
	key(out, "line");
	if (f->line)
		fprintf(out, "%" PRIu32, f->line);
	else
		fputs("null", out);
	fputs(", ", out);
	key(out, "module");
	rjson_string(out, f->module);
	fprintf(out, ", \"inlined\": %s, ", (f->flags & MODEL_FRAME_INLINED) ? "true" : "false");
	fprintf(out, "\"address\": \"0x%" PRIx64 "\", \"offset\": \"0x%" PRIx64 "\", ", f->ip, f->offset);
	key(out, "label");
	rjson_string(out, model_frame_label(f, label, sizeof(label)));
	fputs("}", out);
}

static void stack(FILE *out, const struct model *m, size_t idx, size_t depth, struct model_frame *frames,
		  size_t cap)
{
	size_t max = depth && depth < cap ? depth : cap;
	size_t total = model_stack_frames(m, idx, frames, max);
	size_t n = total < max ? total : max;
	fprintf(out, "\"frames_total\": %zu, \"stack\": [", total);
	for (size_t i = 0; i < n; i++) {
		fputs(i ? ",\n        " : "\n        ", out);
		frame(out, &frames[i]);
	}
	fputs(n ? "\n      ]" : "]", out);
}

/* One ranked section: [{bytes, count, stack, ...}, ...]. */
static int section(FILE *out, const struct model *m, const struct report_opts *o, const char *name,
		   enum model_key k, struct model_frame *frames, size_t cap)
{
	size_t want = o->top && o->top < m->nstacks ? o->top : m->nstacks;
	size_t *idx = malloc((want ? want : 1) * sizeof(*idx));
	if (!idx)
		return -ENOMEM;
	size_t n = model_top(m, k, want, idx);
	fprintf(out, "  \"%s\": [", name);
	for (size_t i = 0; i < n; i++) {
		const struct model_stack *s = &m->stacks[idx[i]];
		uint64_t bytes, count;
		switch (k) {
		case MODEL_BY_PEAK: bytes = s->peak_bytes; count = s->peak_blocks; break;
		case MODEL_BY_TEMPORARY: bytes = s->temporary_bytes; count = s->temporary; break;
		case MODEL_BY_LEAKED: bytes = s->leaked_bytes; count = s->leaked_blocks; break;
		default: bytes = s->allocated_bytes; count = s->allocations; break;
		}
		fprintf(out, "%s\n    {\"bytes\": %" PRIu64 ", \"count\": %" PRIu64 ", \"stack_id\": %" PRIu64
			     ", \"allocations\": %" PRIu64 ", \"allocated_bytes\": %" PRIu64
			     ", \"temporary\": %" PRIu64 ", \"temporary_bytes\": %" PRIu64
			     ", \"peak_bytes\": %" PRIu64 ", \"peak_blocks\": %" PRIu64
			     ", \"leaked_bytes\": %" PRIu64 ", \"leaked_blocks\": %" PRIu64 ", \"kind\": \"heap\",\n      ",
			i ? "," : "", bytes, count, s->id, s->allocations, s->allocated_bytes, s->temporary,
			s->temporary_bytes, s->peak_bytes, s->peak_blocks, s->leaked_bytes, s->leaked_blocks);
		stack(out, m, idx[i], o->depth, frames, cap);
		fputs("}", out);
	}
	fputs(n ? "\n  ],\n" : "],\n", out);
	free(idx);
	return 0;
}

/* ---- memory beyond the heap ------------------------------------------------ */

static void mallinfo(FILE *out, const struct model_mallinfo *mi)
{
	if (!mi->present) {
		fputs("null", out);
		return;
	}
	fprintf(out, "{\"time_ns\": %" PRIu64 ", \"arena\": %" PRIu64 ", \"ordblks\": %" PRIu64 ", \"hblks\": %" PRIu64
		     ", \"hblkhd\": %" PRIu64 ", \"uordblks\": %" PRIu64 ", \"fordblks\": %" PRIu64
		     ", \"keepcost\": %" PRIu64 "}",
		mi->time_ns, mi->arena, mi->ordblks, mi->hblks, mi->hblkhd, mi->uordblks, mi->fordblks, mi->keepcost);
}

static void mem_summary(FILE *out, const struct model *m)
{
	const struct model_summary *s = &m->sum;
	const char *in = "    ";
	kv_u(out, in, "peak_usable_bytes", s->peak_usable, 0);
	kv_u(out, in, "leaked_usable_bytes", s->leaked_usable, 0);
	kv_u(out, in, "live_usable_bytes_at_end", s->live_usable, 0);
	/* TR_MAP kinds: 1 mmap, 2 munmap, 3 mremap, 4 brk, 5 sbrk */
	fprintf(out, "    \"map_calls\": {\"mmap\": %" PRIu64 ", \"munmap\": %" PRIu64 ", \"mremap\": %" PRIu64
		     ", \"brk\": %" PRIu64 ", \"sbrk\": %" PRIu64 "},\n",
		s->map_calls[1], s->map_calls[2], s->map_calls[3], s->map_calls[4], s->map_calls[5]);
	kv_u(out, in, "peak_mapped_bytes", s->peak_mapped, 0);
	kv_u(out, in, "peak_mapped_time_ns", s->peak_mapped_time_ns, 0);
	kv_u(out, in, "leaked_mapped_bytes", s->leaked_mapped, 0);
	kv_u(out, in, "leaked_mapped_regions", s->leaked_mapped_regions, 0);
	kv_u(out, in, "mapped_bytes_at_end", s->mapped_bytes, 0);
	kv_u(out, in, "mapped_regions_at_end", s->mapped_regions, 0);
	kv_u(out, in, "mallinfo_samples", s->mallinfo_samples, 0);
	fputs("    \"mallinfo\": ", out);
	mallinfo(out, &s->mallinfo);
	fputs(",\n", out);
}

/* The program's own mappings: peak_mapped (leaked == 0) or leaks_mapped. */
static int mapped_section(FILE *out, const struct model *m, const struct report_opts *o, int leaked,
			  struct model_frame *frames, size_t cap)
{
	size_t ranked = model_ranked_mapped(m, leaked);
	size_t want = o->top && o->top < ranked ? o->top : ranked;
	size_t *idx = malloc((want ? want : 1) * sizeof(*idx));
	if (!idx)
		return -ENOMEM;
	size_t n = model_top_mapped(m, leaked, want, idx);
	fprintf(out, "  \"%s\": [", leaked ? "leaks_mapped" : "peak_mapped");
	for (size_t i = 0; i < n; i++) {
		const struct model_stack *s = &m->stacks[idx[i]];
		fprintf(out, "%s\n    {\"kind\": \"mmap\", \"bytes\": %" PRIu64 ", \"count\": %" PRIu64
			     ", \"stack_id\": %" PRIu64 ", \"map_calls\": %" PRIu64 ", \"mapped_total_bytes\": %" PRIu64
			     ", \"mapped_peak_bytes\": %" PRIu64 ", \"mapped_peak_regions\": %" PRIu64
			     ", \"mapped_leaked_bytes\": %" PRIu64 ", \"mapped_leaked_regions\": %" PRIu64 ",\n      ",
			i ? "," : "", leaked ? s->mapped_leaked : s->mapped_peak,
			leaked ? s->mapped_leaked_regions : s->mapped_peak_regions, s->id, s->map_calls, s->mapped_total,
			s->mapped_peak, s->mapped_peak_regions, s->mapped_leaked, s->mapped_leaked_regions);
		stack(out, m, idx[i], o->depth, frames, cap);
		fputs("}", out);
	}
	fputs(n ? "\n  ],\n" : "],\n", out);
	free(idx);
	return 0;
}

static void growth(FILE *out, const struct model *m, const struct report_opts *o, struct model_frame *frames,
		   size_t cap)
{
	size_t want = o->top && o->top < m->ngrowth ? o->top : m->ngrowth;
	fputs("  \"growth\": [", out);
	for (size_t i = 0; i < want; i++) {
		const struct model_growth *g = &m->growth[i];
		fprintf(out, "%s\n    {\"chains\": %" PRIu64 ", \"reallocs\": %" PRIu64 ", \"moves\": %" PRIu64
			     ", \"longest\": %" PRIu64 ", \"max_bytes\": %" PRIu64 ", \"copied_bytes\": %" PRIu64
			     ", \"final_bytes\": %" PRIu64 ", \"slack_bytes\": %" PRIu64 ", \"site_stack_id\": %" PRIu64
			     ",\n      \"hint\": \"reserve capacity up front (with_capacity, reserve)\",\n      ",
			i ? "," : "", g->chains, g->reallocs, g->moves, g->longest, g->max_bytes, g->copied_bytes,
			g->final_bytes, g->slack_bytes, m->stacks[g->stack].id);
		stack(out, m, g->stack, o->depth, frames, cap);
		fputs("}", out);
	}
	fputs(want ? "\n  ],\n" : "],\n", out);
}

static void waterfall_one(FILE *out, const struct model_snapshot *sn)
{
	const struct model_waterfall *w = &sn->w;
	const char *in = "      ";
	if (!sn->present) {
		fputs("null", out);
		return;
	}
	fputs("{\n", out);
	kv_u(out, in, "time_ns", sn->time_ns, 0);
	fputs("      \"steps\": [", out);
	int64_t total = 0;
	for (int k = 0; k < MODEL_W_STEPS; k++) {
		/* steps from a corrupt trace may not add up in 64 bits: wrap, don't trap */
		total = (int64_t)((uint64_t)total + (uint64_t)w->step[k]);
		fprintf(out, "%s\n        {\"step\": \"%s\", \"bytes\": %" PRId64 ", \"total\": %" PRId64
			     ", \"share\": %.4f}",
			k ? "," : "", model_wstep_name((enum model_wstep)k), w->step[k], total,
			w->rss ? (double)w->step[k] / (double)w->rss : 0.0);
	}
	fputs("\n      ],\n", out);
	kv_u(out, in, "live_blocks", sn->live_blocks, 0);
	kv_u(out, in, "requested_bytes", w->requested, 0);
	kv_u(out, in, "usable_bytes", w->usable, 0);
	kv_u(out, in, "chunk_bytes", w->chunks, 0);
	fprintf(out, "      \"allocator_stats\": %s,\n", w->allocator_stats ? "true" : "false");
	kv_u(out, in, "allocator_in_use_bytes", w->allocator_in_use, 0);
	kv_u(out, in, "allocator_held_bytes", w->allocator_held, 0);
	kv_u(out, in, "heap_rss_bytes", w->heap_rss, 0);
	kv_u(out, in, "anon_rss_bytes", w->anon_rss, 0);
	kv_u(out, in, "rss_bytes", w->rss, 0);
	kv_u(out, in, "unexplained_bytes", w->unexplained, 0);
	fprintf(out, "      \"unexplained_share\": %.4f,\n",
		w->anon_rss ? (double)w->unexplained / (double)w->anon_rss : 0.0);
	kv_u(out, in, "mapped_bytes", sn->mapped, 0);
	fputs("      \"mallinfo\": ", out);
	mallinfo(out, &sn->mallinfo);
	fputs(",\n      \"by_kind\": [", out);
	for (size_t i = 0; i < sn->ngroups; i++) {
		const struct procfs_group *g = &sn->groups[i];
		fprintf(out, "%s\n        {\"kind\": \"%s\", \"name\": ", i ? "," : "", procfs_kind_name(g->kind));
		rjson_string(out, g->kind == PROCFS_LIB ? g->name : NULL);
		fprintf(out, ", \"mappings\": %zu, \"size_bytes\": %" PRIu64 ", \"rss_bytes\": %" PRIu64
			     ", \"pss_bytes\": %" PRIu64 ", \"dirty_bytes\": %" PRIu64 ", \"anon_bytes\": %" PRIu64
			     ", \"swap_bytes\": %" PRIu64 "}",
			g->t.maps, g->t.size, g->t.rss, g->t.pss, g->t.dirty, g->t.anonymous, g->t.swap);
	}
	fputs(sn->ngroups ? "\n      ]\n    }" : "]\n    }", out);
}

static void waterfall(FILE *out, const struct model *m)
{
	fputs("  \"waterfall\": {\n    \"peak\": ", out);
	waterfall_one(out, &m->snap[MODEL_AT_PEAK]);
	fputs(",\n    \"exit\": ", out);
	waterfall_one(out, &m->snap[MODEL_AT_EXIT]);
	fputs("\n  },\n", out);
}

static void summary(FILE *out, const struct model *m, const struct report_opts *o)
{
	const struct model_summary *s = &m->sum;
	const char *in = "    ";
	fputs("  \"summary\": {\n", out);
	kv_s(out, in, "trace", o->trace);
	kv_s(out, in, "program", s->program);
	fputs("    \"argv\": [", out);
	for (uint32_t i = 0; i < s->argc; i++) {
		if (i)
			fputs(", ", out);
		rjson_string(out, s->argv[i]);
	}
	fputs("],\n", out);
	kv_u(out, in, "pid", s->pid, 0);
	kv_u(out, in, "start_unix_ns", s->start_unix_ns, 0);
	kv_u(out, in, "threads", s->threads, 0);
	kv_u(out, in, "run_time_ns", s->run_time_ns, 0);
	fprintf(out, "    \"exit\": \"%s\",\n",
		!s->has_end ? "unknown" : s->exit_kind == MODEL_EXITED ? "exited"
				       : s->exit_kind == MODEL_SIGNALED ? "signaled" : "unknown");
	if (s->has_end && s->exit_kind == MODEL_EXITED)
		fprintf(out, "    \"exit_code\": %" PRIu64 ",\n    \"exit_signal\": null,\n", s->exit_code);
	else if (s->has_end && s->exit_kind == MODEL_SIGNALED)
		fprintf(out, "    \"exit_code\": null,\n    \"exit_signal\": %" PRIu64 ",\n", s->exit_code);
	else
		fputs("    \"exit_code\": null,\n    \"exit_signal\": null,\n", out);
	fprintf(out, "    \"complete\": %s,\n", s->complete ? "true" : "false");
	kv_s(out, in, "incomplete_reason", s->complete ? NULL : s->incomplete_reason);
	kv_u(out, in, "allocations", s->allocations, 0);
	fprintf(out, "    \"allocations_per_sec\": %.1f,\n", s->allocations_per_sec);
	kv_u(out, in, "frees", s->frees, 0);
	kv_u(out, in, "allocated_bytes", s->allocated_bytes, 0);
	kv_u(out, in, "temporary", s->temporary, 0);
	kv_u(out, in, "temporary_bytes", s->temporary_bytes, 0);
	kv_u(out, in, "peak_heap_bytes", s->peak_heap, 0);
	kv_u(out, in, "peak_time_ns", s->peak_time_ns, 0);
	kv_u(out, in, "peak_blocks", s->peak_blocks, 0);
	kv_u(out, in, "peak_rss_bytes", s->peak_rss, 0);
	kv_u(out, in, "peak_rss_time_ns", s->peak_rss_time_ns, 0);
	kv_u(out, in, "rss_samples", s->rss_samples, 0);
	kv_u(out, in, "leaked_bytes", s->leaked_bytes, 0);
	kv_u(out, in, "leaked_blocks", s->leaked_blocks, 0);
	fprintf(out, "    \"leaks_at_exit\": %s,\n", s->leaks_at_exit ? "true" : "false");
	kv_u(out, in, "live_bytes_at_end", s->live_bytes, 0);
	kv_u(out, in, "live_blocks_at_end", s->live_blocks, 0);
	kv_u(out, in, "unknown_frees", s->unknown_frees, 0);
	kv_u(out, in, "reused_live", s->reused_live, 0);
	kv_u(out, in, "dropped_events", s->dropped_events, 0);
	kv_u(out, in, "truncated_stacks", s->truncated_stacks, 0);
	kv_u(out, in, "stacks", m->nstacks, 0);
	mem_summary(out, m);
	fputs("    \"calls\": {", out);
	int first = 1;
	for (unsigned k = 0; k < MODEL_KINDS; k++) {
		const char *name = report_kind_name(k);
		if (!s->by_kind[k])
			continue;
		if (name)
			fprintf(out, "%s\"%s\": %" PRIu64, first ? "" : ", ", name, s->by_kind[k]);
		else
			fprintf(out, "%s\"kind_%u\": %" PRIu64, first ? "" : ", ", k, s->by_kind[k]);
		first = 0;
	}
	fputs("}\n  },\n", out);
}

static void histogram(FILE *out, const struct model *m)
{
	int first = 1;
	fputs("  \"histogram\": [", out);
	for (unsigned i = 0; i < MODEL_HIST_BUCKETS; i++) {
		uint64_t lo, hi;
		if (!m->hist[i].count)
			continue;
		model_bucket_range(i, &lo, &hi);
		fprintf(out, "%s\n    {\"min\": %" PRIu64 ", \"max\": %" PRIu64 ", \"count\": %" PRIu64
			     ", \"bytes\": %" PRIu64 "}",
			first ? "" : ",", lo, hi, m->hist[i].count, m->hist[i].bytes);
		first = 0;
	}
	fputs(first ? "],\n" : "\n  ],\n", out);
}

static void timeline(FILE *out, const struct model *m)
{
	fprintf(out, "  \"timeline\": {\"step_ns\": %" PRIu64 ", \"points\": [", m->timeline_step_ns);
	for (size_t i = 0; i < m->ntimeline; i++) {
		const struct model_point *p = &m->timeline[i];
		fprintf(out, "%s[%" PRIu64 ", %" PRIu64 ", %" PRIu64 "]", i ? (i % 4 ? ", " : ",\n    ") : "\n    ",
			p->time_ns, p->heap, p->rss);
	}
	fputs(m->ntimeline ? "\n  ]}\n" : "]}\n", out);
}

int report_json(FILE *out, const struct model *m, const struct report_opts *o)
{
	/* Frames of one stack at a time; a stack deeper than this is cut with
	 * frames_total saying how deep it was. */
	size_t cap = 4096;
	struct model_frame *frames = malloc(cap * sizeof(*frames));
	if (!frames)
		return -ENOMEM;
	fprintf(out, "{\n  \"format\": \"heapscope-report\",\n  \"version\": %d,\n", JSON_FORMAT_VERSION);
	summary(out, m, o);
	report_json_processes(out, m);
	int ret = section(out, m, o, "peak", MODEL_BY_PEAK, frames, cap);
	if (!ret)
		ret = section(out, m, o, "allocations", MODEL_BY_ALLOCATIONS, frames, cap);
	if (!ret)
		ret = section(out, m, o, "temporary", MODEL_BY_TEMPORARY, frames, cap);
	if (!ret)
		ret = section(out, m, o, "leaks", MODEL_BY_LEAKED, frames, cap);
	if (!ret)
		ret = mapped_section(out, m, o, 0, frames, cap);
	if (!ret)
		ret = mapped_section(out, m, o, 1, frames, cap);
	if (!ret) {
		growth(out, m, o, frames, cap);
		waterfall(out, m);
	}
	histogram(out, m);
	timeline(out, m);
	fputs("}\n", out);
	free(frames);
	if (ret)
		return ret;
	errno = 0;
	if (fflush(out) || ferror(out))
		return errno ? -errno : -EIO; /* fflush sets errno; an earlier failure may not have */
	return 0;
}
