/*
 * predict.c - using a trained model: loads a model file written by
 * fmnn_model_save (by default fmnn-results/l2_dropout.fmnn, which
 * `make experiments` writes) and classifies Fashion-MNIST images, printing
 * each one's class name and probability.
 *
 * An image is either a binary PGM file (P5, 28x28, maxval 255, pixels as
 * in Fashion-MNIST: 0 is the background) or --index N, the N-th image of
 * the test set.  It shows fmnn_model_load, fmnn_model_output_shape,
 * fmnn_tensor_new and fmnn_model_predict, and how to check a file format
 * strictly before trusting it.
 *
 *     build/examples/predict --index 0 --index 1
 *     build/examples/predict --model my.fmnn shirt.pgm boot.pgm
 *
 * Exit status: 0 on success, 1 on a runtime error (unreadable or invalid
 * file, bad model), 2 on a usage error.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fmnn.h>

#define SIDE 28
#define PIXELS (SIDE * SIDE)
#define NUM_CLASSES 10
#define DEFAULT_MODEL "fmnn-results/l2_dropout.fmnn"
#define DEFAULT_DATA "/usr/share/datasets/fashion-mnist"

static const char *const CLASS_NAMES[NUM_CLASSES] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"
};

/* One image to classify: a PGM file, or a test-set index (path NULL). */
typedef struct input {
    const char *path;
    int index;
} input;

static void usage(FILE *out)
{
    fprintf(out,
        "Usage: predict [--model FILE] [--data DIR] IMAGE...\n"
        "Classifies Fashion-MNIST images with a model saved by fmnn_model_save.\n"
        "\n"
        "Each IMAGE is a binary PGM file (P5, 28x28, maxval 255) or --index N,\n"
        "the N-th image (from 0) of the Fashion-MNIST test set.\n"
        "\n"
        "  --model FILE   the model (default " DEFAULT_MODEL ")\n"
        "  --data DIR     the Fashion-MNIST .gz files, for --index (default:\n"
        "                 $FMNN_DATA, else " DEFAULT_DATA ")\n"
        "  --help         show this help and exit\n");
}

/* ---- strict binary PGM reading --------------------------------------- */

/* Whitespace as the netpbm format defines it. */
static int pgm_space(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/*
 * Skips whitespace and comments ('#' to the end of the line), which the
 * format allows between header fields; at least one whitespace character
 * must separate two fields.  Returns the next character.
 */
static int pgm_skip(FILE *f, int *skipped)
{
    int c;
    *skipped = 0;
    for (;;) {
        c = getc(f);
        if (pgm_space(c)) {
            *skipped = 1;
        } else if (c == '#') {
            while ((c = getc(f)) != EOF && c != '\n' && c != '\r')
                ;
            *skipped = 1;
        } else {
            return c;
        }
    }
}

/* One header field: whitespace, then an unsigned decimal number. */
static int pgm_field(FILE *f, const char *path, const char *what, long *value)
{
    int skipped, c = pgm_skip(f, &skipped);
    if (!skipped || c < '0' || c > '9') {
        fprintf(stderr, "predict: %s: invalid PGM header: expected %s%s\n", path,
                skipped ? "" : "whitespace before the ", what);
        return -1;
    }
    *value = 0;
    while (c >= '0' && c <= '9') {
        if (*value > 100000) {
            fprintf(stderr, "predict: %s: invalid PGM header: %s is too large\n", path, what);
            return -1;
        }
        *value = *value * 10 + (c - '0');
        c = getc(f);
    }
    ungetc(c, f);
    return 0;
}

/* Reads a 28x28 8-bit binary PGM into 784 floats in [0, 1]. */
static int read_pgm(const char *path, float *pixels)
{
    unsigned char raster[PIXELS + 1];
    long width, height, maxval;
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "predict: %s: cannot open: %s\n", path, strerror(errno));
        return -1;
    }
    int status = -1, m0 = getc(f), m1 = getc(f);
    if (m0 != 'P' || m1 != '5') {
        fprintf(stderr, "predict: %s: not a binary PGM file (it must start with \"P5\"%s)\n", path,
                m0 == 'P' && m1 == '2' ? "; this is a plain-text P2 PGM" : "");
    } else if (pgm_field(f, path, "width", &width) == 0 &&
               pgm_field(f, path, "height", &height) == 0 &&
               pgm_field(f, path, "maxval", &maxval) == 0) {
        int c = getc(f); /* exactly one whitespace character, then the pixels */
        if (!pgm_space(c))
            fprintf(stderr, "predict: %s: invalid PGM header: no whitespace after maxval\n", path);
        else if (width != SIDE || height != SIDE)
            fprintf(stderr, "predict: %s: the image is %ldx%ld; the model takes %dx%d images\n", path,
                    width, height, SIDE, SIDE);
        else if (maxval != 255)
            fprintf(stderr, "predict: %s: maxval is %ld; only 8-bit images (maxval 255) are supported\n",
                    path, maxval);
        else {
            size_t n = fread(raster, 1, sizeof raster, f);
            if (ferror(f))
                fprintf(stderr, "predict: %s: read error: %s\n", path, strerror(errno));
            else if (n < PIXELS)
                fprintf(stderr, "predict: %s: truncated: %zu of the %d pixel bytes\n", path, n, PIXELS);
            else if (n > PIXELS)
                fprintf(stderr, "predict: %s: data after the %d pixel bytes (several images in one "
                        "file are not supported)\n", path, PIXELS);
            else {
                for (int i = 0; i < PIXELS; i++) /* as the notebook: / 255 */
                    pixels[i] = (float)raster[i] / 255.0f;
                status = 0;
            }
        }
    }
    fclose(f);
    return status;
}

/* ---- the test set ------------------------------------------------------ */

/* Copies test images (the inputs with path NULL) into their rows of x. */
static int read_test_images(const char *dir, const input *inputs, int count, float *x,
                            int *labels)
{
    char images[4096], labels_path[4096];
    int highest = -1;
    fmnn_dataset *test;
    for (int i = 0; i < count; i++)
        if (!inputs[i].path && inputs[i].index > highest)
            highest = inputs[i].index;
    if (highest < 0)
        return 0;
    snprintf(images, sizeof images, "%s/t10k-images-idx3-ubyte.gz", dir);
    snprintf(labels_path, sizeof labels_path, "%s/t10k-labels-idx1-ubyte.gz", dir);
    /* Only the first highest + 1 images are needed. */
    if (fmnn_dataset_load(&test, images, labels_path, NUM_CLASSES, highest + 1) != FMNN_OK) {
        fprintf(stderr, "predict: %s\n(--data DIR or FMNN_DATA names the folder of the "
                "Fashion-MNIST .gz files)\n", fmnn_last_error());
        return -1;
    }
    int status = 0;
    if (fmnn_tensor_dim(test->images, 1) != SIDE || fmnn_tensor_dim(test->images, 2) != SIDE) {
        fprintf(stderr, "predict: %s: the images are not %dx%d\n", images, SIDE, SIDE);
        status = -1;
    } else if (test->count <= highest) {
        fprintf(stderr, "predict: --index %d: the test set has only %d images\n", highest,
                test->count);
        status = -1;
    } else {
        const float *data = fmnn_tensor_const_data(test->images);
        for (int i = 0; i < count; i++)
            if (!inputs[i].path) {
                memcpy(x + (size_t)i * PIXELS, data + (size_t)inputs[i].index * PIXELS,
                       PIXELS * sizeof *x);
                labels[i] = test->classes[inputs[i].index];
            }
    }
    fmnn_dataset_free(test);
    return status;
}

/* ---- main ---------------------------------------------------------------- */

/* The value of option argv[*i] ("--name VALUE" or "--name=VALUE"). */
static const char *option_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) == 0 && argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (*i + 1 < argc)
        return argv[++*i];
    fprintf(stderr, "predict: %s needs a value\n", name);
    return NULL;
}

static int is_option(const char *arg, const char *name)
{
    size_t n = strlen(name);
    return strncmp(arg, name, n) == 0 && (arg[n] == '\0' || arg[n] == '=');
}

int main(int argc, char **argv)
{
    const char *model_path = DEFAULT_MODEL, *env = getenv("FMNN_DATA");
    const char *data_dir = env && *env ? env : DEFAULT_DATA;
    input *inputs = calloc((size_t)argc, sizeof *inputs);
    int *labels = NULL, count = 0, status = 1, dims[FMNN_MAX_RANK];
    fmnn_model *model = NULL;
    fmnn_tensor *x = NULL, *probs = NULL;
    if (!inputs) {
        fprintf(stderr, "predict: out of memory\n");
        return 1;
    }

    /* ---- arguments: exit 2 on anything malformed ---- */
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *value;
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(stdout);
            free(inputs);
            return 0;
        } else if (is_option(arg, "--model") || is_option(arg, "--data")) {
            int is_model = is_option(arg, "--model");
            if (!(value = option_value(argc, argv, &i, is_model ? "--model" : "--data")))
                goto bad_usage;
            if (!*value) {
                fprintf(stderr, "predict: %s needs a non-empty value\n", is_model ? "--model" : "--data");
                goto bad_usage;
            }
            if (is_model)
                model_path = value;
            else
                data_dir = value;
        } else if (is_option(arg, "--index")) {
            char *end;
            if (!(value = option_value(argc, argv, &i, "--index")))
                goto bad_usage;
            errno = 0;
            long n = strtol(value, &end, 10);
            if (errno || end == value || *end || n < 0 || n > INT_MAX - 1) {
                fprintf(stderr, "predict: --index: '%s' is not an image number (0, 1, 2, ...)\n", value);
                goto bad_usage;
            }
            inputs[count++] = (input){ NULL, (int)n };
        } else if (strncmp(arg, "--", 2) == 0 && arg[2] != '\0') {
            fprintf(stderr, "predict: unknown option '%s'\n", arg);
            goto bad_usage;
        } else {
            if (strcmp(arg, "--") == 0) { /* everything after -- is a file */
                while (++i < argc)
                    inputs[count++] = (input){ argv[i], 0 };
                break;
            }
            inputs[count++] = (input){ arg, 0 };
        }
    }
    if (count == 0) {
        fprintf(stderr, "predict: no image given\n");
        goto bad_usage;
    }

    /* ---- the model: 10 class scores per image ---- */
    if (!(labels = malloc((size_t)count * sizeof *labels))) {
        fprintf(stderr, "predict: out of memory\n");
        goto done;
    }
    if (fmnn_model_load(&model, model_path) != FMNN_OK) {
        fprintf(stderr, "predict: %s\n", fmnn_last_error());
        if (strcmp(model_path, DEFAULT_MODEL) == 0)
            fprintf(stderr, "(`make experiments` writes it; or name a model with --model FILE)\n");
        goto done;
    }
    if (fmnn_model_output_shape(model, -1, dims) != 1 || dims[0] != NUM_CLASSES) {
        fprintf(stderr, "predict: %s: the model does not output the %d Fashion-MNIST classes\n",
                model_path, NUM_CLASSES);
        goto done;
    }

    /* ---- the images, as one (count, 28, 28, 1) batch ---- */
    if (fmnn_tensor_new(&x, 4, (int[]){count, SIDE, SIDE, 1}) != FMNN_OK) {
        fprintf(stderr, "predict: %s\n", fmnn_last_error());
        goto done;
    }
    float *pixels = fmnn_tensor_data(x);
    int bad = 0;
    for (int i = 0; i < count; i++)
        if (inputs[i].path && read_pgm(inputs[i].path, pixels + (size_t)i * PIXELS) != 0)
            bad = 1; /* every bad file is reported, then we stop */
    if (bad || read_test_images(data_dir, inputs, count, pixels, labels) != 0)
        goto done;

    if (fmnn_model_predict(model, x, 0, &probs) != FMNN_OK) {
        fprintf(stderr, "predict: %s: %s\n", model_path, fmnn_last_error());
        goto done;
    }
    const float *p = fmnn_tensor_const_data(probs);
    for (int i = 0; i < count; i++, p += NUM_CLASSES) {
        int best = 0;
        for (int c = 1; c < NUM_CLASSES; c++)
            if (p[c] > p[best])
                best = c;
        if (inputs[i].path)
            printf("%s: %s (%.4f)\n", inputs[i].path, CLASS_NAMES[best], (double)p[best]);
        else
            printf("test image %d: %s (%.4f), actual: %s\n", inputs[i].index, CLASS_NAMES[best],
                   (double)p[best], CLASS_NAMES[labels[i]]);
    }
    status = 0;

done:
    fmnn_tensor_free(probs);
    fmnn_tensor_free(x);
    fmnn_model_free(model);
    free(labels);
    free(inputs);
    return status;

bad_usage:
    fputc('\n', stderr);
    usage(stderr);
    free(inputs);
    return 2;
}
