/*
 * cli_util.c: what the report-side subcommands share: their usage errors,
 * option values, loading a trace with the one-line error, and writing an
 * output file that appears under its name only once complete.
 */
#include "cli.h"
#include "analyze/model.h"
#include "analyze/model_proc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cli_usage_error(const char *cmd, const char *usage, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "heapscope: %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "; %s\n", usage);
	return 2;
}

int cli_opt_value(int argc, char **argv, int *i, const char *name, const char **val)
{
	size_t n = strlen(name);
	if (strncmp(argv[*i], name, n))
		return 0;
	if (argv[*i][n] == '=') {
		*val = argv[*i] + n + 1;
		return 1;
	}
	if (argv[*i][n])
		return 0;
	*val = *i + 1 < argc ? argv[++*i] : NULL;
	return 1;
}

int cli_parse_count(const char *s, size_t *out)
{
	char *end;
	/* strtoull would take a sign or leading blanks; a count has neither */
	if (!s || !*s || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v > 1000000000ull)
		return -1;
	*out = (size_t)v;
	return 0;
}

struct model *cli_load(const char *path, uint64_t pid)
{
	struct stat st;
	struct model *m;
	char err[600];
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		cli_error("%s: is a directory; give the trace file that 'heapscope record' wrote", path);
		return NULL;
	}
	int ret = pid ? model_load_pid(&m, path, pid, err, sizeof(err)) : model_load(&m, path, err, sizeof(err));
	if (pid && ret == -ESRCH)
		cli_error("%s", err); /* names the pid and how to list the trace's */
	else if (ret == -ENOENT)
		cli_error("%s; check the path, or record a trace with 'heapscope record -o %s -- PROGRAM'", err, path);
	else if (ret == -EACCES || ret == -EPERM)
		cli_error("%s; check the file's permissions", err);
	else if (ret == -ENOMEM)
		cli_error("%s; free memory or use a machine with more", err);
	else if (ret < 0)
		/* a reason with ';' already says what to do */
		cli_error(strchr(err, ';') ? "%s" : "%s; is it a trace written by 'heapscope record'?", err);
	if (ret < 0)
		return NULL;
	if (m->sum.gap == MODEL_GAP_CORRUPT) {
		cli_error("%s: %s; the file is damaged: record the program again", path, m->sum.incomplete_reason);
		model_free(m);
		return NULL;
	}
	return m;
}

void cli_warn_incomplete(const struct model *m, const char *path, const char *what)
{
	if (!m->sum.complete)
		cli_error("%s: incomplete trace: %s; %s covers what was recorded", path, m->sum.incomplete_reason,
			  what);
}

int cli_output_open(struct cli_output *o, const char *path)
{
	o->path = path;
	o->tmp = NULL;
	o->f = NULL;
	if (!path) {
		o->f = stdout;
		return 0;
	}
	size_t n = strlen(path) + 16;
	o->tmp = malloc(n);
	if (!o->tmp)
		return -ENOMEM;
	snprintf(o->tmp, n, "%s.tmp.XXXXXX", path);
	int fd = mkstemp(o->tmp);
	/* mkstemp makes 0600; the output is an ordinary file */
	if (fd < 0 || fchmod(fd, 0644) < 0 || !(o->f = fdopen(fd, "w"))) {
		int e = errno;
		if (fd >= 0) {
			close(fd);
			unlink(o->tmp);
		}
		return -e;
	}
	return 0;
}

int cli_output_close(struct cli_output *o, int ret)
{
	if (!o->path)
		return ret;
	if (o->f) {
		errno = 0;
		if (fclose(o->f) && !ret)
			ret = errno ? -errno : -EIO;
		if (!ret && rename(o->tmp, o->path) < 0)
			ret = -errno;
		if (ret < 0)
			unlink(o->tmp);
	}
	free(o->tmp);
	o->tmp = NULL;
	o->f = NULL;
	return ret;
}
