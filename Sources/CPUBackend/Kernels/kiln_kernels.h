/*
 * Kiln's kernel library: the heavy operators a compiled model calls.
 *
 * Every kernel name goes through KK(): each CPU variant of an artifact (say
 * AVX-512 and AVX2) compiles this library with its own -march and its own
 * KK_SUFFIX, so both live side by side in one shared object and the loader
 * picks one. Shapes arrive as plain arrays; the generated code passes
 * constants, so clang specialises little here but the generator does.
 */
#ifndef KILN_KERNELS_H
#define KILN_KERNELS_H

#include "kiln_libc.h"

#ifndef KK_SUFFIX
#define KK_SUFFIX _generic
#endif
#define KK_CAT2(a, b) a##b
#define KK_CAT(a, b) KK_CAT2(a, b)
#define KK(name) KK_CAT(kk_##name, KK_SUFFIX)

#define KK_MAX_RANK 8

/* The artifact runtime's thread pool (runtime.c): how many threads kiln_run may use, and task(context, t)
   for every t < tasks spread over them (run here, in order, when there is one thread). */
int kiln_rt_threads(void);
void kiln_rt_parallel(size_t tasks, void (*task)(void *, size_t), void *context);

/* range(context, first, last) over [0, count) in chunks, four per thread (a worker that wakes late takes a
   share, not half), when `work` (multiply-adds, say) reaches `min_work`; else in one call here. */
typedef struct {
  void (*range)(void *, size_t, size_t);
  void *context;
  size_t count, per_task;
} kk_range_job;

static inline void kk_range_task(void *job_pointer, size_t t) {
  const kk_range_job *job = job_pointer;
  size_t first = t * job->per_task, last = first + job->per_task < job->count ? first + job->per_task : job->count;
  if (first < last) job->range(job->context, first, last);
}

static inline void kk_parallel_range(size_t count, size_t work, size_t min_work, void (*range)(void *, size_t, size_t),
                                     void *context) {
  size_t threads = (size_t)kiln_rt_threads();
  if (threads > 1 && count >= 2 && work >= min_work) {
    size_t chunks = 4 * threads < count ? 4 * threads : count;
    kk_range_job job = {range, context, count, (count + chunks - 1) / chunks};
    kiln_rt_parallel((count + job.per_task - 1) / job.per_task, kk_range_task, &job);
  } else if (count > 0) {
    range(context, 0, count);
  }
}

/* Right-aligns an n-d (n <= 3) window field to 3 dims, filling the front with `fill`,
   so one loop nest serves 1-D, 2-D and 3-D convolution and pooling. */
static inline void kk_align3(size_t n, const size_t *values, size_t fill, size_t out[3]) {
  for (size_t i = 0; i < 3; i++) out[i] = i < 3 - n ? fill : values[i - (3 - n)];
}

/* C = alpha * op(A) * op(B) + beta * C, row-major; op transposes when trans != 0. */
void KK(sgemm)(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda,
               const float *b, size_t ldb, float beta, float *c, size_t ldc);
void KK(dgemm)(int trans_a, int trans_b, size_t m, size_t n, size_t k, double alpha, const double *a, size_t lda,
               const double *b, size_t ldb, double beta, double *c, size_t ldc);

/* N-d convolution (1 to 3 spatial dims), NCHW-style layout, via im2col + GEMM.
   `scratch` holds (C/group * prod(kernel)) * prod(out spatial) floats. */
typedef struct {
  size_t batch, in_channels, out_channels, group, spatial;
  size_t in[3], out[3], kernel[3], stride[3], dilation[3], pad_begin[3];
} kk_conv_params;
void KK(conv_f32)(const kk_conv_params *p, const float *x, const float *w, const float *bias, float *y, float *scratch);
/* Transposed convolution: scatter form. */
void KK(conv_transpose_f32)(const kk_conv_params *p, const float *x, const float *w, const float *bias, float *y);

/* N-d pooling. kind: 0 max, 1 average, 2 Lp (p in `p_norm`). */
typedef struct {
  size_t batch, channels, spatial;
  size_t in[3], out[3], kernel[3], stride[3], dilation[3], pad_begin[3], pad_end[3];
  int kind, count_include_pad, p_norm;
  int storage_order; /* MaxPool indices: 0 row-major, 1 column-major */
} kk_pool_params;
void KK(pool_f32)(const kk_pool_params *p, const float *x, float *y, int64_t *indices);

/* Reductions over the axes flagged in `reduce` of an input of shape `dims`.
   op: 0 sum, 1 mean, 2 max, 3 min, 4 prod, 5 L1, 6 L2, 7 log-sum, 8 log-sum-exp, 9 sum-square. */
void KK(reduce_f32)(int op, const float *x, size_t rank, const size_t *dims, const uint8_t *reduce, float *y);
void KK(reduce_f64)(int op, const double *x, size_t rank, const size_t *dims, const uint8_t *reduce, double *y);
void KK(reduce_i64)(int op, const int64_t *x, size_t rank, const size_t *dims, const uint8_t *reduce, int64_t *y);
void KK(reduce_i32)(int op, const int32_t *x, size_t rank, const size_t *dims, const uint8_t *reduce, int32_t *y);

/* ArgMax (is_max) / ArgMin along `axis` of shape [outer, axis_len, inner]. */
void KK(arg_reduce_f32)(int is_max, int select_last, const float *x, size_t outer, size_t axis_len, size_t inner,
                        int64_t *y);

/* Softmax family along the middle dim of [outer, len, inner]: 0 softmax, 1 log-softmax, 2 hardmax. */
void KK(softmax_f32)(int kind, const float *x, size_t outer, size_t len, size_t inner, float *y);
void KK(softmax_f64)(int kind, const double *x, size_t outer, size_t len, size_t inner, double *y);

/* Data movement, for any element size in bytes. */
void KK(transpose)(const void *x, void *y, size_t element, size_t rank, const size_t *dims, const size_t *perm);
/* y[i] = x[sum_k idx_k * strides[k] + offset] for the output box `dims` (strides may be negative). */
void KK(strided_copy)(const void *x, void *y, size_t element, size_t rank, const size_t *dims,
                      const ptrdiff_t *strides, ptrdiff_t offset);
/* Broadcast x (its shape padded to `rank` with ones) to `dims`. */
void KK(broadcast_copy)(const void *x, void *y, size_t element, size_t rank, const size_t *x_dims, const size_t *dims);
/* Gather along an axis: data [outer, axis_len, inner], `count` indices. */
int KK(gather)(const void *data, const int64_t *indices, void *y, size_t element, size_t outer, size_t axis_len,
               size_t inner, size_t count);
/* Pad: mode 0 constant (value bytes at `value`), 1 reflect, 2 edge, 3 wrap. */
void KK(pad)(const void *x, void *y, size_t element, size_t rank, const size_t *in_dims, const ptrdiff_t *pad_begin,
             const size_t *out_dims, int mode, const void *value);

/* Resize by separable taps: for each axis d, out_dims[d] * taps[d] entries of (source index, weight)
   stored one axis after another; a negative index means "outside" (tf_crop_and_resize extrapolation). */
void KK(resize_f32)(const float *x, float *y, size_t rank, const size_t *in_dims, const size_t *out_dims,
                    const size_t *taps, const int64_t *index, const float *weight, float extrapolation);

/* Batch normalisation in inference mode over [n, c, spatial]. */
void KK(batch_norm_f32)(const float *x, const float *scale, const float *bias, const float *mean, const float *var,
                        float epsilon, size_t n, size_t c, size_t spatial, float *y);
/* Layer normalisation over the last `inner` elements of [outer, inner]; scale/bias broadcast over inner. */
void KK(layer_norm_f32)(const float *x, const float *scale, const float *bias, float epsilon, size_t outer,
                        size_t inner, float *y, float *mean_out, float *inv_std_out);

#endif
