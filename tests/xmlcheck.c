/*
 * xmlcheck.c - a strict XML 1.0 well-formedness checker (see xmlcheck.h).
 *
 * One pass over the bytes with an explicit stack of open elements, so
 * deep documents cannot overflow the C stack.  Every error names the line
 * and column where it was found.
 */
#include "xmlcheck.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct span {
    size_t start, len;
} span;

typedef struct parser {
    const unsigned char *s;
    size_t n, i;
    char *err;
    size_t err_size;
    span *stack;          /* names of the open elements */
    size_t depth, cap;
} parser;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int fail(parser *p, const char *fmt, ...)
{
    size_t line = 1, col = 1;
    va_list ap;
    int k;

    if (p->err == NULL || p->err_size == 0)
        return -1;
    for (size_t j = 0; j < p->i && j < p->n; j++) {
        if (p->s[j] == '\n') {
            line++;
            col = 1;
        } else if ((p->s[j] & 0xC0) != 0x80) {
            col++;
        }
    }
    k = snprintf(p->err, p->err_size, "line %zu, column %zu: ", line, col);
    if (k < 0 || (size_t)k >= p->err_size)
        return -1;
    va_start(ap, fmt);
    vsnprintf(p->err + k, p->err_size - (size_t)k, fmt, ap);
    va_end(ap);
    return -1;
}

static int at(const parser *p, const char *lit)
{
    size_t len = strlen(lit);
    return p->n - p->i >= len && memcmp(p->s + p->i, lit, len) == 0;
}

static int eof(const parser *p)
{
    return p->i >= p->n;
}

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int skip_spaces(parser *p)
{
    size_t start = p->i;
    while (!eof(p) && is_space(p->s[p->i]))
        p->i++;
    return p->i > start;
}

/* XML 1.0's Char production. */
static int is_xml_char(unsigned long c)
{
    return c == 0x9 || c == 0xA || c == 0xD || (c >= 0x20 && c <= 0xD7FF) ||
           (c >= 0xE000 && c <= 0xFFFD) || (c >= 0x10000 && c <= 0x10FFFF);
}

/* Reads one UTF-8 character at p->i into *cp; -1 if malformed. */
static int decode(parser *p, unsigned long *cp)
{
    const unsigned char *s = p->s + p->i;
    size_t left = p->n - p->i;
    unsigned long c = s[0], min;
    size_t len;

    if (c < 0x80) {
        len = 1;
        min = 0;
    } else if ((c & 0xE0) == 0xC0) {
        len = 2;
        c &= 0x1F;
        min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3;
        c &= 0x0F;
        min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4;
        c &= 0x07;
        min = 0x10000;
    } else {
        return fail(p, "invalid UTF-8 byte 0x%02X", s[0]);
    }
    if (left < len)
        return fail(p, "truncated UTF-8 sequence");
    for (size_t j = 1; j < len; j++) {
        if ((s[j] & 0xC0) != 0x80)
            return fail(p, "invalid UTF-8 sequence");
        c = (c << 6) | (s[j] & 0x3F);
    }
    if (c < min || (c >= 0xD800 && c <= 0xDFFF) || c > 0x10FFFF)
        return fail(p, "invalid UTF-8 sequence");
    *cp = c;
    p->i += len;
    return 0;
}

/* Consumes one character that may appear in text, values or comments. */
static int take_char(parser *p)
{
    unsigned long c = 0;
    size_t start = p->i;
    if (decode(p, &c) != 0)
        return -1;
    if (!is_xml_char(c)) {
        p->i = start; /* point at it */
        return fail(p, "character U+%04lX is not allowed in XML", c);
    }
    return 0;
}

static int name_start(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
           c == ':' || c >= 0x80;
}

static int name_char(unsigned char c)
{
    return name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

static int parse_name(parser *p, span *name, const char *what)
{
    if (eof(p) || !name_start(p->s[p->i]))
        return fail(p, "expected %s name", what);
    name->start = p->i;
    while (!eof(p) && name_char(p->s[p->i]))
        p->i++;
    name->len = p->i - name->start;
    return 0;
}

static int same_name(const parser *p, span a, span b)
{
    return a.len == b.len && memcmp(p->s + a.start, p->s + b.start, a.len) == 0;
}

/* &amp; &lt; &gt; &quot; &apos; &#N; &#xH; */
static int parse_reference(parser *p)
{
    static const char *const predefined[5] = { "amp", "lt", "gt", "quot", "apos" };
    size_t start = p->i;
    p->i++; /* '&' */
    if (at(p, "#")) {
        unsigned long v = 0;
        int hex = 0, digits = 0;
        p->i++;
        if (at(p, "x")) {
            hex = 1;
            p->i++;
        }
        for (; !eof(p); p->i++, digits++) {
            unsigned char c = p->s[p->i];
            int d;
            if (c >= '0' && c <= '9')
                d = c - '0';
            else if (hex && c >= 'a' && c <= 'f')
                d = c - 'a' + 10;
            else if (hex && c >= 'A' && c <= 'F')
                d = c - 'A' + 10;
            else
                break;
            if (v <= 0x10FFFF)
                v = v * (hex ? 16 : 10) + (unsigned long)d;
        }
        if (digits == 0 || !at(p, ";")) {
            p->i = start;
            return fail(p, "malformed character reference");
        }
        p->i++;
        if (!is_xml_char(v)) {
            p->i = start;
            return fail(p, "character reference to a character XML forbids");
        }
        return 0;
    } else {
        span name;
        if (eof(p) || !name_start(p->s[p->i])) {
            p->i = start;
            return fail(p, "'&' that does not start a reference (write &amp;)");
        }
        parse_name(p, &name, "entity");
        if (!at(p, ";")) {
            p->i = start;
            return fail(p, "entity reference without ';'");
        }
        p->i++;
        for (int k = 0; k < 5; k++)
            if (name.len == strlen(predefined[k]) &&
                memcmp(p->s + name.start, predefined[k], name.len) == 0)
                return 0;
        p->i = start;
        return fail(p, "undefined entity &%.*s;", (int)name.len,
                    (const char *)p->s + name.start);
    }
}

static int parse_attr_value(parser *p)
{
    unsigned char q;
    size_t start = p->i;
    if (eof(p) || (p->s[p->i] != '"' && p->s[p->i] != '\''))
        return fail(p, "attribute value is not quoted");
    q = p->s[p->i++];
    while (!eof(p) && p->s[p->i] != q) {
        if (p->s[p->i] == '<')
            return fail(p, "'<' inside an attribute value");
        if (p->s[p->i] == '&') {
            if (parse_reference(p) != 0)
                return -1;
        } else if (take_char(p) != 0) {
            return -1;
        }
    }
    if (eof(p)) {
        p->i = start;
        return fail(p, "unterminated attribute value");
    }
    p->i++;
    return 0;
}

/*
 * Attributes up to the end of a start tag ("/>" or ">", or "?>" for the
 * XML declaration): whitespace before each, name = quoted value, no
 * duplicates.  Names are collected in *names (count in *count).
 */
static int parse_attributes(parser *p, const char *end, span **names,
                            size_t *count)
{
    size_t cap = 0;
    *count = 0;
    *names = NULL;
    for (;;) {
        int spaced = skip_spaces(p);
        span name;
        if (eof(p))
            return fail(p, "unterminated tag");
        if (at(p, end) || (end[0] == '>' && at(p, "/>")))
            return 0;
        if (!spaced)
            return fail(p, "missing whitespace before an attribute");
        if (parse_name(p, &name, "attribute") != 0)
            return -1;
        for (size_t k = 0; k < *count; k++)
            if (same_name(p, (*names)[k], name)) {
                p->i = name.start;
                return fail(p, "duplicate attribute %.*s", (int)name.len,
                            (const char *)p->s + name.start);
            }
        if (*count == cap) {
            span *grown;
            cap = cap ? 2 * cap : 8;
            grown = realloc(*names, cap * sizeof *grown);
            if (grown == NULL)
                return fail(p, "out of memory");
            *names = grown;
        }
        (*names)[(*count)++] = name;
        skip_spaces(p);
        if (!at(p, "="))
            return fail(p, "attribute without '=' and a value");
        p->i++;
        skip_spaces(p);
        if (parse_attr_value(p) != 0)
            return -1;
    }
}

/* A start tag; *empty tells whether it was "<name/>". */
static int parse_start_tag(parser *p, span *name, int *empty)
{
    span *attrs;
    size_t count;
    int rc;
    p->i++; /* '<' */
    if (parse_name(p, name, "element") != 0)
        return -1;
    rc = parse_attributes(p, ">", &attrs, &count);
    free(attrs);
    if (rc != 0)
        return -1;
    *empty = at(p, "/>");
    p->i += *empty ? 2 : 1;
    return 0;
}

static int parse_comment(parser *p)
{
    size_t start = p->i;
    p->i += 4; /* "<!--" */
    while (!eof(p)) {
        if (at(p, "--")) {
            if (at(p, "-->")) {
                p->i += 3;
                return 0;
            }
            return fail(p, "'--' inside a comment");
        }
        if (take_char(p) != 0)
            return -1;
    }
    p->i = start;
    return fail(p, "unterminated comment");
}

static int parse_pi(parser *p)
{
    size_t start = p->i;
    span target;
    p->i += 2; /* "<?" */
    if (parse_name(p, &target, "processing instruction") != 0)
        return -1;
    if (target.len == 3 && (p->s[target.start] | 0x20) == 'x' &&
        (p->s[target.start + 1] | 0x20) == 'm' &&
        (p->s[target.start + 2] | 0x20) == 'l') {
        p->i = start;
        return fail(p, "XML declaration not at the start of the document");
    }
    if (!at(p, "?>") && !skip_spaces(p))
        return fail(p, "processing instruction target not followed by space");
    while (!eof(p)) {
        if (at(p, "?>")) {
            p->i += 2;
            return 0;
        }
        if (take_char(p) != 0)
            return -1;
    }
    p->i = start;
    return fail(p, "unterminated processing instruction");
}

static int parse_cdata(parser *p)
{
    size_t start = p->i;
    p->i += 9; /* "<![CDATA[" */
    while (!eof(p)) {
        if (at(p, "]]>")) {
            p->i += 3;
            return 0;
        }
        if (take_char(p) != 0)
            return -1;
    }
    p->i = start;
    return fail(p, "unterminated CDATA section");
}

/* <?xml version="1.x" encoding="..." standalone="yes|no"?> */
static int parse_xml_decl(parser *p)
{
    static const char *const order[3] = { "version", "encoding", "standalone" };
    span *names;
    size_t count, k = 0;
    int rc;
    p->i += 5; /* "<?xml" */
    rc = parse_attributes(p, "?>", &names, &count);
    if (rc == 0 && !at(p, "?>"))
        rc = fail(p, "XML declaration not closed by '?>'");
    if (rc == 0 && (count == 0 || names[0].len != 7 ||
                    memcmp(p->s + names[0].start, "version", 7) != 0))
        rc = fail(p, "XML declaration without version first");
    for (size_t j = 0; rc == 0 && j < count; j++) {
        while (k < 3 && !(names[j].len == strlen(order[k]) &&
                          memcmp(p->s + names[j].start, order[k], names[j].len) == 0))
            k++;
        if (k == 3)
            rc = fail(p, "unexpected item in the XML declaration");
        k++;
    }
    free(names);
    if (rc != 0)
        return -1;
    p->i += 2;
    return 0;
}

/* <!DOCTYPE name ...> with an optional [internal subset], skipped. */
static int parse_doctype(parser *p)
{
    size_t start = p->i;
    span name;
    int depth = 0;
    p->i += 9; /* "<!DOCTYPE" */
    if (!skip_spaces(p))
        return fail(p, "DOCTYPE without whitespace before its name");
    if (parse_name(p, &name, "DOCTYPE") != 0)
        return -1;
    while (!eof(p)) {
        unsigned char c = p->s[p->i];
        if (c == '"' || c == '\'') {
            p->i++;
            while (!eof(p) && p->s[p->i] != c)
                p->i++;
            if (eof(p))
                break;
            p->i++;
        } else if (c == '[') {
            depth++;
            p->i++;
        } else if (c == ']') {
            depth--;
            p->i++;
        } else if (c == '>' && depth <= 0) {
            p->i++;
            return 0;
        } else if (take_char(p) != 0) {
            return -1;
        }
    }
    p->i = start;
    return fail(p, "unterminated DOCTYPE");
}

static int push(parser *p, span name)
{
    if (p->depth == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 32;
        span *grown = realloc(p->stack, cap * sizeof *grown);
        if (grown == NULL)
            return fail(p, "out of memory");
        p->stack = grown;
        p->cap = cap;
    }
    p->stack[p->depth++] = name;
    return 0;
}

/* The root element and everything inside it. */
static int parse_element(parser *p)
{
    span name;
    int empty;

    if (parse_start_tag(p, &name, &empty) != 0)
        return -1;
    if (empty)
        return 0;
    if (push(p, name) != 0)
        return -1;
    while (p->depth > 0) {
        if (eof(p)) {
            span open = p->stack[p->depth - 1];
            return fail(p, "element <%.*s> is never closed", (int)open.len,
                        (const char *)p->s + open.start);
        }
        if (at(p, "</")) {
            span open = p->stack[p->depth - 1];
            size_t tag = p->i;
            p->i += 2;
            if (parse_name(p, &name, "end tag") != 0)
                return -1;
            if (!same_name(p, open, name)) {
                p->i = tag;
                return fail(p, "</%.*s> closes <%.*s>", (int)name.len,
                            (const char *)p->s + name.start, (int)open.len,
                            (const char *)p->s + open.start);
            }
            skip_spaces(p);
            if (!at(p, ">"))
                return fail(p, "end tag not closed by '>'");
            p->i++;
            p->depth--;
        } else if (at(p, "<!--")) {
            if (parse_comment(p) != 0)
                return -1;
        } else if (at(p, "<![CDATA[")) {
            if (parse_cdata(p) != 0)
                return -1;
        } else if (at(p, "<?")) {
            if (parse_pi(p) != 0)
                return -1;
        } else if (at(p, "<!")) {
            return fail(p, "markup declaration inside an element");
        } else if (at(p, "<")) {
            if (parse_start_tag(p, &name, &empty) != 0)
                return -1;
            if (!empty && push(p, name) != 0)
                return -1;
        } else if (at(p, "&")) {
            if (parse_reference(p) != 0)
                return -1;
        } else if (at(p, "]]>")) {
            return fail(p, "']]>' in text");
        } else if (take_char(p) != 0) {
            return -1;
        }
    }
    return 0;
}

/* Whitespace, comments and processing instructions outside the root. */
static int parse_misc(parser *p, int before_root, int *doctype_seen)
{
    for (;;) {
        skip_spaces(p);
        if (eof(p))
            return 0;
        if (at(p, "<!--")) {
            if (parse_comment(p) != 0)
                return -1;
        } else if (at(p, "<?")) {
            if (parse_pi(p) != 0)
                return -1;
        } else if (before_root && at(p, "<!DOCTYPE")) {
            if (*doctype_seen)
                return fail(p, "a second DOCTYPE");
            *doctype_seen = 1;
            if (parse_doctype(p) != 0)
                return -1;
        } else if (at(p, "<") && p->i + 1 < p->n && name_start(p->s[p->i + 1])) {
            if (before_root)
                return 0;
            return fail(p, "more than one root element");
        } else if (at(p, "<![CDATA[")) {
            return fail(p, "CDATA section outside the root element");
        } else if (at(p, "</")) {
            return fail(p, "end tag without a start tag");
        } else if (at(p, "<!")) {
            return fail(p, "misplaced markup declaration");
        } else {
            return fail(p, "text %s the root element",
                        before_root ? "before" : "after");
        }
    }
}

int xml_check(const char *text, size_t len, char *err, size_t err_size)
{
    parser p = { (const unsigned char *)text, len, 0, err, err_size, NULL, 0, 0 };
    int doctype = 0, rc;

    if (err != NULL && err_size > 0)
        err[0] = '\0';
    if (text == NULL)
        return fail(&p, "no text");
    if (at(&p, "\xEF\xBB\xBF"))
        p.i += 3;
    if (at(&p, "<?xml") && p.i + 5 < p.n && is_space(p.s[p.i + 5])) {
        if (parse_xml_decl(&p) != 0)
            return -1;
    }
    rc = parse_misc(&p, 1, &doctype);
    if (rc == 0 && eof(&p))
        rc = fail(&p, "no root element");
    if (rc == 0)
        rc = parse_element(&p);
    if (rc == 0)
        rc = parse_misc(&p, 0, &doctype);
    free(p.stack);
    return rc;
}

int xml_check_file(const char *path, char *err, size_t err_size)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc;

    if (f == NULL) {
        if (err != NULL && err_size > 0)
            snprintf(err, err_size, "cannot open %s", path);
        return -1;
    }
    for (;;) {
        size_t got;
        if (len == cap) {
            char *grown;
            cap = cap ? 2 * cap : 65536;
            grown = realloc(buf, cap);
            if (grown == NULL) {
                free(buf);
                fclose(f);
                if (err != NULL && err_size > 0)
                    snprintf(err, err_size, "out of memory reading %s", path);
                return -1;
            }
            buf = grown;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        free(buf);
        fclose(f);
        if (err != NULL && err_size > 0)
            snprintf(err, err_size, "cannot read %s", path);
        return -1;
    }
    fclose(f);
    rc = xml_check(buf, len, err, err_size);
    free(buf);
    return rc;
}
