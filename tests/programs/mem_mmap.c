/* mem_mmap.c: mapping calls whose effect is known exactly.
 *
 * Maps three anonymous regions of 1, 2 and 3 MiB from three lines and writes
 * every page (6 MiB mapped and resident: the peak of mapped bytes), unmaps
 * the 2 MiB one, grows the 3 MiB one to 4 MiB with mremap and writes the new
 * MiB. At exit 1 MiB (from map_a) and 4 MiB (from remap) are still mapped.
 * No stdio and no malloc, so nothing else is mapped or allocated by it.
 *
 * With --wait it then says "ready" and waits for its standard input to end,
 * so that a test can look at it with pmap and heapscope maps.
 */
#define _GNU_SOURCE
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MiB (1024 * 1024)
#define RW (PROT_READ | PROT_WRITE)
#define ANON (MAP_PRIVATE | MAP_ANONYMOUS)

int main(int argc, char **argv)
{
	char *a = mmap(NULL, 1 * MiB, RW, ANON, -1, 0); /* LINE:map_a */
	char *b = mmap(NULL, 2 * MiB, RW, ANON, -1, 0); /* LINE:map_b */
	char *c = mmap(NULL, 3 * MiB, RW, ANON, -1, 0); /* LINE:map_c */
	if (a == MAP_FAILED || b == MAP_FAILED || c == MAP_FAILED)
		return 1;
	memset(a, 1, 1 * MiB);
	memset(b, 2, 2 * MiB);
	memset(c, 3, 3 * MiB);
	if (munmap(b, 2 * MiB)) /* LINE:unmap */
		return 1;
	c = mremap(c, 3 * MiB, 4 * MiB, MREMAP_MAYMOVE); /* LINE:remap */
	if (c == MAP_FAILED)
		return 1;
	memset(c + 3 * MiB, 4, 1 * MiB);
	if (argc > 1 && !strcmp(argv[1], "--wait")) {
		char buf[64];
		if (write(1, "ready\n", 6) != 6)
			return 1;
		while (read(0, buf, sizeof(buf)) > 0)
			;
	}
	return 0;
}
