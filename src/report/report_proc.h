/*
 * report_proc.h: the processes of a trace in the reports (report_proc.c).
 * Called by report_text.c and report_json.c; model_proc.h has the numbers.
 */
#ifndef HS_REPORT_PROC_H
#define HS_REPORT_PROC_H

#include "analyze/model_proc.h"
#include "report/report.h"

#include <stdio.h>

/* The PROCESSES section: nothing for a trace of one recorded process. */
void report_text_processes(FILE *out, const struct model *m);

/* "processes": [...], with its trailing comma: one entry per process. */
void report_json_processes(FILE *out, const struct model *m);

#endif
