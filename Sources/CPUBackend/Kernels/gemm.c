/* Plain, cache-blocked GEMM that clang vectorises at -O3 for the target ISA.
   The register-blocked micro-kernels come with the performance work. */
#include "kiln_kernels.h"

#define DEFINE_GEMM(NAME, T)                                                                                        \
  void KK(NAME)(int trans_a, int trans_b, size_t m, size_t n, size_t k, T alpha, const T *a, size_t lda,           \
                const T *b, size_t ldb, T beta, T *c, size_t ldc) {                                                \
    for (size_t i = 0; i < m; i++) {                                                                                \
      T *row = c + i * ldc;                                                                                         \
      if (beta == (T)0) {                                                                                           \
        for (size_t j = 0; j < n; j++) row[j] = 0;                                                                  \
      } else if (beta != (T)1) {                                                                                    \
        for (size_t j = 0; j < n; j++) row[j] *= beta;                                                              \
      }                                                                                                             \
    }                                                                                                               \
    if (trans_b) {                                                                                                  \
      /* Rows of B are columns of op(B): dot products over contiguous memory. */                                   \
      for (size_t i = 0; i < m; i++) {                                                                              \
        for (size_t j = 0; j < n; j++) {                                                                            \
          const T *brow = b + j * ldb;                                                                              \
          T sum = 0;                                                                                                \
          if (!trans_a) {                                                                                           \
            const T *arow = a + i * lda;                                                                            \
            for (size_t p = 0; p < k; p++) sum += arow[p] * brow[p];                                                \
          } else {                                                                                                  \
            for (size_t p = 0; p < k; p++) sum += a[p * lda + i] * brow[p];                                         \
          }                                                                                                         \
          c[i * ldc + j] += alpha * sum;                                                                            \
        }                                                                                                           \
      }                                                                                                             \
      return;                                                                                                       \
    }                                                                                                               \
    const size_t block = 256;                                                                                       \
    for (size_t k0 = 0; k0 < k; k0 += block) {                                                                      \
      size_t k1 = k0 + block < k ? k0 + block : k;                                                                  \
      for (size_t i = 0; i < m; i++) {                                                                              \
        T *row = c + i * ldc;                                                                                       \
        for (size_t p = k0; p < k1; p++) {                                                                          \
          T av = alpha * (trans_a ? a[p * lda + i] : a[i * lda + p]);                                               \
          const T *brow = b + p * ldb;                                                                              \
          for (size_t j = 0; j < n; j++) row[j] += av * brow[j];                                                    \
        }                                                                                                           \
      }                                                                                                             \
    }                                                                                                               \
  }

DEFINE_GEMM(sgemm, float)
DEFINE_GEMM(dgemm, double)
