/* Independent-mode coin-flip linear layer (paper 000, eq. 3): a fresh coin for every
 * (item, sample, input, output), from a counter-based generator. Nothing is stored: every coin
 * is a hash of its coordinates, so the pure-PyTorch twin in synsample.randomness computes
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
 * limit and sign are [in][out_pad], out_pad = out rounded up to a multiple of LANES; limit's top
 * bit is flipped (see the compare below).
 *
 * This file is a body, included by native.c once per instruction set with VW (float32 lanes
 * per vector) and F(name) (the name with the instruction set's suffix) defined: every variant
 * sums in the same order, so all give the same bits.
 */

/* Outputs are processed in groups of LANES (the arrays are padded to a multiple of it with a
 * zero sign: padded coins add nothing and are not counted), so that a layer with few outputs
 * does not fall back to scalar code; a group is LANES / VW vectors of the CPU's width VW (GCC
 * vector extensions). A vector type wider than the CPU's would be split by GCC, and its compare
 * turned into scalar code (five times slower on AVX2).
 *
 * The compare is signed: x86 has no unsigned vector compare before AVX-512. h <= limit
 * (unsigned) is (h ^ 2^31) <= (limit ^ 2^31) (signed): the caller passes limit with its top bit
 * flipped (synsample.kernels.comparator), and words() flips h's. */
#ifndef LANES
#define LANES 16
#define GOLDEN 0x9E3779B9u
#define TOP 0x80000000u
#endif
#define PARTS (LANES / VW)
typedef uint32_t F(u32v) __attribute__((vector_size(4 * VW)));
typedef int32_t F(i32v) __attribute__((vector_size(4 * VW)));
typedef float F(f32v) __attribute__((vector_size(4 * VW)));
#define u32v F(u32v)
#define i32v F(i32v)
#define f32v F(f32v)

static inline uint64_t F(mix64)(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static inline u32v F(splat)(uint32_t v) {
    return (u32v){0} + v;
}

/* output q of a group of LANES: its Weyl offset q * golden */
static const uint32_t F(lane_offsets)[LANES] = {
    0x00000000u, 0x9E3779B9u, 0x3C6EF372u, 0xDAA66D2Bu, 0x78DDE6E4u, 0x1715609Du, 0xB54CDA56u,
    0x5384540Fu, 0xF1BBCDC8u, 0x8FF34781u, 0x2E2AC13Au, 0xCC623AF3u, 0x6A99B4ACu, 0x08D12E65u,
    0xA708A81Eu, 0x454021D7u};

/* the Weyl values start + q * golden of outputs q = p * VW .. p * VW + VW - 1 of a group */
static inline u32v F(counters)(uint32_t start, int p) {
    u32v c;
    memcpy(&c, F(lane_offsets) + p * VW, sizeof c);
    return c + start;
}

/* hi32(k) as words() uses it: the mixer's step h ^= hi; h ^= h >> 15 is
 * h ^ (h >> 15) ^ (hi ^ (hi >> 15)) (shifts and XORs commute), one term made once per stream */
static inline u32v F(stream_hi)(uint64_t k) {
    const uint32_t hi = (uint32_t)(k >> 32);
    return F(splat)(hi ^ (hi >> 15));
}

/* VW consecutive words of one stream, from their Weyl values lo32(k) + counter * golden and
 * stream_hi(k), with the top bit flipped for the signed compare (the 3-input XORs are one
 * AVX-512 instruction each) */
static inline i32v F(words)(u32v h, u32v hi) {
    h ^= h >> 16;
    h *= 0x7FEB352Du;
    h ^= (h >> 15) ^ hi;
    h *= 0x846CA68Bu;
    return (i32v)(h ^ (h >> 16) ^ TOP);
}

/* acc + (coin ? sign * x : +0) for VW outputs */
static inline f32v F(add_coins)(f32v acc, i32v h, const int32_t *limit, const float *sign,
                             float x) {
    i32v l;
    f32v g;
    memcpy(&l, limit, sizeof l);
    memcpy(&g, sign, sizeof g);
    return acc + (f32v)((i32v)(g * x) & ~(h > l));  /* compare: all ones where the coin is 0 */
}

/* the vector width of this variant, for the benchmark's report */
int F(coinflip_vector_lanes)(void) { return VW; }

/* samples of a classifier head (one group of LANES outputs) at once: each sum stays in a
 * register and still runs over the inputs in order, so one sum waits for its previous add;
 * CHAINS sums of SB samples in flight hide that latency */
#define CHAINS 4
#define SB (CHAINS / PARTS)

/* the nonzero inputs among n (a loop without branches) */
static inline int64_t F(nonzeros)(const float *x, int64_t n) {
    int64_t count = 0;
    for (int64_t i = 0; i < n; ++i)
        count += x[i] != 0.0f;
    return count;
}

/* ns samples (at most SB) of a head: their streams, inputs (xs + k * x_sample_stride) and
 * outputs (acc + k * out_pad); returns the coins drawn. Zero inputs are run, not skipped (no
 * branch to miss; they add +0, and a sum is never -0, so the sum is the same) */
static inline int64_t F(head)(int ns, const uint64_t *stream, const float *xs,
                           int64_t x_sample_stride, int64_t in, int64_t out,
                           const int32_t *limit, const float *sign, float *acc,
                           int64_t out_pad) {
    const u32v step = F(splat)((uint32_t)out * GOLDEN);
    u32v hi[SB], c[SB][PARTS];
    f32v a[SB][PARTS];
    int64_t coins = 0;
    for (int k = 0; k < ns; ++k) {
        hi[k] = F(stream_hi)(stream[k]);
        for (int p = 0; p < PARTS; ++p) {
            c[k][p] = F(counters)((uint32_t)stream[k], p);
            a[k][p] = (f32v){0};
        }
    }
    for (int64_t i = 0; i < in; ++i) {
        for (int k = 0; k < ns; ++k) {
            const float xi = xs[k * x_sample_stride + i];
            for (int p = 0; p < PARTS; ++p) {
                a[k][p] = F(add_coins)(a[k][p], F(words)(c[k][p], hi[k]), limit + i * LANES + p * VW,
                                    sign + i * LANES + p * VW, xi);
                c[k][p] += step;
            }
        }
    }
    for (int k = 0; k < ns; ++k) {
        memcpy(acc + k * out_pad, a[k], sizeof a[k]);
        coins += F(nonzeros)(xs + k * x_sample_stride, in) * out;
    }
    return coins;
}

/* items 0 .. items - 1 of a call (one thread's share) */
static int64_t F(coinflip_items)(
        const float *x, int64_t x_item_stride, int64_t x_sample_stride,
        int64_t items, int64_t samples, int64_t in, int64_t out,
        const int32_t *limit, const float *sign,
        const int64_t *item_index, int64_t first_sample, uint64_t layer_key, float *y) {
    const int64_t out_pad = (out + LANES - 1) / LANES * LANES;
    int64_t coins = 0;
    uint64_t *stream = malloc(sizeof(uint64_t) * (size_t)(samples > 0 ? samples : 1));
    int64_t *live = malloc(sizeof(int64_t) * (size_t)(samples > 0 ? samples : 1));
    float *acc = aligned_alloc(64, sizeof(float) * (size_t)(samples * out_pad + LANES));
    if (stream == NULL || live == NULL || acc == NULL) {
        free(stream);
        free(live);
        free(acc);
        return -1;
    }
    for (int64_t b = 0; b < items; ++b) {
        memset(acc, 0, sizeof(float) * (size_t)(samples * out_pad));
        const uint64_t item_key = F(mix64)(layer_key ^ (uint64_t)item_index[b]);
        for (int64_t s = 0; s < samples; ++s)
            stream[s] = F(mix64)(item_key ^ (uint64_t)(first_sample + s));
        const float *xb = x + b * x_item_stride;
        if (out_pad == LANES) {
            /* one group of outputs (a classifier head): SB samples at a time */
            int64_t s = 0;
            for (; s + SB <= samples; s += SB)
                coins += F(head)(SB, stream + s, xb + s * x_sample_stride, x_sample_stride, in, out,
                              limit, sign, acc + s * out_pad, out_pad);
            for (; s < samples; ++s)
                coins += F(head)(1, stream + s, xb + s * x_sample_stride, x_sample_stride, in, out,
                              limit, sign, acc + s * out_pad, out_pad);
        } else {
            /* input by input, sample by sample: a row of limits and signs is read once per
             * item and stays in L1 across the samples */
            const u32v step = F(splat)((uint32_t)VW * GOLDEN);
            for (int64_t i = 0; i < in; ++i) {
                const uint32_t base = (uint32_t)(i * out) * GOLDEN;
                const int32_t *li = limit + i * out_pad;
                const float *gi = sign + i * out_pad;
                /* the samples whose input i is not zero (a zero input draws no coins), listed
                 * without a branch: skipping zeros by a branch mispredicts on sparse inputs */
                int64_t m = 0;
                for (int64_t s = 0; s < samples; ++s) {
                    live[m] = s;
                    m += xb[s * x_sample_stride + i] != 0.0f;
                }
                coins += m * out;
                for (int64_t t = 0; t < m; ++t) {
                    const int64_t s = live[t];
                    const float xi = xb[s * x_sample_stride + i];
                    const u32v hi = F(stream_hi)(stream[s]);
                    u32v c = F(counters)((uint32_t)stream[s] + base, 0);
                    float *as = acc + s * out_pad;
                    for (int64_t j = 0; j < out_pad; j += VW, c += step) {
                        f32v a;
                        memcpy(&a, as + j, sizeof a);
                        a = F(add_coins)(a, F(words)(c, hi), li + j, gi + j, xi);
                        memcpy(as + j, &a, sizeof a);
                    }
                }
            }
        }
        float *yb = y + b * samples * out;
        for (int64_t s = 0; s < samples; ++s)
            memcpy(yb + s * out, acc + s * out_pad, sizeof(float) * (size_t)out);
    }
    free(stream);
    free(live);
    free(acc);
    return coins;
}

/* every item of a call, split over `threads` threads of the OpenMP runtime the process already
 * runs (PyTorch's: its workers are waiting for work, so none competes with ours); returns the
 * coins drawn, or -1 when a thread could not allocate its accumulators */
int64_t F(coinflip_independent)(
        const float *x, int64_t x_item_stride, int64_t x_sample_stride,
        int64_t items, int64_t samples, int64_t in, int64_t out,
        const int32_t *limit, const float *sign,
        const int64_t *item_index, int64_t first_sample, uint64_t layer_key, float *y,
        int threads) {
    if (threads > items)
        threads = (int)items;
    if (threads < 1)
        threads = 1;
    int64_t coins = 0;
    int failed = 0;
#pragma omp parallel for num_threads(threads) schedule(static) reduction(+ : coins) \
    reduction(| : failed)
    for (int t = 0; t < threads; ++t) {
        const int64_t lo = items * t / threads, hi = items * (t + 1) / threads;
        const int64_t got = F(coinflip_items)(
            x + lo * x_item_stride, x_item_stride, x_sample_stride, hi - lo, samples, in, out,
            limit, sign, item_index + lo, first_sample, layer_key, y + lo * samples * out);
        if (got < 0)
            failed = 1;
        else
            coins += got;
    }
    return failed ? -1 : coins;
}

#undef u32v
#undef i32v
#undef f32v
#undef PARTS
#undef SB
#undef CHAINS
