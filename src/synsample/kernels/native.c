/* synsample's compiled kernels, built once when the package is installed (setup.py), one
 * binary for every x86-64 CPU: each kernel is compiled here once per instruction set (AVX-512,
 * AVX2, SSSE3 / SSE4.2 for the GEMM, and the baseline every CPU of the architecture runs) under GCC's target pragmas, and
 * synsample.kernels picks among the variants the CPU supports by timing them
 * (synsample.paths). Loaded with ctypes; no torch headers. Every variant gives the same bits.
 *
 * Exports, per variant V:
 *   coinflip_independent_V, coinflip_vector_lanes_V   (coinflip.h; base, avx2, avx512)
 *   gemm_u8s8_V, gemm_block_columns_V                  (gemm_u8s8.h; sse4, avx2, avx512)
 *   synsample_supports(i)                              1 when the CPU runs variant i (0 base,
 *                                                      1 avx2, 2 avx512, 3 sse4)
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)
#define F(name) CAT(name, SUFFIX)

/* ---- the baseline: SSE2 on x86-64, the architecture's own vectors elsewhere ---- */
#define SUFFIX base
#define VW 4
#include "coinflip.h"
#undef VW
#undef SUFFIX

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

/* ---- SSSE3 (x86-64-v2): the u8s8 GEMM only (the coin-flip kernel's baseline is SSE2) ---- */
#pragma GCC push_options
#pragma GCC target("ssse3,sse4.1,sse4.2,popcnt")
#define SUFFIX sse4
#define VEC __m128i
#define VB 16
#define ZERO() _mm_setzero_si128()
#define LOAD(p) _mm_loadu_si128((const __m128i *)(p))
#define SET16(v) _mm_set1_epi16(v)
#define SET32(v) _mm_set1_epi32(v)
#define ADD16(x, y) _mm_add_epi16(x, y)
#define ADD32(x, y) _mm_add_epi32(x, y)
#define MADDUBS(x, y) _mm_maddubs_epi16(x, y)
#define MADDWD(x, y) _mm_madd_epi16(x, y)
#define FVEC __m128
#define FSET(v) _mm_set1_ps(v)
#define FMUL(x, y) _mm_mul_ps(x, y)
#define TOFLOAT(v) _mm_cvtepi32_ps(v)
#define FSTORE(p, v) _mm_storeu_ps(p, v)
#include "gemm_u8s8.h"
#undef SUFFIX
#pragma GCC pop_options

/* ---- AVX2 (x86-64-v3) ---- */
#pragma GCC push_options
#pragma GCC target("avx2,fma,bmi2")
#define SUFFIX avx2
#define VW 8
#include "coinflip.h"
#undef VW

#define VEC __m256i
#define VB 32
#define ZERO() _mm256_setzero_si256()
#define LOAD(p) _mm256_loadu_si256((const __m256i *)(p))
#define SET16(v) _mm256_set1_epi16(v)
#define ADD16(x, y) _mm256_add_epi16(x, y)
#define SET32(v) _mm256_set1_epi32(v)
#define ADD32(x, y) _mm256_add_epi32(x, y)
#define MADDUBS(x, y) _mm256_maddubs_epi16(x, y)
#define MADDWD(x, y) _mm256_madd_epi16(x, y)
#define FVEC __m256
#define FSET(v) _mm256_set1_ps(v)
#define FMUL(x, y) _mm256_mul_ps(x, y)
#define TOFLOAT(v) _mm256_cvtepi32_ps(v)
#define FSTORE(p, v) _mm256_storeu_ps(p, v)
#include "gemm_u8s8.h"
#undef SUFFIX
#pragma GCC pop_options

/* ---- AVX-512 (F, BW, VL: x86-64-v4) ---- */
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,bmi2")
#define SUFFIX avx512
#define VW 16
#include "coinflip.h"
#undef VW

#define VEC __m512i
#define VB 64
#define ZERO() _mm512_setzero_si512()
#define LOAD(p) _mm512_loadu_si512((const void *)(p))
#define SET16(v) _mm512_set1_epi16(v)
#define ADD16(x, y) _mm512_add_epi16(x, y)
#define SET32(v) _mm512_set1_epi32(v)
#define ADD32(x, y) _mm512_add_epi32(x, y)
#define MADDUBS(x, y) _mm512_maddubs_epi16(x, y)
#define MADDWD(x, y) _mm512_madd_epi16(x, y)
#define FVEC __m512
#define FSET(v) _mm512_set1_ps(v)
#define FMUL(x, y) _mm512_mul_ps(x, y)
#define TOFLOAT(v) _mm512_cvtepi32_ps(v)
#define FSTORE(p, v) _mm512_storeu_ps(p, v)
#include "gemm_u8s8.h"
#undef SUFFIX
#pragma GCC pop_options

int synsample_supports(int variant) {
    __builtin_cpu_init();
    switch (variant) {
    case 0: return 1;
    case 3: return __builtin_cpu_supports("ssse3") && __builtin_cpu_supports("sse4.2")
                   && __builtin_cpu_supports("popcnt");
    case 1: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
                   && __builtin_cpu_supports("bmi2");
    case 2: return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
                   && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
    default: return 0;
    }
}
#else
int synsample_supports(int variant) { return variant == 0; }
#endif

/* A Python extension module in name only (setuptools builds and installs it as one): the
 * kernels are called through ctypes, so the module itself is empty. */
static struct PyModuleDef native_module = {PyModuleDef_HEAD_INIT, "_native",
                                           "synsample's compiled kernels (called via ctypes)",
                                           -1, NULL, NULL, NULL, NULL, NULL};
PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&native_module); }
