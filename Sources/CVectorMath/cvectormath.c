#include "cvectormath.h"
#include <immintrin.h>
#include <string.h>

int cohort_has_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
}

// Each line mirrors one line of VectorMath.exp (Sources/CohortTensor/VectorMath.swift).
__attribute__((target("avx2")))
static inline __m256 exp8(__m256 x) {
    const __m256 low = _mm256_set1_ps(-87.3f), high = _mm256_set1_ps(88.37f);
    x = _mm256_blendv_ps(x, low, _mm256_cmp_ps(x, low, _CMP_LT_OQ));     // NaN compares false: kept
    x = _mm256_blendv_ps(x, high, _mm256_cmp_ps(x, high, _CMP_GT_OQ));
    const __m256 shifter = _mm256_set1_ps(12582912.0f);
    __m256 shifted = _mm256_add_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504f)), shifter);
    __m256 n = _mm256_sub_ps(shifted, shifter);
    __m256 r = _mm256_sub_ps(_mm256_sub_ps(x, _mm256_mul_ps(n, _mm256_set1_ps(0.693145751953125f))),
                             _mm256_mul_ps(n, _mm256_set1_ps(1.428606765330187e-6f)));
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(p, _mm256_mul_ps(r, r)), r), _mm256_set1_ps(1.0f));
    __m256i exponent = _mm256_add_epi32(_mm256_sub_epi32(_mm256_castps_si256(shifted), _mm256_set1_epi32(0x4B400000)),
                                        _mm256_set1_epi32(127));
    exponent = _mm256_slli_epi32(exponent, 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(exponent));
}

__attribute__((target("avx2")))
static inline __m256 sigmoid8(__m256 x) {
    __m256 minus = _mm256_xor_ps(x, _mm256_set1_ps(-0.0f));
    __m256 s = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_add_ps(_mm256_set1_ps(1.0f), exp8(minus)));
    return _mm256_blendv_ps(s, _mm256_setzero_ps(), _mm256_cmp_ps(x, _mm256_set1_ps(-88.37f), _CMP_LT_OQ));
}

__attribute__((target("avx2")))
static inline __m256 tanh8(__m256 x) {
    __m256 e = exp8(_mm256_add_ps(x, x));
    return _mm256_sub_ps(_mm256_set1_ps(1.0f), _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, _mm256_set1_ps(1.0f))));
}

// The last partial group goes through the same lanes, padded with zeros as the Swift version.
#define APPLY(f) \
    long k = 0; \
    for (; k + 8 <= count; k += 8) _mm256_storeu_ps(p + k, f(_mm256_loadu_ps(p + k))); \
    if (k < count) { \
        float tail[8] = {0}; \
        memcpy(tail, p + k, (size_t)(count - k) * sizeof(float)); \
        _mm256_storeu_ps(tail, f(_mm256_loadu_ps(tail))); \
        memcpy(p + k, tail, (size_t)(count - k) * sizeof(float)); \
    }

__attribute__((target("avx2"))) void cohort_sigmoid_avx2(float *p, long count) { APPLY(sigmoid8) }
__attribute__((target("avx2"))) void cohort_tanh_avx2(float *p, long count) { APPLY(tanh8) }

// BFloat16.round (Sources/CohortTensor/BFloat16.swift): to nearest, ties to even; a NaN kept, quiet.
__attribute__((target("avx2")))
static inline __m256i round_bf16_8(__m256i bits) {
    const __m256i top = _mm256_set1_epi32((int)0xFFFF0000u);
    __m256i odd = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
    __m256i rounded = _mm256_and_si256(_mm256_add_epi32(_mm256_add_epi32(bits, _mm256_set1_epi32(0x7FFF)), odd), top);
    __m256i quiet = _mm256_and_si256(_mm256_or_si256(bits, _mm256_set1_epi32(0x00400000)), top);
    __m256i magnitude = _mm256_and_si256(bits, _mm256_set1_epi32(0x7FFFFFFF));
    __m256i isNaN = _mm256_cmpgt_epi32(magnitude, _mm256_set1_epi32(0x7F800000));
    return _mm256_blendv_epi8(rounded, quiet, isNaN);
}

__attribute__((target("avx2")))
static inline __m256 add_bf16_8(__m256 a, __m256 b) {
    __m256 ra = _mm256_castsi256_ps(round_bf16_8(_mm256_castps_si256(a)));
    __m256 rb = _mm256_castsi256_ps(round_bf16_8(_mm256_castps_si256(b)));
    return _mm256_castsi256_ps(round_bf16_8(_mm256_castps_si256(_mm256_add_ps(ra, rb))));
}

__attribute__((target("avx2")))
void cohort_bf16_add_avx2(long count, float *d, const float *a, const float *b) {
    long k = 0;
    for (; k + 8 <= count; k += 8) _mm256_storeu_ps(d + k, add_bf16_8(_mm256_loadu_ps(a + k), _mm256_loadu_ps(b + k)));
    for (; k < count; k++) {
        float ta[8] = {0}, tb[8] = {0}, td[8];
        ta[0] = a[k]; tb[0] = b[k];
        _mm256_storeu_ps(td, add_bf16_8(_mm256_loadu_ps(ta), _mm256_loadu_ps(tb)));
        d[k] = td[0];
    }
}

// BFloat16.encode: each float rounded (round_bf16_8), its top 16 bits stored little-endian, 16
// values an iteration. packus narrows within each 128-bit half; the permute puts the halves back
// in order. After the shift every lane is at most 0xFFFF, so packus never saturates.
__attribute__((target("avx2")))
long cohort_bf16_encode_avx2(long count, const float *source, unsigned short *destination) {
    long k = 0;
    for (; k + 16 <= count; k += 16) {
        __m256i lo = _mm256_srli_epi32(round_bf16_8(_mm256_loadu_si256((const __m256i *)(source + k))), 16);
        __m256i hi = _mm256_srli_epi32(round_bf16_8(_mm256_loadu_si256((const __m256i *)(source + k + 8))), 16);
        __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(lo, hi), 0xD8);
        _mm256_storeu_si256((__m256i *)(destination + k), packed);
    }
    return k;
}

// BFloat16.decode: each 16-bit value widened and moved to the top of its float, 8 an iteration.
__attribute__((target("avx2")))
long cohort_bf16_decode_avx2(long count, const unsigned short *source, float *destination) {
    long k = 0;
    for (; k + 8 <= count; k += 8) {
        __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(source + k)));
        _mm256_storeu_si256((__m256i *)(destination + k), _mm256_slli_epi32(wide, 16));
    }
    return k;
}
