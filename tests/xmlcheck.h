/*
 * xmlcheck.h - a small, strict XML 1.0 well-formedness checker for tests.
 *
 * It checks what a conforming parser rejects: one root element; tags
 * balanced, properly nested and matching exactly; names well formed;
 * attribute values quoted, unique per element, free of '<'; every '&' a
 * predefined or numeric reference to an allowed character; no ']]>' in
 * text; comments without '--'; the XML declaration only at the very
 * start; at most one DOCTYPE, before the root; CDATA only inside the root;
 * only whitespace, comments and processing instructions outside the root;
 * valid UTF-8 and no forbidden control characters.
 *
 * It does not read DTDs, so named entities other than amp, lt, gt, quot
 * and apos are errors (as they are in XHTML served as XML), and it does
 * not check namespaces.
 */
#ifndef FMNN_TESTS_XMLCHECK_H
#define FMNN_TESTS_XMLCHECK_H

#include <stddef.h>

/**
 * Returns 0 when the len bytes at text are a well-formed XML document.
 * Otherwise returns -1 and, when err is not NULL, writes
 * "line L, column C: what is wrong" into err (err_size bytes).
 */
int xml_check(const char *text, size_t len, char *err, size_t err_size);

/** xml_check() on the content of a file; -1 also when it cannot be read. */
int xml_check_file(const char *path, char *err, size_t err_size);

#endif /* FMNN_TESTS_XMLCHECK_H */
