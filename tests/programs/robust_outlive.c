/* robust_outlive.c: a program that outlives its recorder. Phase 1 makes
 * malloc/free pairs slowly until the file GO exists (the test kills or
 * interrupts the recorder meanwhile); phase 2 makes PAIRS malloc/free pairs
 * as fast as it can, far more than the rings hold, so it would block if the
 * library waited for a recorder that is gone. SIGTERM is ignored, so a
 * forwarded one does not end it. Writes its pid to OUT at the start and
 * "robust_outlive: phase1 A phase2 B" to OUT at the end.
 * usage: robust_outlive OUT GO [PAIRS]   (default 2000000)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	long pairs = argc > 3 ? atol(argv[3]) : 2000000, a = 0, b = 0;
	signal(SIGTERM, SIG_IGN);
	FILE *out = fopen(argv[1], "w");
	if (!out)
		return 1;
	fprintf(out, "pid %d\n", (int)getpid());
	fflush(out);
	struct timespec ts = { 0, 1000000 };
	for (int ms = 0; access(argv[2], F_OK) != 0; ms++) {
		if (ms > 120000)
			return 3; /* nobody said go in two minutes */
		void *p = malloc(72); /* LINE:phase1 */
		*(volatile char *)p = 1;
		free(p);
		a++;
		nanosleep(&ts, NULL);
	}
	for (long i = 0; i < pairs; i++) {
		void *p = malloc(24 + (size_t)(i % 100)); /* LINE:phase2 */
		*(volatile char *)p = 1;
		free(p);
		b++;
	}
	fprintf(out, "robust_outlive: phase1 %ld phase2 %ld\n", a, b);
	fclose(out);
	return 0;
}
