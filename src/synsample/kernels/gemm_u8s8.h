/* An exact integer product without VNNI: C[m][n] = sum_k A[m][k] * B[k][n], A unsigned 8-bit
 * (raw pixels), B signed 8-bit in {-1, 0, 1} (sampled coin-flip weights), C int32.
 *
 * The unsigned-by-signed byte multiply-add (pmaddubsw) multiplies 2 x L16 byte pairs and adds
 * each pair into a 16-bit lane: 2 products per lane and instruction, against 1 per 32-bit lane
 * for an fp32 FMA. Each 16-bit lane then accumulates up to FLUSH pairs before it is widened
 * into 32 bits. Nothing saturates because |B| <= 1: a pair is at most 2 * 255 = 510 in
 * magnitude and FLUSH pairs at most 64 * 510 = 32640 < 2^15 (the caller guarantees |B| <= 1).
 * Integer sums are exact whatever their order, so C equals the fp32 product bit for bit while
 * 255 * K < 2^24.
 *
 * B is packed by the caller (synsample.kernels.pack_u8s8): for each block of NR = 2 * L16
 * columns, for each pair of rows (k, k + 1), NR x 2 bytes [column][k, k + 1]; K is even (the
 * caller pads A and B with a zero column) and the columns a multiple of NR (padded with zeros).
 *
 * This file is a body, included by native.c once per instruction set, with VEC (the vector
 * type), VB (its bytes), the intrinsics below and F(name) defined.
 */

#define L16 (VB / 2)          /* 16-bit lanes per vector: columns per vector */
#define NR (2 * L16)          /* columns per block: two vectors */
#define MR 4                  /* rows per micro-tile */
#define FLUSH 64              /* byte pairs a 16-bit lane accumulates before it is widened */

/* rows m0 .. m0 + rows - 1 (rows <= MR, a constant at each call) of one column block */
static inline __attribute__((always_inline)) void F(gemm_tile)(
        int rows, const uint8_t *a, int64_t lda, int64_t pairs, const int8_t *b, int32_t *c,
        int64_t ldc) {
    int32_t acc[MR][NR] __attribute__((aligned(64)));
    memset(acc, 0, sizeof acc);
    for (int64_t p0 = 0; p0 < pairs; p0 += FLUSH) {
        const int64_t p1 = p0 + FLUSH < pairs ? p0 + FLUSH : pairs;
        VEC s[MR][2];
        for (int r = 0; r < rows; ++r)
            s[r][0] = s[r][1] = ZERO();
        for (int64_t p = p0; p < p1; ++p) {
            const VEC b0 = LOAD(b + p * 2 * NR);
            const VEC b1 = LOAD(b + p * 2 * NR + VB);
            for (int r = 0; r < rows; ++r) {
                int16_t pair;
                memcpy(&pair, a + r * lda + 2 * p, sizeof pair);
                const VEC x = SET16(pair);
                s[r][0] = ADD16(s[r][0], MADDUBS(x, b0));
                s[r][1] = ADD16(s[r][1], MADDUBS(x, b1));
            }
        }
        for (int r = 0; r < rows; ++r)
            for (int v = 0; v < 2; ++v)
                WIDEN_ADD(acc[r] + v * L16, s[r][v]);
    }
    for (int r = 0; r < rows; ++r)
        memcpy(c + r * ldc, acc[r], sizeof acc[r]);
}

/* rows lo .. hi - 1 of C (one thread's share); C has blocks * NR columns (ldc >= that) */
void F(gemm_u8s8)(const uint8_t *a, int64_t lda, int64_t lo, int64_t hi, int64_t pairs,
                  const int8_t *b, int64_t blocks, int32_t *c, int64_t ldc) {
    for (int64_t nb = 0; nb < blocks; ++nb) {
        const int8_t *bb = b + nb * pairs * 2 * NR;
        int64_t m = lo;
        for (; m + MR <= hi; m += MR)
            F(gemm_tile)(MR, a + m * lda, lda, pairs, bb, c + m * ldc + nb * NR, ldc);
        for (; m < hi; ++m)
            F(gemm_tile)(1, a + m * lda, lda, pairs, bb, c + m * ldc + nb * NR, ldc);
    }
}

/* columns per block of this variant, for the packing */
int F(gemm_block_columns)(void) { return NR; }

#undef L16
#undef NR
#undef MR
#undef FLUSH
