/* csv_load.c: the C twin of the Rust CSV loader (examples/csv-rust).
 *
 * Reads ./example.csv (or argv[1]) into memory the way the Rust program does:
 * the header's fields stored apart, then one record per row, one heap string
 * per field. Arrays start at 4 elements and double when full, as Rust's Vec
 * does when `collect` cannot know the length. Everything is freed at the end,
 * as Rust drops the sheet when main returns.
 *
 * Build: cc -O2 -g -o csv_load csv_load.c
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growable array of strings: the Vec<String> of one row. */
struct fields {
	char **v;
	size_t len, cap;
};

/* The sheet: header fields apart, then the rows. */
struct sheet {
	struct fields headers;
	struct fields *rows;
	size_t nrows, caprows;
};

static void die(const char *what)
{
	perror(what);
	exit(1);
}

/* Appends s to f, doubling the array when full (first growth: 4 slots). */
static void fields_push(struct fields *f, char *s)
{
	if (f->len == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 4;
		char **v = realloc(f->v, cap * sizeof(*v)); /* LINE:fields_grow */
		if (!v)
			die("realloc");
		f->v = v;
		f->cap = cap;
	}
	f->v[f->len++] = s;
}

/* Splits line at commas, one strdup per field; the line itself is not kept. */
static __attribute__((noinline)) struct fields split_str(char *line)
{
	struct fields f = { 0 };
	char *p = line;
	for (;;) {
		char *comma = strchr(p, ',');
		if (comma)
			*comma = '\0';
		char *s = strdup(p); /* LINE:field */
		if (!s)
			die("strdup");
		fields_push(&f, s);
		if (!comma)
			break;
		p = comma + 1;
	}
	return f;
}

static void sheet_push_row(struct sheet *sh, struct fields row)
{
	if (sh->nrows == sh->caprows) {
		size_t cap = sh->caprows ? sh->caprows * 2 : 4;
		struct fields *rows = realloc(sh->rows, cap * sizeof(*rows)); /* LINE:rows_grow */
		if (!rows)
			die("realloc");
		sh->rows = rows;
		sh->caprows = cap;
	}
	sh->rows[sh->nrows++] = row;
}

static void fields_free(struct fields *f)
{
	for (size_t i = 0; i < f->len; i++)
		free(f->v[i]);
	free(f->v);
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "./example.csv";
	FILE *in = fopen(path, "r");
	if (!in)
		die(path);

	struct sheet sh = { 0 };
	char *line = NULL;
	size_t linecap = 0;
	ssize_t n;
	int have_header = 0;
	while ((n = getline(&line, &linecap, in)) >= 0) {
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		if (!have_header) {
			sh.headers = split_str(line);
			have_header = 1;
		} else {
			sheet_push_row(&sh, split_str(line));
		}
	}
	if (ferror(in))
		die(path);
	if (!have_header) {
		fprintf(stderr, "%s: empty header\n", path);
		return 1;
	}
	free(line);
	fclose(in);

	/* The sheet goes out of scope: free it all, as Rust's drop would. */
	fields_free(&sh.headers);
	for (size_t i = 0; i < sh.nrows; i++)
		fields_free(&sh.rows[i]);
	free(sh.rows);
	return 0;
}
