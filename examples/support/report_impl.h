/*
 * report_impl.h - what the report files share beyond report.h.  Private
 * to examples/support: the SVG charts (report_svg.c) and the HTML page
 * (report_files.c) write text through the same XML escaping.
 */
#ifndef FMNN_EXAMPLES_REPORT_IMPL_H
#define FMNN_EXAMPLES_REPORT_IMPL_H

#include <stdio.h>

/* Writes s XML-escaped, for text and quoted attributes (report_svg.c). */
void report__put_xml(FILE *out, const char *s);

#endif /* FMNN_EXAMPLES_REPORT_IMPL_H */
