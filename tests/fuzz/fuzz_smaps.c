/*
 * fuzz_smaps.c: the /proc/PID/smaps parser (src/procfs) on hostile text,
 * then everything that reads its result: classification with and without a
 * trace's hints, grouping, totals and the names shown for each mapping.
 * The parser is handed an exact-size copy, so a read past len is a finding.
 */
#include "procfs/procfs.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct procfs_maps m;
	memset(&m, 0, sizeof(m));
	if (procfs_smaps_parse(&m, (const char *)data, size) < 0)
		return 0;
	/* hints from the input's first bytes: any byte pattern a trace can give */
	uint8_t *hints = m.n ? malloc(m.n) : NULL;
	for (size_t i = 0; hints && i < m.n; i++)
		hints[i] = size ? data[i % size] & 3u : 0;
	for (int pass = 0; pass < 2; pass++) {
		procfs_classify(m.v, m.n, pass ? hints : NULL);
		struct procfs_totals t;
		memset(&t, 0, sizeof(t));
		char mode[6];
		for (size_t i = 0; i < m.n; i++) {
			procfs_total_add(&t, &m.v[i]);
			(void)procfs_mode(&m.v[i], mode);
			const char *name = procfs_map_name(&m.v[i]);
			(void)strlen(name ? name : "");
			(void)procfs_kind_name(m.v[i].kind);
			(void)procfs_dirty(&m.v[i]);
		}
		size_t max = m.n + PROCFS_KINDS;
		struct procfs_group *g = malloc(max * sizeof(*g));
		if (g) {
			size_t k = procfs_group(m.v, m.n, g, max);
			for (size_t i = 0; i < k; i++)
				(void)strlen(g[i].name ? g[i].name : "");
			free(g);
		}
	}
	free(hints);
	procfs_maps_free(&m);
	return 0;
}
