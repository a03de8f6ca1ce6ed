/*
 * report_png.c - PNG and base64 for the prediction grid: matplotlib's
 * 'binary' gray levels, a grayscale PNG encoder over zlib, and RFC 4648
 * base64.
 */
#include "report.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

void report_gray_binary(uint8_t *gray, const float *values, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        float v = values[i];
        if (!(v > 0))
            v = 0; /* also NaN */
        if (v > 1)
            v = 1;
        gray[i] = (uint8_t)lrintf(255.0f - v * 255.0f);
    }
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Appends a chunk: length, type, data, CRC-32 of type and data. */
static unsigned char *put_chunk(unsigned char *p, const char type[4],
                                const unsigned char *data, uint32_t len)
{
    uLong crc;
    put_be32(p, len);
    memcpy(p + 4, type, 4);
    if (len > 0)
        memcpy(p + 8, data, len);
    crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, p + 4, (uInt)(4 + len));
    put_be32(p + 8 + len, (uint32_t)crc);
    return p + 12 + len;
}

int report_png_gray(unsigned char **png, size_t *size, const uint8_t *pixels,
                    int width, int height)
{
    static const unsigned char signature[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n' };
    unsigned char ihdr[13];
    unsigned char *raw = NULL, *z = NULL, *buf = NULL, *p;
    size_t row = (size_t)width + 1, raw_len;
    uLongf z_len;

    if (png == NULL || size == NULL || pixels == NULL || width < 1 ||
        height < 1 || width > (1 << 20) || height > (1 << 20)) {
        errno = EINVAL;
        return -1;
    }
    raw_len = row * (size_t)height;
    raw = malloc(raw_len);
    z_len = compressBound((uLong)raw_len);
    z = malloc(z_len);
    if (raw == NULL || z == NULL)
        goto nomem;
    for (int y = 0; y < height; y++) {
        raw[(size_t)y * row] = 0; /* filter type None */
        memcpy(raw + (size_t)y * row + 1, pixels + (size_t)y * (size_t)width,
               (size_t)width);
    }
    if (compress2(z, &z_len, raw, (uLong)raw_len, Z_BEST_COMPRESSION) != Z_OK)
        goto nomem;

    put_be32(ihdr, (uint32_t)width);
    put_be32(ihdr + 4, (uint32_t)height);
    ihdr[8] = 8;   /* bit depth */
    ihdr[9] = 0;   /* colour type: grayscale */
    ihdr[10] = 0;  /* compression: deflate */
    ihdr[11] = 0;  /* filter method 0 */
    ihdr[12] = 0;  /* no interlace */

    buf = malloc(8 + (12 + 13) + (12 + z_len) + 12);
    if (buf == NULL)
        goto nomem;
    memcpy(buf, signature, 8);
    p = put_chunk(buf + 8, "IHDR", ihdr, 13);
    p = put_chunk(p, "IDAT", z, (uint32_t)z_len);
    p = put_chunk(p, "IEND", NULL, 0);
    *png = buf;
    *size = (size_t)(p - buf);
    free(raw);
    free(z);
    return 0;

nomem:
    free(raw);
    free(z);
    free(buf);
    errno = ENOMEM;
    return -1;
}

char *report_base64(const void *data, size_t size)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *in = data;
    char *out, *o;

    if (size > (SIZE_MAX - 1) / 4 * 3 - 3 || (size > 0 && data == NULL)) {
        errno = EINVAL;
        return NULL;
    }
    out = malloc((size + 2) / 3 * 4 + 1);
    if (out == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    o = out;
    for (size_t i = 0; i < size; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < size)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < size)
            v |= in[i + 2];
        *o++ = alphabet[(v >> 18) & 63];
        *o++ = alphabet[(v >> 12) & 63];
        *o++ = i + 1 < size ? alphabet[(v >> 6) & 63] : '=';
        *o++ = i + 2 < size ? alphabet[v & 63] : '=';
    }
    *o = '\0';
    return out;
}
