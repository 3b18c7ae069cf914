/* robust_ops.c: THREADS threads, each making OPS heap operations (a malloc
 * or a free, chosen by a private LCG over 64 slots), then freeing what is
 * left. Prints the totals the program counted itself:
 *	robust_ops: threads T ops O mallocs M frees F
 * usage: robust_ops [THREADS [OPS]]   (default 2 x 5000000)
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define SLOTS 64

struct work {
	long ops, mallocs, frees;
	unsigned long seed;
};

static void *worker(void *arg)
{
	struct work *w = arg;
	void *slot[SLOTS] = { 0 };
	unsigned long x = w->seed;
	for (long i = 0; i < w->ops; i++) {
		x = x * 6364136223846793005ul + 1442695040888963407ul;
		unsigned k = (unsigned)(x >> 33) % SLOTS;
		if (slot[k]) {
			free(slot[k]);
			slot[k] = NULL;
			w->frees++;
		} else {
			slot[k] = malloc(16 + (x >> 40) % 256); /* LINE:alloc */
			if (!slot[k])
				abort();
			*(volatile char *)slot[k] = 1;
			w->mallocs++;
		}
	}
	for (unsigned k = 0; k < SLOTS; k++) {
		if (slot[k]) {
			free(slot[k]);
			w->frees++;
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 2;
	long ops = argc > 2 ? atol(argv[2]) : 5000000;
	if (n < 1 || n > 64)
		return 2;
	pthread_t th[64];
	struct work w[64];
	for (int i = 0; i < n; i++) {
		w[i] = (struct work){ .ops = ops, .seed = 12345u + 7919u * (unsigned long)i };
		if (pthread_create(&th[i], NULL, worker, &w[i]))
			return 1;
	}
	long mallocs = 0, frees = 0;
	for (int i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		mallocs += w[i].mallocs;
		frees += w[i].frees;
	}
	printf("robust_ops: threads %d ops %ld mallocs %ld frees %ld\n", n, ops * n, mallocs, frees);
	return 0;
}
