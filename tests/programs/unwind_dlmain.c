/* unwind_dlmain.c: loads LIB_A, allocates through it, unloads it, then the
 * same with LIB_B, which the loader puts at the same address. Prints
 *	unwind_dlmain: same address yes|no
 * usage: unwind_dlmain LIB_A LIB_B */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#define CALLS 10

__attribute__((noinline)) static void *use(const char *lib, int base)
{
	void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		fprintf(stderr, "unwind_dlmain: %s\n", dlerror());
		exit(1);
	}
	void *(*f)(int) = (void *(*)(int))dlsym(h, "unwind_dl_alloc");
	if (!f)
		exit(1);
	for (int i = 0; i < CALLS; i++)
		free(f(base + i)); /* LINE:use */
	if (dlclose(h) != 0)
		exit(1);
	return (void *)f;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	void *a = use(argv[1], 16); /* LINE:use_a */
	void *b = use(argv[2], 32); /* LINE:use_b */
	printf("unwind_dlmain: same address %s\n", a == b ? "yes" : "no");
	return 0;
}
