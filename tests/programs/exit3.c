/* exit3.c: writes known lines to stdout and stderr, leaks one block, exits 3.
 *
 * Uses stdio on purpose: the output must be the same with and without
 * heapscope, buffers flushed at exit included.
 */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	char *p = malloc(123); /* LINE:leak */
	if (!p)
		return 1;
	p[0] = 'x';
	printf("exit3: stdout line, %d args\n", argc - 1);
	for (int i = 1; i < argc; i++)
		printf("arg %d: %s\n", i, argv[i]);
	fprintf(stderr, "exit3: stderr line\n");
	fflush(stdout);
	printf("exit3: after flush %c\n", p[0]);
	exit(3);
}
