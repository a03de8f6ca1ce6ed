/* config.c - checking, writing and reading option tables (config.h). */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "model_file.h"

_Static_assert(sizeof(int) == 4 && sizeof(float) == 4, "fields are 4 bytes");
_Static_assert(sizeof(fmnn_padding) == sizeof(int) && sizeof(fmnn_activation_kind) == sizeof(int),
               "enum fields are stored as ints");

static int int_at(const void *base, const fmnn_field *f)
{
    int v;
    memcpy(&v, (const char *)base + f->offset, sizeof v);
    return v;
}

static float float_at(const void *base, const fmnn_field *f)
{
    float v;
    memcpy(&v, (const char *)base + f->offset, sizeof v);
    return v;
}

static int float_in_range(const fmnn_field *f, float v)
{
    if (isnan(v))
        return 0;
    int above = f->min_open ? v > f->min : v >= f->min;
    int below = f->max_open ? v < f->max : v <= f->max;
    return above && below;
}

/* "finite", "finite and > 0", ">= 0", "in [0, 1)" */
static void describe_range(const fmnn_field *f, char *buf, size_t size)
{
    if (isinf(f->min) && isinf(f->max))
        snprintf(buf, size, "finite");
    else if (isinf(f->max))
        snprintf(buf, size, "%s%s %g", f->max_open ? "finite and " : "", f->min_open ? ">" : ">=", f->min);
    else
        snprintf(buf, size, "in %c%g, %g%c", f->min_open ? '(' : '[', f->min, f->max, f->max_open ? ')' : ']');
}

int fmnn__fields_check(const fmnn_fields *table, const void *base, char *msg, size_t size)
{
    for (int i = 0; i < table->count; i++) {
        const fmnn_field *f = &table->fields[i];
        if (f->kind == FMNN__FIELD_FLOAT) {
            float v = float_at(base, f);
            if (float_in_range(f, v))
                continue;
            char range[64];
            describe_range(f, range, sizeof range);
            snprintf(msg, size, "%s must be %s, got %g", f->name, range, (double)v);
            return FMNN_EINVAL;
        }
        int v = int_at(base, f);
        if (v >= f->min && v <= f->max)
            continue;
        if (f->kind == FMNN__FIELD_CHOICE) {
            snprintf(msg, size, "unknown %s %d", f->name, v);
            return FMNN_EINVAL;
        }
        snprintf(msg, size, "%s must be in %.0f..%.0f, got %d", f->name, f->min, f->max, v);
        return f->kind == FMNN__FIELD_SIZE ? FMNN_ESHAPE : FMNN_EINVAL;
    }
    return FMNN_OK;
}

int fmnn__fields_value(const fmnn_fields *table, const void *base, const char *name, double *value)
{
    for (int i = 0; i < table->count; i++) {
        const fmnn_field *f = &table->fields[i];
        if (strcmp(f->name, name) != 0)
            continue;
        *value = f->kind == FMNN__FIELD_FLOAT ? (double)float_at(base, f) : (double)int_at(base, f);
        return 1;
    }
    return 0;
}

void fmnn__fields_put(fmnn__writer *w, const fmnn_fields *table, const void *base)
{
    fmnn__put_u32(w, (uint32_t)table->count);
    for (int i = 0; i < table->count; i++) {
        const fmnn_field *f = &table->fields[i];
        if (f->kind == FMNN__FIELD_FLOAT)
            fmnn__put_f32(w, float_at(base, f));
        else
            fmnn__put_u32(w, (uint32_t)int_at(base, f));
    }
}

int fmnn__fields_get(fmnn__reader *r, const fmnn_fields *table, void *base, const char *what)
{
    uint32_t count = fmnn__get_u32(r, what);
    if (r->err)
        return r->err;
    if (count > (uint32_t)table->count)
        return fmnn__corrupt(r, "%s has %u options, more than the %d this library knows (a newer file?)", what,
                             (unsigned)count, table->count);
    for (int i = 0; i < table->count; i++) {
        const fmnn_field *f = &table->fields[i];
        char *at = (char *)base + f->offset;
        if (f->kind == FMNN__FIELD_FLOAT) {
            float v = (uint32_t)i < count ? fmnn__get_f32(r, what) : (float)f->fallback;
            memcpy(at, &v, sizeof v);
        } else {
            int v = (uint32_t)i < count ? (int)(int32_t)fmnn__get_u32(r, what) : (int)f->fallback;
            memcpy(at, &v, sizeof v);
        }
    }
    return r->err;
}
