// σ and tanh with AVX2, eight lanes per instruction: the same operations, in the same order,
// as CohortTensor's VectorMath (Swift SIMD8 at baseline x86-64, two SSE registers per vector),
// so every result has the same bits; only faster. Without FMA (the target is "avx2" alone),
// so nothing can be contracted into a fused multiply-add.
#ifndef COHORT_CVECTORMATH_H
#define COHORT_CVECTORMATH_H

/// Whether this CPU runs the AVX2 kernels below.
int cohort_has_avx2(void);
/// p[k] = σ(p[k]) for k < count, in place.
void cohort_sigmoid_avx2(float *p, long count);
/// p[k] = tanh(p[k]) for k < count, in place.
void cohort_tanh_avx2(float *p, long count);
/// d[k] = bf16(bf16(a[k]) + bf16(b[k])) for k < count (CohortTensor's BFloat16.add); d may be a.
void cohort_bf16_add_avx2(long count, float *d, const float *a, const float *b);
/// The bfloat16 bits of source[k] rounded (CohortTensor's BFloat16.encode), for k below the
/// returned count (a multiple of 16); the caller does the rest.
long cohort_bf16_encode_avx2(long count, const float *source, unsigned short *destination);
/// destination[k] = the float whose top half is source[k] (BFloat16.decode), for k below the
/// returned count (a multiple of 8); the caller does the rest.
long cohort_bf16_decode_avx2(long count, const unsigned short *source, float *destination);
#endif
