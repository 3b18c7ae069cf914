/* robust_crash.c: dies at a point the caller chooses, or is killed from
 * outside at a random one.
 *	N kill|segv|abort   makes N blocks of 100 bytes (never freed), writes
 *	                    "robust_crash: allocated N", then dies that way
 *	loop FILE           allocates and frees blocks forever (1024 stay
 *	                    live); after each malloc returns, stores the count
 *	                    in FILE (mapped), so a killer knows how many
 *	                    completed
 */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void *keep[1 << 16];

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	if (!strcmp(argv[1], "loop")) {
		int fd = open(argv[2], O_RDWR | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || ftruncate(fd, 4096) < 0)
			return 1;
		volatile uint64_t *count = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (count == MAP_FAILED)
			return 1;
		for (uint64_t i = 0;; i++) {
			free(keep[i % 1024]);
			keep[i % 1024] = malloc(32 + i % 512); /* LINE:loop */
			count[0] = i + 1;
			*(volatile char *)keep[i % 1024] = 1;
		}
	}
	long n = atol(argv[1]);
	if (n < 0 || n > (long)(sizeof(keep) / sizeof(keep[0])))
		return 2;
	for (long i = 0; i < n; i++) {
		keep[i] = malloc(100); /* LINE:alloc */
		*(volatile char *)keep[i] = 1;
	}
	printf("robust_crash: allocated %ld\n", n);
	fflush(stdout);
	if (!strcmp(argv[2], "kill"))
		raise(SIGKILL);
	else if (!strcmp(argv[2], "segv"))
		*(volatile int *)(uintptr_t)(n < 0) = 1; /* address 0 */
	else if (!strcmp(argv[2], "abort"))
		abort();
	return 0;
}
