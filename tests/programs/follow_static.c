/* follow_static.c: built with -static by the tests: a program heapscope's
 * library cannot enter. Allocates, prints "static", exits with status 4. */
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
	void *p = malloc(123);
	printf("static %p\n", p != NULL ? (void *)1 : NULL);
	return 4;
}
