/*
 * gemm_amx.c - the AMX micro-kernel of kernels/gemm_bf16.c: a 32 x 32
 * tile of C in four 16 x 16 fp32 accumulator tiles, fed by tdpbf16ps.
 *
 * Tiles (palette 1, every one 16 rows of 64 bytes):
 *   0 1    C rows 0-15,  columns 0-15 and 16-31
 *   2 3    C rows 16-31, the same columns
 *   4 5    A rows 0-15 and 16-31, 32 steps of k (the A panel's rows, read
 *          in place with a stride of kp values)
 *   6 7    B columns 0-15 and 16-31, 16 rows of pairs (the B panel's pair
 *          layout is the tiles' own: a stride of 128 bytes, the second
 *          tile 64 bytes in)
 * Each 32 steps of k load four tiles and issue four tdpbf16ps, 32 K
 * multiply-adds.  After the panel's kp steps the accumulators go to a
 * 32 x 32 buffer and from there, with AVX-512, to C.  A tile with 16 rows
 * or fewer skips the lower half; each element's sum is the same either way.
 *
 * A thread must configure its tiles before using them.  Each region of C
 * a thread computes loads the configuration first and releases the tiles
 * after (the kernel's begin and end): other code on the thread (oneDNN's,
 * a signal handler, which starts with the tiles reset) may release or
 * reconfigure them between our calls, and released tiles keep the
 * thread's context switches and signal frames small.  The process must also ask
 * Linux for the tile data state once (fmnn__gemm_bf16_amx_permitted);
 * gemm_bf16.c does before it chooses this kernel.  Compiled for AMX
 * whatever the library's flags.
 */
#define _GNU_SOURCE /* syscall */
#include <immintrin.h>
#include <pthread.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/syscall.h>
#endif

#include "gemm_bf16_impl.h"

#define MR FMNN_GEMM_BF16_AMX_MR
#define NR FMNN_GEMM_BF16_NR
#define AMX __attribute__((target("amx-tile,amx-bf16,avx512f")))

_Static_assert(MR == 32 && NR == 32 && FMNN_GEMM_BF16_K_ALIGN == 32, "the tiles are 16 x 16 fp32, 16 x 32 bf16");

/* Linux's arch_prctl request for a dynamically enabled state component,
 * and the component of the tile data. */
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

static int permitted;
static pthread_once_t permission_once = PTHREAD_ONCE_INIT;

static void request_permission(void)
{
#if defined(__linux__) && defined(SYS_arch_prctl)
    permitted = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
#endif
}

int fmnn__gemm_bf16_amx_permitted(void)
{
    pthread_once(&permission_once, request_permission);
    return permitted;
}

/* The LDTILECFG operand of palette 1. */
typedef struct tile_config {
    uint8_t palette;
    uint8_t start_row;
    uint8_t reserved[14];
    uint16_t bytes_per_row[16];
    uint8_t rows[16];
} tile_config;
_Static_assert(sizeof(tile_config) == 64, "LDTILECFG reads 64 bytes");

/* Eight tiles of 16 rows x 64 bytes.  A constant in memory: gcc 12's
 * _tile_loadconfig tells the compiler it reads only 8 bytes, so the stores
 * filling a local one may be dropped. */
static const _Alignas(64) tile_config config = {
    .palette = 1,
    .bytes_per_row = { 64, 64, 64, 64, 64, 64, 64, 64 },
    .rows = { 16, 16, 16, 16, 16, 16, 16, 16 },
};

AMX static void begin_tiles(void)
{
    _tile_loadconfig(&config);
}

AMX static void end_tiles(void)
{
    _tile_release();
}

AMX static void tile_32x32(int kp, const uint16_t *a_panel, const uint16_t *b_panel, float *c, int ldc, int rows,
                           int cols, float alpha, float beta)
{
    _Alignas(64) float acc[MR * NR];
    const size_t a_stride = (size_t)kp * sizeof *a_panel, b_stride = 2 * NR * sizeof *b_panel;
    const uint16_t *a_lower = a_panel + (size_t)16 * kp;
    _tile_zero(0);
    _tile_zero(1);
    if (rows > 16) {
        _tile_zero(2);
        _tile_zero(3);
        for (int p = 0; p < kp; p += 32) {
            _tile_loadd(4, a_panel + p, a_stride);
            _tile_loadd(5, a_lower + p, a_stride);
            _tile_loadd(6, b_panel + (size_t)p * NR, b_stride);
            _tile_loadd(7, b_panel + (size_t)p * NR + NR, b_stride);
            _tile_dpbf16ps(0, 4, 6);
            _tile_dpbf16ps(1, 4, 7);
            _tile_dpbf16ps(2, 5, 6);
            _tile_dpbf16ps(3, 5, 7);
        }
        _tile_stored(2, acc + 16 * NR, NR * sizeof *acc);
        _tile_stored(3, acc + 16 * NR + 16, NR * sizeof *acc);
    } else {
        for (int p = 0; p < kp; p += 32) {
            _tile_loadd(4, a_panel + p, a_stride);
            _tile_loadd(6, b_panel + (size_t)p * NR, b_stride);
            _tile_loadd(7, b_panel + (size_t)p * NR + NR, b_stride);
            _tile_dpbf16ps(0, 4, 6);
            _tile_dpbf16ps(1, 4, 7);
        }
    }
    _tile_stored(0, acc, NR * sizeof *acc);
    _tile_stored(1, acc + 16, NR * sizeof *acc);
    fmnn__gemm_bf16_store_avx512(acc, c, ldc, rows, cols, alpha, beta);
}

const fmnn_gemm_bf16_kernel fmnn__gemm_bf16_amx = {
    .name = "amx",
    .mr = MR,
    .tile = tile_32x32,
    .begin = begin_tiles,
    .end = end_tiles,
    .pack_a = fmnn__gemm_bf16_pack_a_avx512,
    .pack_b = fmnn__gemm_bf16_pack_b_avx512,
};
