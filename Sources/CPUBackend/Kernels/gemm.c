/* GEMM. Single precision without transposes (convolution's im2col product,
   MatMul) runs a register-blocked micro-kernel written with clang's vector
   extensions, so every target gets it at its own vector width: 6 rows of A
   times 2 vectors of B (6x16 with AVX2, 6x32 with AVX-512, 6x8 with SSE2 or
   NEON) in 12 accumulators, over blocks of 256 along k; 256 x NR panels of B
   are packed four at a time (reading B along its rows) and each stays in L1
   while every row block of A streams past. The other cases are plain loops
   that clang vectorises. */
#include "kiln_kernels.h"

#define KK_MR 6
#define KK_NR (2 * KK_VW)
#define KK_KC 256
#ifndef KK_PANELS
#define KK_PANELS 4 /* B panels packed together */
#endif
#ifndef KK_SMALL_M_ROWS
#define KK_SMALL_M_ROWS 9
#endif
#ifndef KK_SMALL_M_COLUMNS
#define KK_SMALL_M_COLUMNS 512
#endif

/* acc[r][h] = sum over p < kc of a[r][p] * b[p * ldb + h * KK_VW ...]. */
static inline __attribute__((always_inline)) void kk_micro(size_t kc, const float *const a[KK_MR], const float *b,
                                                           size_t ldb, kk_vf acc[KK_MR][2]) {
  kk_vf c[KK_MR][2] = {{{0}}};
  for (size_t p = 0; p < kc; p++) {
    kk_vf b0 = kk_load(b), b1 = kk_load(b + KK_VW);
    b += ldb;
#pragma clang loop unroll(full)
    for (int r = 0; r < KK_MR; r++) {
      float x = a[r][p];
      c[r][0] += b0 * x;
      c[r][1] += b1 * x;
    }
  }
#pragma clang loop unroll(full)
  for (int r = 0; r < KK_MR; r++) acc[r][0] = c[r][0], acc[r][1] = c[r][1];
}

/* c[m x n] += alpha * a[m x k] b[k x n] for m below the micro-kernel's row count (matrix-vector products,
   classifier heads): B streams through once, four rows of it per pass over a block of c kept in L1. */
static void kk_sgemm_small_m(size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda, const float *b,
                             size_t ldb, float *c, size_t ldc) {
  const size_t block = KK_SMALL_M_COLUMNS;
  for (size_t j0 = 0; j0 < n; j0 += block) {
    size_t j1 = n - j0 < block ? n : j0 + block;
    size_t p = 0;
    for (; p + 4 <= k; p += 4) {
      const float *b0 = b + p * ldb, *b1 = b0 + ldb, *b2 = b1 + ldb, *b3 = b2 + ldb;
      for (size_t i = 0; i < m; i++) {
        const float *ai = a + i * lda + p;
        float x0 = alpha * ai[0], x1 = alpha * ai[1], x2 = alpha * ai[2], x3 = alpha * ai[3];
        float *restrict row = c + i * ldc;
        for (size_t j = j0; j < j1; j++) row[j] += x0 * b0[j] + x1 * b1[j] + x2 * b2[j] + x3 * b3[j];
      }
    }
    for (; p < k; p++) {
      const float *b0 = b + p * ldb;
      for (size_t i = 0; i < m; i++) {
        float x0 = alpha * a[i * lda + p];
        float *restrict row = c + i * ldc;
        for (size_t j = j0; j < j1; j++) row[j] += x0 * b0[j];
      }
    }
  }
}

/* The epilogue on rows [0, m) and columns [0, n) of c, whose first element is row `row0`, column `column0`
   of the whole product (bias is per row; the residual is indexed like the whole c). */
static void kk_epilogue_rows(const kk_epilogue *ep, float *c, size_t ldc, size_t row0, size_t column0, size_t m,
                             size_t n) {
  kk_epilogue shifted = *ep;
  if (ep->residual) shifted.residual = ep->residual + column0;
  if (ep->column_bias) shifted.column_bias = ep->column_bias + column0;
  for (size_t i = 0; i < m; i++) {
    float *row = c + i * ldc;
    if (ep->bias) {
      float b = ep->bias[row0 + i];
      for (size_t j = 0; j < n; j++) row[j] += b;
    }
    kk_epilogue_apply(&shifted, row, row0 + i, n);
  }
}

/* One finished vector of c (row `row`, column `column` of the whole product) through the epilogue. */
static inline kk_vf kk_epilogue_vector(const kk_epilogue *ep, kk_vf v, size_t row, size_t column) {
  if (ep->bias) v += ep->bias[row];
  if (ep->column_bias) v += kk_load(ep->column_bias + column);
  if (ep->residual) v += kk_load(ep->residual + row * ep->ld_residual + column);
  if (ep->special) v = kk_special_vector(ep->special, v);
  if (ep->clamp) v = __builtin_elementwise_min(__builtin_elementwise_max(v, kk_splat(ep->lo)), kk_splat(ep->hi));
  return v;
}

/* c[m x n] += alpha * a[m x k] b[k x n], all row-major. With an epilogue (`column0`: where c starts in the
   whole product), c is overwritten instead and the epilogue applied as each tile is finished. */
static void kk_sgemm_nn(size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda, const float *b,
                        size_t ldb, float *c, size_t ldc, const kk_epilogue *ep, size_t column0) {
  if (ep && k == 0) {
    for (size_t i = 0; i < m; i++)
      for (size_t j = 0; j < n; j++) c[i * ldc + j] = 0.0f;
    kk_epilogue_rows(ep, c, ldc, 0, column0, m, n);
    return;
  }
  float panels[KK_PANELS * KK_KC * KK_NR]; /* KK_PANELS kc x NR panels of B, each contiguous */
  for (size_t k0 = 0; k0 < k; k0 += KK_KC) {
    size_t kc = k - k0 < KK_KC ? k - k0 : KK_KC;
    for (size_t jb = 0; jb < n; jb += KK_PANELS * KK_NR) {
      /* Packed a block of panels at a time, B read along its rows (kc rows at stride ldb would touch kc
         pages per panel: the TLB misses cost more than the multiply-adds), zero-padded past n. */
      size_t block = n - jb < KK_PANELS * KK_NR ? n - jb : KK_PANELS * KK_NR;
      for (size_t p = 0; p < kc; p++) {
        const float *source = b + (k0 + p) * ldb + jb;
        size_t q = 0;
        for (; q + KK_NR <= block; q += KK_NR) {
          float *dst = panels + (q / KK_NR) * KK_KC * KK_NR + p * KK_NR;
          kk_store(dst, kk_load(source + q));
          kk_store(dst + KK_VW, kk_load(source + q + KK_VW));
        }
        if (q < block) {
          float *dst = panels + (q / KK_NR) * KK_KC * KK_NR + p * KK_NR;
          for (size_t t = 0; t < KK_NR; t++) dst[t] = q + t < block ? source[q + t] : 0.0f;
        }
      }
      for (size_t j = jb; j < jb + block; j += KK_NR) {
        size_t nr = n - j < KK_NR ? n - j : KK_NR;
        const float *panel = panels + ((j - jb) / KK_NR) * KK_KC * KK_NR;
        int first = ep && k0 == 0, last = ep && k0 + kc == k;
        for (size_t i = 0; i < m; i += KK_MR) {
          size_t mr = m - i < KK_MR ? m - i : KK_MR;
          const float *rows[KK_MR];
          for (size_t r = 0; r < KK_MR; r++) rows[r] = a + (i + (r < mr ? r : mr - 1)) * lda + k0;
          kk_vf acc[KK_MR][2];
          kk_micro(kc, rows, panel, KK_NR, acc);
          for (size_t r = 0; r < mr; r++) {
            float *out = c + (i + r) * ldc + j;
            if (nr == KK_NR) {
              kk_vf v0 = acc[r][0] * alpha, v1 = acc[r][1] * alpha;
              if (!first) v0 += kk_load(out), v1 += kk_load(out + KK_VW);
              if (last) {
                v0 = kk_epilogue_vector(ep, v0, i + r, column0 + j);
                v1 = kk_epilogue_vector(ep, v1, i + r, column0 + j + KK_VW);
              }
              kk_store(out, v0);
              kk_store(out + KK_VW, v1);
            } else {
              float tile[KK_NR];
              kk_store(tile, acc[r][0]);
              kk_store(tile + KK_VW, acc[r][1]);
              for (size_t q = 0; q < nr; q++) out[q] = (first ? 0.0f : out[q]) + alpha * tile[q];
              if (last) kk_epilogue_rows(ep, out, ldc, i + r, column0 + j, 1, nr);
            }
          }
        }
      }
    }
  }
}

static inline float kk_sum(kk_vf v) {
  float lanes[KK_VW], total = 0;
  kk_store(lanes, v);
  for (int i = 0; i < KK_VW; i++) total += lanes[i];
  return total;
}

/* c[m x n] += alpha * a[m x k] b[n x k]^T: dot products of rows, four rows of b at a time in vector
   accumulators (a fully-connected layer's weights are b). */
static void kk_sgemm_nt(size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda, const float *b,
                        size_t ldb, float *c, size_t ldc) {
  size_t kv = k / KK_VW * KK_VW;
  for (size_t i = 0; i < m; i++) {
    const float *arow = a + i * lda;
    size_t j = 0;
    for (; j + 4 <= n; j += 4) {
      const float *b0 = b + j * ldb, *b1 = b0 + ldb, *b2 = b1 + ldb, *b3 = b2 + ldb;
      kk_vf s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
      for (size_t p = 0; p < kv; p += KK_VW) {
        kk_vf x = kk_load(arow + p);
        s0 += x * kk_load(b0 + p);
        s1 += x * kk_load(b1 + p);
        s2 += x * kk_load(b2 + p);
        s3 += x * kk_load(b3 + p);
      }
      float t0 = kk_sum(s0), t1 = kk_sum(s1), t2 = kk_sum(s2), t3 = kk_sum(s3);
      for (size_t p = kv; p < k; p++) {
        t0 += arow[p] * b0[p];
        t1 += arow[p] * b1[p];
        t2 += arow[p] * b2[p];
        t3 += arow[p] * b3[p];
      }
      float *out = c + i * ldc + j;
      out[0] += alpha * t0, out[1] += alpha * t1, out[2] += alpha * t2, out[3] += alpha * t3;
    }
    for (; j < n; j++) {
      const float *brow = b + j * ldb;
      kk_vf s = {0};
      for (size_t p = 0; p < kv; p += KK_VW) s += kk_load(arow + p) * kk_load(brow + p);
      float t = kk_sum(s);
      for (size_t p = kv; p < k; p++) t += arow[p] * brow[p];
      c[i * ldc + j] += alpha * t;
    }
  }
}

/* c[m x n] (+)= alpha * a b by the micro-kernel, or streaming B when m is below its row count; with an
   epilogue, c is overwritten and the epilogue applied (`column0`: where c starts in the whole product). */
static void kk_sgemm_rows(size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda, const float *b,
                          size_t ldb, float *c, size_t ldc, const kk_epilogue *ep, size_t column0) {
  if (m >= KK_SMALL_M_ROWS) {
    kk_sgemm_nn(m, n, k, alpha, a, lda, b, ldb, c, ldc, ep, column0);
    return;
  }
  if (ep)
    for (size_t i = 0; i < m; i++)
      for (size_t j = 0; j < n; j++) c[i * ldc + j] = 0.0f;
  kk_sgemm_small_m(m, n, k, alpha, a, lda, b, ldb, c, ldc);
  if (ep) kk_epilogue_rows(ep, c, ldc, 0, column0, m, n);
}

/* Single-precision products split by columns over the runtime's threads: each task owns whole NR-wide
   panels of c, so no two write the same element and every thread packs its own panels of B. */
typedef struct {
  int kind; /* 0: a b, 1: a b with few rows (both kk_sgemm_rows), 2: a bT */
  size_t m, n, k, lda, ldb, ldc, columns;
  float alpha;
  const float *a, *b;
  float *c;
  const kk_epilogue *ep; /* kinds 0 and 1: c is overwritten, then this */
} kk_gemm_job;

static void kk_gemm_columns(const kk_gemm_job *job, size_t j0, size_t j1) {
  size_t width = j1 - j0;
  switch (job->kind) {
  case 0:
  case 1:
    kk_sgemm_rows(job->m, width, job->k, job->alpha, job->a, job->lda, job->b + j0, job->ldb, job->c + j0, job->ldc,
                  job->ep, j0);
    break;
  default:
    kk_sgemm_nt(job->m, width, job->k, job->alpha, job->a, job->lda, job->b + j0 * job->ldb, job->ldb, job->c + j0,
                job->ldc);
  }
}

static void kk_gemm_task(void *context, size_t t) {
  const kk_gemm_job *job = context;
  size_t j0 = t * job->columns, j1 = j0 + job->columns < job->n ? j0 + job->columns : job->n;
  if (j0 < j1) kk_gemm_columns(job, j0, j1);
}

/* Few columns (a 7 x 7 map: 49) but many rows: tasks own whole blocks of MR rows of c instead, each
   packing B for itself; the epilogue's per-row bias and residual move with the rows. */
typedef struct {
  const kk_gemm_job *job;
  size_t rows; /* per task, a multiple of KK_MR */
} kk_gemm_rows_job;

static void kk_gemm_rows_task(void *context, size_t t) {
  const kk_gemm_rows_job *split = context;
  const kk_gemm_job *job = split->job;
  size_t i0 = t * split->rows, i1 = i0 + split->rows < job->m ? i0 + split->rows : job->m;
  if (i0 >= i1) return;
  kk_epilogue shifted;
  const kk_epilogue *ep = job->ep;
  if (ep) {
    shifted = *ep;
    if (ep->bias) shifted.bias = ep->bias + i0;
    if (ep->residual) shifted.residual = ep->residual + i0 * ep->ld_residual;
    ep = &shifted;
  }
  kk_sgemm_nn(i1 - i0, job->n, job->k, job->alpha, job->a + i0 * job->lda, job->lda, job->b, job->ldb,
              job->c + i0 * job->ldc, job->ldc, ep, 0);
}

/* Products of fewer rows than this many multiply-adds run on one thread: each weight is read once and
   used for a few rows, so the time is B streaming from L2 or L3, and a second core (its own L2, its own
   loads) halves it far sooner than it would a product that reuses B. MLP 784-512-256-10 at 2 threads on
   the Zen 5, alternating (benchmarks/ab-kernels.sh): 0.011 ms against 0.020 with KK_PARALLEL_MACS here. */
#ifndef KK_PARALLEL_STREAM_MACS
#define KK_PARALLEL_STREAM_MACS ((size_t)1 << 16)
#endif

static void kk_sgemm_parallel(int kind, size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda,
                              const float *b, size_t ldb, float *c, size_t ldc, const kk_epilogue *ep) {
  kk_gemm_job job = {kind, m, n, k, lda, ldb, ldc, n, alpha, a, b, c, ep};
  size_t threads = (size_t)kiln_rt_threads();
  /* Four tasks per thread: a worker that wakes late takes a share, not half. */
  size_t panels = (n + KK_NR - 1) / KK_NR;
  if (threads > 1 && m * n * k >= KK_PARALLEL_MACS && kind == 0 && panels < 4 * threads && m >= 4 * KK_MR * threads) {
    size_t tasks = 4 * threads;
    kk_gemm_rows_job split = {&job, (m + tasks - 1) / tasks};
    split.rows = (split.rows + KK_MR - 1) / KK_MR * KK_MR;
    kiln_rt_parallel((m + split.rows - 1) / split.rows, kk_gemm_rows_task, &split);
    return;
  }
  size_t threshold = m < KK_SMALL_M_ROWS ? KK_PARALLEL_STREAM_MACS : KK_PARALLEL_MACS;
  if (threads > 1 && m * n * k >= threshold && n >= 2 * KK_NR) {
    size_t tasks = 4 * threads < panels ? 4 * threads : panels;
    job.columns = (panels + tasks - 1) / tasks * KK_NR;
    kiln_rt_parallel((n + job.columns - 1) / job.columns, kk_gemm_task, &job);
    return;
  }
  kk_gemm_columns(&job, 0, n);
}

#define DEFINE_GEMM(NAME, T)                                                                                        \
  void KK(NAME)(int trans_a, int trans_b, size_t m, size_t n, size_t k, T alpha, const T *a, size_t lda,           \
                const T *b, size_t ldb, T beta, T *c, size_t ldc) {                                                \
    if (sizeof(T) == sizeof(float) && !trans_a && !trans_b && beta == (T)0) {                                     \
      /* C is overwritten as it is computed: no pass to clear it first. */                                        \
      static const kk_epilogue none = {0};                                                                          \
      kk_sgemm_parallel(m < KK_SMALL_M_ROWS ? 1 : 0, m, n, k, (float)alpha, (const float *)a, lda,                 \
                        (const float *)b, ldb, (float *)c, ldc, &none);                                             \
      return;                                                                                                       \
    }                                                                                                               \
    for (size_t i = 0; i < m; i++) {                                                                                \
      T *row = c + i * ldc;                                                                                         \
      if (beta == (T)0) {                                                                                           \
        for (size_t j = 0; j < n; j++) row[j] = 0;                                                                  \
      } else if (beta != (T)1) {                                                                                    \
        for (size_t j = 0; j < n; j++) row[j] *= beta;                                                              \
      }                                                                                                             \
    }                                                                                                               \
    if (trans_b && !trans_a && sizeof(T) == sizeof(float)) {                                                       \
      kk_sgemm_parallel(2, m, n, k, (float)alpha, (const float *)a, lda, (const float *)b, ldb, (float *)c, ldc, 0); \
      return;                                                                                                       \
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
    if (!trans_a && sizeof(T) == sizeof(float) && m < KK_SMALL_M_ROWS) {                                               \
      kk_sgemm_parallel(1, m, n, k, (float)alpha, (const float *)a, lda, (const float *)b, ldb, (float *)c, ldc, 0); \
      return;                                                                                                       \
    }                                                                                                               \
    if (!trans_a && sizeof(T) == sizeof(float)) {                                                                   \
      kk_sgemm_parallel(0, m, n, k, (float)alpha, (const float *)a, lda, (const float *)b, ldb, (float *)c, ldc, 0); \
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

void KK(sgemm_fused)(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *b, size_t ldb, float *c,
                     size_t ldc, const kk_epilogue *epilogue) {
  kk_sgemm_parallel(m < KK_SMALL_M_ROWS ? 1 : 0, m, n, k, 1.0f, a, lda, b, ldb, c, ldc, epilogue);
}

void KK(sgemm_fused_block)(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *b, size_t ldb,
                           float *c, size_t ldc, const kk_epilogue *epilogue, size_t column0) {
  kk_sgemm_rows(m, n, k, 1.0f, a, lda, b, ldb, c, ldc, epilogue, column0);
}

/* MatMul's batches, C[t] = A[t] B[t] (each m x k times k x n, C overwritten): when there are enough of them
   (a multiple of the threads, or four per thread), whole products go to the threads, each on one thread;
   else one at a time, each shared out as usual. */
typedef struct {
  size_t m, n, k;
  const float *a, *b;
  const size_t *offsets_a, *offsets_b;
  float *c;
} kk_batched_job;

static void kk_batched_range(void *context, size_t first, size_t last) {
  const kk_batched_job *job = context;
  static const kk_epilogue none = {0};
  for (size_t t = first; t < last; t++)
    kk_sgemm_rows(job->m, job->n, job->k, 1.0f, job->a + job->offsets_a[t], job->k, job->b + job->offsets_b[t],
                  job->n, job->c + t * job->m * job->n, job->n, &none, 0);
}

void KK(sgemm_batched)(size_t count, size_t m, size_t n, size_t k, const float *a, const size_t *offsets_a,
                       const float *b, const size_t *offsets_b, float *c) {
  size_t threads = (size_t)kiln_rt_threads();
  if (threads > 1 && (count % threads == 0 || count >= 4 * threads)) {
    kk_batched_job job = {m, n, k, a, b, offsets_a, offsets_b, c};
    kk_parallel_range(count, count * m * n * k, KK_PARALLEL_MACS, kk_batched_range, &job);
    return;
  }
  for (size_t t = 0; t < count; t++)
    KK(sgemm)(0, 0, m, n, k, 1.0f, a + offsets_a[t], k, b + offsets_b[t], n, 0.0f, c + t * m * n, n);
}

/* Attention (Passes/FuseAttention.swift): out[b] = softmax(scale · q[b] kt[b] + mask[b]) v[b] for each of
   `batches` products, q[b] lq x d, kt[b] d x lk, v[b] lk x dv, out[b] lq x dv contiguous. Each task takes a
   block of query rows of one batch: their scores (in `scores`, which has room for every batch's lq x lk),
   masked and softmaxed in place while still in cache, then times v. A block is at least
   KK_ATTENTION_MIN_ROWS rows or KK_ATTENTION_BLOCK_BYTES of scores: smaller ones packed K and V again too
   often. The unfused graph wrote all the scores, read and wrote them again for the scale, the mask and the
   softmax, and read them once more for v. */
#ifndef KK_ATTENTION_BLOCK_BYTES
#define KK_ATTENTION_BLOCK_BYTES (128 << 10)
#endif
#ifndef KK_ATTENTION_MIN_ROWS
#define KK_ATTENTION_MIN_ROWS 48
#endif

typedef struct {
  const kk_attention_params *p;
  const float *q, *kt, *v, *mask;
  float *out, *scores;
  size_t rows, blocks; /* query rows per task; tasks per batch */
} kk_attention_job;

static void kk_attention_range(void *context, size_t first, size_t last) {
  const kk_attention_job *job = context;
  const kk_attention_params *p = job->p;
  static const kk_epilogue none = {0};
  for (size_t t = first; t < last; t++) {
    size_t b = t / job->blocks, r0 = t % job->blocks * job->rows;
    size_t rows = p->lq - r0 < job->rows ? p->lq - r0 : job->rows;
    float *s = job->scores + (b * p->lq + r0) * p->lk;
    kk_sgemm_rows(rows, p->lk, p->d, p->scale, job->q + p->offsets_q[b] + r0 * p->d, p->d, job->kt + p->offsets_kt[b],
                  p->lk, s, p->lk, &none, 0);
    for (size_t r = 0; r < rows; r++) {
      float *row = s + r * p->lk;
      if (job->mask) {
        const float *m = job->mask + p->offsets_mask[b] + (r0 + r) * p->mask_row_stride;
        size_t k = 0;
        if (p->mask_column_stride) {
          for (; k + KK_VW <= p->lk; k += KK_VW) kk_store(row + k, kk_load(row + k) + kk_load(m + k));
          for (; k < p->lk; k++) row[k] += m[k];
        } else {
          for (; k < p->lk; k++) row[k] += m[0];
        }
      }
      float max;
      kk_scale_row(row, p->lk, 1.0f / kk_exp_row(row, row, p->lk, &max));
    }
    kk_sgemm_rows(rows, p->dv, p->lk, 1.0f, s, p->lk, job->v + p->offsets_v[b], p->dv,
                  job->out + (b * p->lq + r0) * p->dv, p->dv, &none, 0);
  }
}

void KK(attention_f32)(const kk_attention_params *p, const float *q, const float *kt, const float *v, const float *mask,
                       float *out, float *scores) {
  if (p->lq == 0 || p->dv == 0) return;
  if (p->lk == 0) { /* no keys: every output is an empty sum */
    for (size_t i = 0; i < p->batches * p->lq * p->dv; i++) out[i] = 0.0f;
    return;
  }
  size_t rows = KK_ATTENTION_BLOCK_BYTES / (sizeof(float) * p->lk);
  rows = rows < KK_ATTENTION_MIN_ROWS ? KK_ATTENTION_MIN_ROWS : rows / KK_MR * KK_MR;
  if (rows > p->lq) rows = p->lq;
  size_t blocks = (p->lq + rows - 1) / rows;
  kk_attention_job job = {p, q, kt, v, mask, out, scores, rows, blocks};
  kk_parallel_range(p->batches * blocks, p->batches * p->lq * p->lk * (p->d + p->dv), KK_PARALLEL_MACS,
                    kk_attention_range, &job);
}
