/* Independent-mode coin-flip linear layer (paper 000, eq. 3): a fresh coin for every
 * (item, sample, input, output), from a counter-based generator. Nothing is stored: every coin
 * is a hash of its coordinates, so the pure-PyTorch twin in synsample.nn.counter_rng computes
 * the very same coins and, summing in the same order, the very same float32 sums.
 *
 *   stream key  k = mix64(mix64(layer_key ^ item) ^ sample)                      (64 bits)
 *   word        h = finish32(lo32(k) + (input * out + output) * 0x9E3779B9, hi32(k))
 *   coin        1 when (h >> (32 - bits)) < threshold, i.e. h <= limit = threshold << (32 - bits)
 *               minus 1 (the caller passes limit, and a zero sign where threshold is 0)
 *   y[item][sample][output] = sum over inputs, in increasing order, of coin * value * x
 *
 * value is what a coin gates: sign(w) for scANN's coin-flip weights, the weight w itself for the
 * blank-out synapses of a Neural Sampling Machine (paper 002, eq. 5). The arrays keep the name
 * sign below.
 * Inputs equal to zero draw no coins (they cannot change the sum); the return value counts the
 * coins drawn, for the device's bit counter, or is -1 when out of memory.
 * limit and sign are [in][out_pad], out_pad = out rounded up to a multiple of LANES.
 *
 * Built by synsample.kernels with the system C compiler; no torch headers, called via ctypes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Outputs are processed in vectors of LANES (the arrays are padded to a multiple of it with a
 * zero sign: padded coins add nothing and are not counted), so that a layer with few outputs
 * does not fall back to scalar code. GCC vector extensions: AVX-512, AVX2 or SSE alike. */
#define LANES 16
typedef uint32_t u32x16 __attribute__((vector_size(4 * LANES)));
typedef int32_t i32x16 __attribute__((vector_size(4 * LANES)));
typedef float f32x16 __attribute__((vector_size(4 * LANES)));

/* lane q of a vector holds output j0 + q: its Weyl offset q * 0x9E3779B9 */
static const u32x16 lane_offsets = {
    0x00000000u, 0x9E3779B9u, 0x3C6EF372u, 0xDAA66D2Bu, 0x78DDE6E4u, 0x1715609Du, 0xB54CDA56u,
    0x5384540Fu, 0xF1BBCDC8u, 0x8FF34781u, 0x2E2AC13Au, 0xCC623AF3u, 0x6A99B4ACu, 0x08D12E65u,
    0xA708A81Eu, 0x454021D7u};

static inline uint64_t mix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static inline u32x16 splat(uint32_t v) {
    return (u32x16){v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v};
}

/* LANES consecutive words of one stream, from their Weyl values lo32(k) + counter * golden */
static inline u32x16 words(u32x16 h, u32x16 hi) {
    h ^= h >> 16;
    h *= 0x7FEB352Du;
    h ^= hi;
    h ^= h >> 15;
    h *= 0x846CA68Bu;
    return h ^ (h >> 16);
}

/* acc + (coin ? sign * x : +0) for LANES outputs; signed_x = sign * x as raw bits */
static inline f32x16 add_coins(f32x16 acc, u32x16 h, const uint32_t *limit, i32x16 signed_x) {
    u32x16 l;
    memcpy(&l, limit, sizeof l);
    return acc + (f32x16)(signed_x & (i32x16)(h <= l));  /* compare: all ones where 1 */
}

static inline i32x16 load_signed(const float *sign, float x) {
    f32x16 g;
    memcpy(&g, sign, sizeof g);
    return (i32x16)(g * x);
}

int64_t coinflip_independent(
        const float *x, int64_t x_item_stride, int64_t x_sample_stride,
        int64_t items, int64_t samples, int64_t in, int64_t out,
        const uint32_t *limit, const float *sign,
        const int64_t *item_index, int64_t first_sample, uint64_t layer_key, float *y) {
    const int64_t out_pad = (out + LANES - 1) / LANES * LANES;
    int64_t coins = 0;
    uint64_t *stream = malloc(sizeof(uint64_t) * (size_t)(samples > 0 ? samples : 1));
    float *acc = aligned_alloc(64, sizeof(float) * (size_t)(samples * out_pad + LANES));
    if (stream == NULL || acc == NULL) {
        free(stream);
        free(acc);
        return -1;
    }
    for (int64_t b = 0; b < items; ++b) {
        memset(acc, 0, sizeof(float) * (size_t)(samples * out_pad));
        const uint64_t item_key = mix64(layer_key ^ (uint64_t)item_index[b]);
        for (int64_t s = 0; s < samples; ++s)
            stream[s] = mix64(item_key ^ (uint64_t)(first_sample + s));
        const float *xb = x + b * x_item_stride;
        if (out_pad == LANES) {
            /* one vector of outputs (a classifier head): sample by sample, the accumulator
             * stays in a register; zero inputs are run, not skipped (no branch to miss; they
             * add +0, and the accumulator is never -0, so the sum is the same) */
            for (int64_t s = 0; s < samples; ++s) {
                const uint32_t lo = (uint32_t)stream[s];
                const u32x16 hi = splat((uint32_t)(stream[s] >> 32));
                const float *xs = xb + s * x_sample_stride;
                f32x16 a = {0};
                for (int64_t i = 0; i < in; ++i) {
                    const u32x16 h = words(lo + (uint32_t)(i * out) * 0x9E3779B9u
                                           + lane_offsets, hi);
                    a = add_coins(a, h, limit + i * LANES, load_signed(sign + i * LANES, xs[i]));
                    coins += xs[i] != 0.0f ? out : 0;
                }
                memcpy(acc + s * out_pad, &a, sizeof a);
            }
        } else {
            /* input by input, sample by sample: a row of limits and signs is read once per
             * item and stays in L1 across the samples */
            for (int64_t i = 0; i < in; ++i) {
                const uint32_t base = (uint32_t)(i * out) * 0x9E3779B9u;
                for (int64_t s = 0; s < samples; ++s) {
                    const float xi = xb[s * x_sample_stride + i];
                    if (xi == 0.0f) continue;  /* a zero input draws no coins */
                    coins += out;
                    const u32x16 lo = (uint32_t)stream[s] + base + lane_offsets;
                    const u32x16 hi = splat((uint32_t)(stream[s] >> 32));
                    float *as = acc + s * out_pad;
                    for (int64_t j0 = 0; j0 < out_pad; j0 += LANES) {
                        f32x16 a;
                        memcpy(&a, as + j0, sizeof a);
                        a = add_coins(a, words(lo + (uint32_t)j0 * 0x9E3779B9u, hi),
                                      limit + i * out_pad + j0,
                                      load_signed(sign + i * out_pad + j0, xi));
                        memcpy(as + j0, &a, sizeof a);
                    }
                }
            }
        }
        float *yb = y + b * samples * out;
        for (int64_t s = 0; s < samples; ++s)
            memcpy(yb + s * out, acc + s * out_pad, sizeof(float) * (size_t)out);
    }
    free(stream);
    free(acc);
    return coins;
}
