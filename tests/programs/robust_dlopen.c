/* robust_dlopen.c: loads LIB with dlopen, keeps KEEP blocks it allocates
 * (never freed: leaks at exit), churns CHURN more, and unloads it with
 * dlclose before the end, so its frames must be symbolized from a library
 * no longer loaded. Then loads and unloads it a second time. Prints:
 *	robust_dlopen: kept K churned C unloaded U
 * usage: robust_dlopen LIB
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#define KEEP 5
#define CHURN 100

void *robust_kept[2 * KEEP]; /* global: the blocks stay reachable, as leaks do */

int main(int argc, char **argv)
{
	void **kept = robust_kept;
	int nkept = 0, churned = 0, unloaded = 0;
	if (argc < 2)
		return 2;
	for (int round = 0; round < 2; round++) {
		void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
		if (!h) {
			fprintf(stderr, "robust_dlopen: %s\n", dlerror());
			return 1;
		}
		void *(*keep)(size_t) = (void *(*)(size_t))dlsym(h, "robust_dl_keep");
		void (*churn)(int) = (void (*)(int))dlsym(h, "robust_dl_churn");
		if (!keep || !churn)
			return 1;
		for (int i = 0; i < KEEP; i++)
			kept[nkept++] = keep(1000 + (size_t)round);
		churn(CHURN);
		churned += CHURN;
		if (dlclose(h) == 0)
			unloaded++;
	}
	printf("robust_dlopen: kept %d churned %d unloaded %d\n", nkept, churned, unloaded);
	return 0;
}
