/* robust_closefds.c: a program that closes every descriptor above stderr,
 * as daemons and sandboxes do, then opens FILE (which takes the lowest
 * free number), writes a known text to it and keeps allocating from new
 * call stacks. Whatever a preloaded library held open is gone and its
 * number reused: nothing but the program's own text may reach FILE.
 * Prints "robust_closefds: fd N wrote B" and exits 0 when FILE holds
 * exactly what it wrote, 1 otherwise.
 * usage: robust_closefds FILE
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *__attribute__((noinline)) deep(int n)
{
	if (n == 0)
		return malloc(16); /* LINE:deep */
	void *p = deep(n - 1);
	__asm__ volatile("" : : "r"(p) : "memory");
	return p;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	for (int fd = 3; fd < 1024; fd++)
		close(fd);
	int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return 2;
	static const char text[] = "robust_closefds: the program's own text\n";
	size_t wrote = 0;
	for (int i = 0; i < 200; i++) {
		if (write(fd, text, sizeof(text) - 1) != (ssize_t)sizeof(text) - 1)
			return 2;
		wrote += sizeof(text) - 1;
		free(deep(i % 50)); /* new stacks: the unwinder has work to do */
	}
	close(fd);
	char *buf = malloc(wrote + 1);
	int in = open(argv[1], O_RDONLY);
	ssize_t got = in < 0 ? -1 : read(in, buf, wrote + 1);
	int same = got == (ssize_t)wrote;
	for (size_t i = 0; same && i < wrote; i += sizeof(text) - 1)
		same = !memcmp(buf + i, text, sizeof(text) - 1);
	printf("robust_closefds: fd %d wrote %zu read %zd %s\n", fd, wrote, got, same ? "same" : "DIFFERENT");
	return same ? 0 : 1;
}
