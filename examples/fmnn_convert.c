/*
 * fmnn_convert.c - converts a model between libfmnn's own file format
 * (.fmnn, fmnn_model_save / fmnn_model_load) and ONNX (.onnx,
 * fmnn_model_export_onnx / fmnn_model_import_onnx), the direction chosen
 * by the two file names' extensions, then prints the converted model's
 * summary.
 *
 *     build/examples/fmnn_convert model.fmnn model.onnx
 *     build/examples/fmnn_convert --loss mse torch.onnx model.fmnn
 *
 * The same extension on both sides is allowed and re-writes the file
 * through libfmnn: .fmnn -> .fmnn saves the model in the current format
 * (without optimizer state), .onnx -> .onnx imports and exports again.
 *
 * Exit status: 0 on success, 1 on a runtime error (unreadable or invalid
 * file, an ONNX op libfmnn does not have), 2 on a usage error.
 */
#include <stdio.h>
#include <string.h>

#include <fmnn.h>

static void usage(FILE *out)
{
    fprintf(out,
        "Usage: fmnn_convert [--loss NAME] [--quiet] IN OUT\n"
        "Converts a model between libfmnn's format (.fmnn) and ONNX (.onnx);\n"
        "the extensions of IN and OUT choose the direction.\n"
        "\n"
        "  .fmnn -> .onnx  exports the model (opset 13): input \"input\" of shape\n"
        "                  (N, channels, height, width), output \"output\";\n"
        "                  Dropout and the augmentation layers are left out\n"
        "  .onnx -> .fmnn  imports a chain of supported ops (torch.onnx.export\n"
        "                  of an nn.Sequential) as a compiled model that takes\n"
        "                  (N, height, width, channels) samples\n"
        "  .fmnn -> .fmnn  re-saves in the current format (no optimizer state)\n"
        "  .onnx -> .onnx  imports, then exports again\n"
        "\n"
        "ONNX images are NCHW, libfmnn's NHWC: kernels are transposed both\n"
        "ways so that both files compute the same function.\n"
        "\n"
        "An imported model is compiled with Adam and a loss that follows from\n"
        "its last op: categorical cross-entropy after a Softmax, binary\n"
        "cross-entropy after a Sigmoid, mean squared error otherwise.\n"
        "\n"
        "  --loss NAME  the loss of an imported model instead: one of\n"
        "               categorical_crossentropy, sparse_categorical_crossentropy,\n"
        "               binary_crossentropy, mse, mae, huber\n"
        "  --quiet      do not print the converted model's summary\n"
        "  --help       show this help and exit\n");
}

static const struct {
    const char *name;
    fmnn_loss loss;
} LOSSES[] = {
    { "categorical_crossentropy", FMNN_LOSS_CATEGORICAL_CROSSENTROPY },
    { "sparse_categorical_crossentropy", FMNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY },
    { "binary_crossentropy", FMNN_LOSS_BINARY_CROSSENTROPY },
    { "mse", FMNN_LOSS_MSE },
    { "mae", FMNN_LOSS_MAE },
    { "huber", FMNN_LOSS_HUBER },
};

typedef enum format { UNKNOWN, FMNN, ONNX } format;

/* The format a file name's extension names. */
static format format_of(const char *path)
{
    const char *dot = strrchr(path, '.');
    if (dot && strcmp(dot, ".fmnn") == 0)
        return FMNN;
    if (dot && strcmp(dot, ".onnx") == 0)
        return ONNX;
    return UNKNOWN;
}

int main(int argc, char **argv)
{
    const char *paths[2], *loss_name = NULL;
    int n_paths = 0, quiet = 0, options_end = 0; /* options_end: after "--", every argument is a file */
    fmnn_onnx_import_options options = FMNN_ONNX_IMPORT_OPTIONS_INIT;

    /* ---- arguments: exit 2 on anything malformed ---- */
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (options_end || arg[0] != '-') {
            if (n_paths == 2) {
                fprintf(stderr, "fmnn_convert: too many files: '%s'\n", arg);
                goto bad_usage;
            }
            paths[n_paths++] = arg;
        } else if (strcmp(arg, "--") == 0) {
            options_end = 1;
        } else if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(arg, "--quiet") == 0 || strcmp(arg, "-q") == 0) {
            quiet = 1;
        } else if (strcmp(arg, "--loss") == 0 || strncmp(arg, "--loss=", 7) == 0) {
            loss_name = arg[6] == '=' ? arg + 7 : i + 1 < argc ? argv[++i] : NULL;
            if (!loss_name) {
                fprintf(stderr, "fmnn_convert: --loss needs a value\n");
                goto bad_usage;
            }
        } else {
            fprintf(stderr, "fmnn_convert: unknown option '%s'\n", arg);
            goto bad_usage;
        }
    }
    if (n_paths != 2) {
        fprintf(stderr, "fmnn_convert: needs an input and an output file\n");
        goto bad_usage;
    }
    format in = format_of(paths[0]), out = format_of(paths[1]);
    if (in == UNKNOWN || out == UNKNOWN) {
        fprintf(stderr, "fmnn_convert: %s: the name must end in .fmnn or .onnx\n",
                paths[in == UNKNOWN ? 0 : 1]);
        goto bad_usage;
    }
    if (loss_name) {
        size_t k = 0;
        while (k < sizeof LOSSES / sizeof *LOSSES && strcmp(LOSSES[k].name, loss_name) != 0)
            k++;
        if (k == sizeof LOSSES / sizeof *LOSSES) {
            fprintf(stderr, "fmnn_convert: --loss: unknown loss '%s'\n", loss_name);
            goto bad_usage;
        }
        if (in != ONNX) {
            fprintf(stderr, "fmnn_convert: --loss applies to an .onnx input only (a .fmnn keeps its loss)\n");
            goto bad_usage;
        }
        options.loss_given = 1;
        options.loss = LOSSES[k].loss;
    }

    /* ---- read, write, describe ---- */
    fmnn_model *model = NULL;
    int err = in == FMNN ? fmnn_model_load(&model, paths[0])
                         : fmnn_model_import_onnx(&model, paths[0], &options);
    if (err == FMNN_OK)
        err = out == FMNN ? fmnn_model_save(model, paths[1], 0) : fmnn_model_export_onnx(model, paths[1]);
    if (err == FMNN_OK && !quiet)
        err = fmnn_model_summary(model, stdout);
    if (err != FMNN_OK)
        fprintf(stderr, "fmnn_convert: %s\n", fmnn_last_error());
    fmnn_model_free(model);
    return err == FMNN_OK ? 0 : 1;

bad_usage:
    fputc('\n', stderr);
    usage(stderr);
    return 2;
}
