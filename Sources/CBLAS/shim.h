#ifndef COHORT_CBLAS_SHIM_H
#define COHORT_CBLAS_SHIM_H
#include <cblas.h>
#include <malloc.h>

/* OpenBLAS thread control; declared here so Swift sees one prototype whatever the header version. */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
char *openblas_get_corename(void);

/* Large tensor buffers are allocated and freed every step. glibc hands blocks above 128 KiB to mmap,
   so each step would page-fault its gradients in anew. Keeping them on the heap is measurably faster
   (PLATFORM.md); Swift's Glibc module does not export mallopt, hence this shim. */
static inline void cohort_tune_malloc(void) {
    mallopt(M_MMAP_THRESHOLD, 256 * 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 512 * 1024 * 1024);
}
#endif
