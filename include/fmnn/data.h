/*
 * fmnn/data.h - reading IDX files (the MNIST / Fashion-MNIST format),
 * plain or gzip-compressed, and the usual preprocessing.
 *
 * Every reader checks what it reads before trusting it: magic number,
 * type byte, rank, dimensions against the bytes present, label range,
 * and that images and labels agree.  Errors name the file.
 */
#ifndef FMNN_DATA_H
#define FMNN_DATA_H

#include <stdint.h>

#include "common.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A raw IDX array of unsigned bytes (type 0x08). */
typedef struct fmnn_idx {
    int rank;                 /**< 1..FMNN_MAX_RANK */
    int dims[FMNN_MAX_RANK];
    size_t size;              /**< prod(dims) */
    uint8_t *data;            /**< size bytes, owned */
} fmnn_idx;

/**
 * Reads an IDX file of unsigned bytes, plain or gzip-compressed (detected
 * from the content, not the name).  *out must be freed with
 * fmnn_idx_free().  FMNN_EIO when the file cannot be read, FMNN_EFORMAT
 * when it is corrupt, truncated, too long or of another type.
 */
FMNN_API int fmnn_idx_read(fmnn_idx **out, const char *path);

FMNN_API void fmnn_idx_free(fmnn_idx *idx);

typedef struct fmnn_dataset {
    fmnn_tensor *images;   /**< (N, H, W, 1), values in [0, 1] */
    fmnn_tensor *labels;   /**< (N, num_classes) one-hot */
    uint8_t *classes;      /**< N class indices */
    int count;             /**< N */
    int num_classes;
} fmnn_dataset;

/**
 * Loads an image file (N, H, W) and its label file (N), checks that they
 * agree and that every label is below num_classes, and applies the
 * notebook's preprocessing: images as floats in [0, 1] shaped
 * (N, H, W, 1), labels one-hot (N, num_classes), as to_categorical does.
 * limit > 0 keeps only the first limit samples.  Free *out with
 * fmnn_dataset_free().  Errors name the file and the problem.
 */
FMNN_API int fmnn_dataset_load(fmnn_dataset **out, const char *images_path,
                               const char *labels_path, int num_classes,
                               int limit);

FMNN_API void fmnn_dataset_free(fmnn_dataset *dataset);

#ifdef __cplusplus
}
#endif

#endif /* FMNN_DATA_H */
