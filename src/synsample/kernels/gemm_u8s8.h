/* An exact integer product without VNNI: C[m][n] = scale * sum_k A[m][k] * B[k][n], A unsigned
 * 8-bit (raw pixels), B signed 8-bit in {-1, 0, 1} (sampled coin-flip weights), C float32 (the
 * integer sum converted exactly, then one multiplication by scale).
 *
 * The unsigned-by-signed byte multiply-add (pmaddubsw) multiplies the bytes of a vector and adds
 * them in pairs into 16-bit lanes: 2 products per lane and instruction, against 1 per 32-bit
 * lane for an fp32 FMA. Four inputs k .. k + 3 of a row are broadcast (one 32-bit load) against
 * four weights of each of L32 columns, so a column's two 16-bit lanes hold its two pairs; they
 * accumulate up to FLUSH quads, then one multiply-add with ones (pmaddwd) sums the two lanes
 * into the column's 32-bit total. Nothing saturates because |B| <= 1: a pair is at most
 * 2 * 255 = 510 in magnitude and FLUSH pairs at most 64 * 510 = 32640 < 2^15 (the caller
 * guarantees |B| <= 1). Integer sums are exact whatever their order, so C equals the fp32
 * product bit for bit while 255 * K < 2^24.
 *
 * B is packed by the caller (synsample.kernels.pack_u8s8): for each block of NR = 2 * L32
 * columns, for each quad of inputs (k .. k + 3), NR x 4 bytes [column][k .. k + 3]; K is a
 * multiple of 4 (the caller pads A and B with zero columns) and the columns a multiple of NR.
 *
 * This file is a body, included by native.c once per instruction set, with VEC (the vector
 * type), VB (its bytes), FVEC (the float vector), the intrinsics below and F(name) defined.
 */

#define L32 (VB / 4)          /* 32-bit lanes per vector: columns per vector */
#define NR (2 * L32)          /* columns per block: two vectors */
#define MR 4                  /* rows per micro-tile */
#define FLUSH 64              /* quads a 16-bit lane pair accumulates before it is widened */

/* rows m0 .. m0 + rows - 1 (rows <= MR, a constant at each call) of one column block, over the
 * quads listed in `live` (those not zero in every one of the rows: a zero quad adds nothing, so
 * skipping it changes no sum; raw images are zero around the object) */
static inline __attribute__((always_inline)) void F(gemm_tile)(
        int rows, const uint8_t *a, int64_t lda, const int32_t *live, int64_t n_live,
        const int8_t *b, float *c, int64_t ldc, float scale) {
    VEC acc[MR][2];
    const VEC ones = SET16(1);
    for (int r = 0; r < rows; ++r)
        acc[r][0] = acc[r][1] = ZERO();
    for (int64_t i0 = 0; i0 < n_live; i0 += FLUSH) {
        const int64_t i1 = i0 + FLUSH < n_live ? i0 + FLUSH : n_live;
        VEC s[MR][2];
        for (int r = 0; r < rows; ++r)
            s[r][0] = s[r][1] = ZERO();
        for (int64_t i = i0; i < i1; ++i) {
            const int64_t q = live[i];
            const VEC b0 = LOAD(b + q * 4 * NR);
            const VEC b1 = LOAD(b + q * 4 * NR + VB);
            for (int r = 0; r < rows; ++r) {
                int32_t quad;
                memcpy(&quad, a + r * lda + 4 * q, sizeof quad);
                const VEC x = SET32(quad);
                s[r][0] = ADD16(s[r][0], MADDUBS(x, b0));
                s[r][1] = ADD16(s[r][1], MADDUBS(x, b1));
            }
        }
        for (int r = 0; r < rows; ++r)
            for (int v = 0; v < 2; ++v)
                acc[r][v] = ADD32(acc[r][v], MADDWD(s[r][v], ones));
    }
    /* the exact integer sum as float32 (exact below 2^24), times scale: one rounding, as
     * torch's y.float() * scale */
    const FVEC s32 = FSET(scale);
    for (int r = 0; r < rows; ++r) {
        FSTORE(c + r * ldc, FMUL(TOFLOAT(acc[r][0]), s32));
        FSTORE(c + r * ldc + L32, FMUL(TOFLOAT(acc[r][1]), s32));
    }
}

/* rows lo .. hi - 1 of C = scale * (A B), float32; C has blocks * NR columns (ldc >= that).
 * The live quads of each run of MR rows are listed once, for every column block; returns -1
 * when the lists cannot be allocated */
static int F(gemm_rows)(const uint8_t *a, int64_t lda, int64_t lo, int64_t hi, int64_t quads,
                        const int8_t *b, int64_t blocks, float *c, int64_t ldc, float scale) {
    const int64_t runs = (hi - lo + MR - 1) / MR;
    int32_t *live = malloc(sizeof(int32_t) * (size_t)(runs * quads + 1));
    int64_t *counts = malloc(sizeof(int64_t) * (size_t)(runs + 1));
    if (live == NULL || counts == NULL) {
        free(live);
        free(counts);
        return -1;
    }
    for (int64_t t = 0; t < runs; ++t) {
        const int64_t m0 = lo + t * MR, m1 = m0 + MR < hi ? m0 + MR : hi;
        int64_t n = 0;
        for (int64_t q = 0; q < quads; ++q) {
            uint32_t any = 0;
            for (int64_t m = m0; m < m1; ++m) {
                uint32_t quad;
                memcpy(&quad, a + m * lda + 4 * q, sizeof quad);
                any |= quad;
            }
            live[t * quads + n] = (int32_t)q;
            n += any != 0;
        }
        counts[t] = n;
    }
    for (int64_t nb = 0; nb < blocks; ++nb) {
        const int8_t *bb = b + nb * quads * 4 * NR;
        for (int64_t t = 0; t < runs; ++t) {
            const int64_t m0 = lo + t * MR;
            const int32_t *lt = live + t * quads;
            if (m0 + MR <= hi)
                F(gemm_tile)(MR, a + m0 * lda, lda, lt, counts[t], bb, c + m0 * ldc + nb * NR,
                             ldc, scale);
            else
                for (int64_t m = m0; m < hi; ++m)
                    F(gemm_tile)(1, a + m * lda, lda, lt, counts[t], bb, c + m * ldc + nb * NR,
                                 ldc, scale);
        }
    }
    free(live);
    free(counts);
    return 0;
}

/* the m rows of C, split in runs of MR rows over `threads` threads of the process's OpenMP
 * runtime (PyTorch's, whose waiting workers then take the work instead of competing for it);
 * 0, or -1 when a thread could not allocate its lists */
int F(gemm_u8s8)(const uint8_t *a, int64_t lda, int64_t m, int64_t quads, const int8_t *b,
                 int64_t blocks, float *c, int64_t ldc, float scale, int threads) {
    const int64_t tiles = (m + MR - 1) / MR;
    int failed = 0;
    if (threads > tiles)
        threads = (int)tiles;
    if (threads < 1)
        threads = 1;
#pragma omp parallel for num_threads(threads) schedule(static) reduction(| : failed)
    for (int t = 0; t < threads; ++t) {
        const int64_t lo = tiles * t / threads * MR, hi = tiles * (t + 1) / threads * MR;
        failed |= F(gemm_rows)(a, lda, lo, hi < m ? hi : m, quads, b, blocks, c, ldc, scale) != 0;
    }
    return failed ? -1 : 0;
}

/* columns per block of this variant, for the packing */
int F(gemm_block_columns)(void) { return NR; }

#undef L32
#undef NR
#undef MR
#undef FLUSH
/* the instruction set's macros, defined by the includer for this body only */
#undef VEC
#undef VB
#undef ZERO
#undef LOAD
#undef SET16
#undef SET32
#undef ADD16
#undef ADD32
#undef MADDUBS
#undef MADDWD
#undef FVEC
#undef FSET
#undef FMUL
#undef TOFLOAT
#undef FSTORE
