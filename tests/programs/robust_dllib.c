/* robust_dllib.c: a library that robust_dlopen loads, uses and unloads.
 * Built as robust_dllib.so (-shared -fPIC). */
#include <stdlib.h>

void *robust_dl_keep(size_t n);
void robust_dl_churn(int n);

void *robust_dl_keep(size_t n)
{
	void *p = malloc(n); /* LINE:keep */
	if (p)
		*(volatile char *)p = 1;
	return p;
}

void robust_dl_churn(int n)
{
	for (int i = 0; i < n; i++) {
		void *p = malloc(64); /* LINE:churn */
		if (p)
			*(volatile char *)p = 1;
		free(p);
	}
}
