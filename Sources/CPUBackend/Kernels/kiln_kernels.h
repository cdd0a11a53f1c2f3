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

/* A float vector of the variant's width, in clang's vector extensions (16 lanes with AVX-512, 8 with AVX,
   4 with SSE or NEON), with unaligned loads and stores. */
#if defined(__AVX512F__)
#define KK_VW 16
#elif defined(__AVX__)
#define KK_VW 8
#else
#define KK_VW 4
#endif
typedef float kk_vf __attribute__((vector_size(KK_VW * sizeof(float))));

static inline kk_vf kk_load(const float *p) {
  kk_vf v;
  memcpy(&v, p, sizeof v);
  return v;
}

static inline void kk_store(float *p, kk_vf v) { memcpy(p, &v, sizeof v); }

static inline kk_vf kk_splat(float x) {
  kk_vf v;
  for (int i = 0; i < KK_VW; i++) v[i] = x; /* a broadcast ({0} + x would add, for x = -0) */
  return v;
}

/* Lanes [0, n) from p, zero past them, for 0 < n < KK_VW; nothing past p[n - 1] is read (AVX and AVX-512:
   masked loads, which do not fault past the mask). No call and no trip through memory, which around a
   micro-kernel's stores would send every accumulator through the stack. */
static inline kk_vf kk_load_first(const float *p, size_t n) {
#if KK_VW == 16
  return __builtin_ia32_loadups512_mask(p, (kk_vf){0}, (unsigned short)((1u << n) - 1));
#elif KK_VW == 8
  typedef int kk_vi __attribute__((vector_size(8 * sizeof(int))));
  kk_vi lane = {0, 1, 2, 3, 4, 5, 6, 7};
  return __builtin_ia32_maskloadps256((const kk_vf *)p, lane < (int)n);
#else
  kk_vf v = {0};
  switch (n) {
    case 3: v[2] = p[2]; /* fall through */
    case 2: v[1] = p[1]; /* fall through */
    default: v[0] = p[0];
  }
  return v;
#endif
}

/* Lanes [0, n) of v to p, for 0 < n < KK_VW; nothing past p[n - 1] is written. */
static inline void kk_store_first(float *p, kk_vf v, size_t n) {
#if KK_VW == 16
  __builtin_ia32_storeups512_mask(p, v, (unsigned short)((1u << n) - 1));
#elif KK_VW == 8
  typedef int kk_vi __attribute__((vector_size(8 * sizeof(int))));
  kk_vi lane = {0, 1, 2, 3, 4, 5, 6, 7};
  __builtin_ia32_maskstoreps256((kk_vf *)p, lane < (int)n, v);
#else
  switch (n) {
    case 3: p[2] = v[2]; /* fall through */
    case 2: p[1] = v[1]; /* fall through */
    default: p[0] = v[0];
  }
#endif
}

/* p[0], p[2], ..., p[2 * (KK_VW - 1)]: reads p[0 .. 2 * KK_VW - 1]. */
static inline kk_vf kk_load_even(const float *p) {
  kk_vf lo = kk_load(p), hi = kk_load(p + KK_VW);
#if KK_VW == 16
  return __builtin_shufflevector(lo, hi, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
#elif KK_VW == 8
  return __builtin_shufflevector(lo, hi, 0, 2, 4, 6, 8, 10, 12, 14);
#else
  return __builtin_shufflevector(lo, hi, 0, 2, 4, 6);
#endif
}

/* The artifact runtime's thread pool (runtime.c): how many threads kiln_run may use, and task(context, t)
   for every t < tasks spread over them (run here, in order, when there is one thread). */
int kiln_rt_threads(void);
void kiln_rt_parallel(size_t tasks, void (*task)(void *, size_t), void *context);

/* Profiling (kiln_profile): the generated code calls this after each node; it returns at once unless a
   profile is being taken on this thread. */
void kiln_rt_mark(int node);

/* Products below this many multiply-adds run on one thread: handing them out costs more than it saves. */
#ifndef KK_PARALLEL_MACS
#define KK_PARALLEL_MACS ((size_t)1 << 20)
#endif

/* Generated elementwise loops of fewer elements than this run on one thread. */
#ifndef KK_PARALLEL_ELEMENTS
#define KK_PARALLEL_ELEMENTS ((size_t)1 << 15)
#endif

/* range(context, first, last) over [0, count) in chunks, KK_TASKS_PER_THREAD per thread (a worker that wakes
   late takes a share, not half), when `work` (multiply-adds, say) reaches `min_work`; else in one call here. */
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

/* Tasks per thread a range is cut into: a worker that wakes late still takes a share, not half, while each
   task's two atomic steps on the pool's shared counters (a cache line passed between the cores) stay few.
   MobileNetV2 at 2 threads on the Zen 5, alternating against 4 per thread (benchmarks/ab-kernels.sh, 11
   rounds): 1.83 against 1.92 ms; SqueezeNet, ResNet-50 and BERT unchanged; 1 per thread no better than 2. */
#ifndef KK_TASKS_PER_THREAD
#define KK_TASKS_PER_THREAD 2
#endif
static inline void kk_parallel_range(size_t count, size_t work, size_t min_work, void (*range)(void *, size_t, size_t),
                                     void *context) {
  size_t threads = (size_t)kiln_rt_threads();
  if (threads > 1 && count >= 2 && work >= min_work) {
    size_t chunks = KK_TASKS_PER_THREAD * threads < count ? KK_TASKS_PER_THREAD * threads : count;
    kk_range_job job = {range, context, count, (count + chunks - 1) / chunks};
    kiln_rt_parallel((count + job.per_task - 1) / job.per_task, kk_range_task, &job);
  } else if (count > 0) {
    range(context, 0, count);
  }
}

/* exp and erf for float, branch-free so that loops calling them vectorise (the C library's are calls). */

/* The polynomials of exp and erf below, in Horner form, for a float or a vector argument alike: e^r to r^7;
   erf's Taylor series in s = x^2 (to x^15: the first coefficient is (-1)^7 2/sqrt(pi) / (7! 15)); and the
   Abramowitz & Stegun 7.1.26 polynomial in t. */
#define KK_EXP_POLY(r)                                                                                          \
  ((((((((1.98412698e-4f * (r) + 1.38888889e-3f) * (r) + 8.33333333e-3f) * (r) + 4.16666667e-2f) * (r) +       \
       1.66666667e-1f) * (r) + 0.5f) * (r) + 1.0f) * (r) + 1.0f))
#define KK_ERF_SERIES(s)                                                                                        \
  ((((((((-1.49256504e-5f * (s) + 1.20553330e-4f) * (s) + -8.54832702e-4f) * (s) + 5.22397763e-3f) * (s) +     \
       -2.68661706e-2f) * (s) + 1.12837917e-1f) * (s) + -3.76126389e-1f) * (s) + 1.12837917f))
#define KK_ERF_TAIL(t)                                                                                          \
  ((((1.061405429f * (t) + -1.453152027f) * (t) + 1.421413741f) * (t) + -0.284496736f) * (t) + 0.254829592f)

/* 2^n for integral n in [-126, 127]. */
static inline float kk_pow2i(float n) {
  int32_t bits = ((int32_t)n + 127) << 23;
  float result;
  memcpy(&result, &bits, sizeof result);
  return result;
}

/* exp(x) = 2^n e^r with n = round(x / ln 2) and |r| <= ln(2)/2 (ln 2 split in two so r is exact), e^r by
   its Taylor polynomial to r^7 (truncation below 1e-9): within 2 ulp of the correctly rounded value. */
static inline float kk_expf(float x) {
  float c = x < -103.0f ? -103.0f : (x > 89.0f ? 89.0f : x);
  float n = (c * 1.44269504f + 12582912.0f) - 12582912.0f; /* round to nearest via the 1.5 * 2^23 shift */
  float r = (c - n * 0.693359375f) - n * -2.12194440e-4f;
  float p = KK_EXP_POLY(r);
  /* 2^n in two factors so subnormal results and results near FLT_MAX both come out right. */
  float half = (float)((int32_t)n / 2);
  float result = p * kk_pow2i(half) * kk_pow2i(n - half);
  result = x > 88.7228394f ? INFINITY : (x < -103.0f ? 0.0f : result);
  return x != x ? x : result;
}

/* erf: x times its Taylor series in x^2 below 0.5 (terms to x^15: relative error below 1e-9), else
   Abramowitz & Stegun 7.1.26, 1 - t (a1 + t (a2 + ...)) e^(-x^2) with t = 1 / (1 + 0.3275911 |x|)
   (absolute error below 1.5e-7 where erf is at least 0.52: relative error at most 5.4e-7). */
static inline float kk_erff(float x) {
  float a = x < 0 ? -x : x, s = x * x;
  float series = KK_ERF_SERIES(s);
  float t = 1.0f / (1.0f + 0.3275911f * a);
  float poly = KK_ERF_TAIL(t);
  float tail = 1.0f - poly * t * kk_expf(-s);
  tail = x < 0 ? -tail : tail;
  return a < 0.5f ? x * series : (x != x ? x : tail);
}

/* The same exp, erf and GELU a vector at a time: lane for lane the scalar functions' operations in the same
   order (the same results), written on vectors because clang leaves a loop calling kk_erff or kk_gelu
   scalar, and vectorises kk_expf's clamps and selects into a slow sequence. */
typedef int32_t kk_vi __attribute__((vector_size(KK_VW * sizeof(int32_t))));

/* Lanes of `yes` where `mask` (a comparison's all-ones or zero lanes) is set, else of `no`. */
static inline kk_vf kk_select(kk_vi mask, kk_vf yes, kk_vf no) {
  return (kk_vf)(((kk_vi)yes & mask) | ((kk_vi)no & ~mask));
}

/* The largest lane (max != 0) or the sum of the lanes, in halving steps (four with AVX-512) instead of a
   chain of one scalar step per lane. The maximum ignores NaN lanes, as __builtin_elementwise_max does. */
#define KK_COMBINE(a, b) (max ? __builtin_elementwise_max(a, b) : (a) + (b))
static inline __attribute__((always_inline)) float kk_reduce(kk_vf v, int max) {
#if KK_VW == 16
  typedef float half_t __attribute__((vector_size(8 * sizeof(float))));
  half_t h = KK_COMBINE(__builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7),
                        __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15));
#elif KK_VW == 8
  typedef float half_t __attribute__((vector_size(8 * sizeof(float))));
  half_t h = v;
#endif
#if KK_VW >= 8
  typedef float quarter_t __attribute__((vector_size(4 * sizeof(float))));
  quarter_t q = KK_COMBINE(__builtin_shufflevector(h, h, 0, 1, 2, 3), __builtin_shufflevector(h, h, 4, 5, 6, 7));
#else
  kk_vf q = v;
#endif
  q = KK_COMBINE(q, __builtin_shufflevector(q, q, 2, 3, 0, 1));
  q = KK_COMBINE(q, __builtin_shufflevector(q, q, 1, 0, 3, 2));
  return q[0];
}
#undef KK_COMBINE
static inline float kk_reduce_max(kk_vf v) { return kk_reduce(v, 1); }
static inline float kk_reduce_add(kk_vf v) { return kk_reduce(v, 0); }

/* The clamp is at -87 rather than kk_expf's -103, so that no lane's product passes through a subnormal
   (each costs a microcode assist: a softmax row with masked positions at -10000 ran 1.5 to 2 times
   slower); the rare lanes in [-103, -87), whose results are subnormal, are done by kk_expf afterwards. */
static inline kk_vf kk_expv(kk_vf x) {
  kk_vf c = __builtin_elementwise_min(__builtin_elementwise_max(x, kk_splat(-87.0f)), kk_splat(89.0f));
  kk_vf n = (c * 1.44269504f + 12582912.0f) - 12582912.0f;
  kk_vf r = (c - n * 0.693359375f) - n * -2.12194440e-4f;
  kk_vf p = KK_EXP_POLY(r);
  kk_vi whole = __builtin_convertvector(n, kk_vi), half = whole / 2;
  kk_vf result = p * (kk_vf)((half + 127) << 23) * (kk_vf)((whole - half + 127) << 23);
  result = kk_select(x > 88.7228394f, kk_splat(INFINITY), result);
  result = kk_select(x < -87.0f, kk_splat(0.0f), result);
  kk_vi subnormal = (x < -87.0f) & (x >= -103.0f);
  if (__builtin_reduce_or(subnormal))
    for (int i = 0; i < KK_VW; i++)
      if (subnormal[i]) result[i] = kk_expf(x[i]);
  return kk_select(x != x, x, result);
}

static inline kk_vf kk_erfv(kk_vf x) {
  kk_vf a = __builtin_elementwise_abs(x), s = x * x;
  kk_vf series = KK_ERF_SERIES(s);
  kk_vf t = 1.0f / (1.0f + 0.3275911f * a);
  kk_vf poly = KK_ERF_TAIL(t);
  kk_vf tail = 1.0f - poly * t * kk_expv(-s);
  tail = kk_select(x < 0, -tail, tail);
  return kk_select(a < 0.5f, x * series, kk_select(x != x, x, tail));
}

static inline kk_vf kk_geluv(kk_vf x) { return 0.5f * x * (1.0f + kk_erfv(x * 0.707106781186547524f)); }

/* out[k] = exp(in[k] - max) for a row of len > 0 values (max: the row's largest, also returned in *max);
   returns their sum. Softmax and attention rows: the maximum a vector at a time (a scalar chain of
   compare-and-select steps was half a softmax's time), exp and the sum a vector at a time, both reductions
   in halving steps. 256 rows of 128 (Zen 5, one thread): 0.024 ms with scalar steps, 0.0127 ms now. A NaN
   anywhere gives a NaN sum, so an all-NaN softmax row. in may be out. */
static inline float kk_exp_row(const float *in, float *out, size_t len, float *max_out) {
  float max = in[0];
  size_t k = 0;
  if (len >= KK_VW) {
    kk_vf lanes = kk_load(in);
    for (k = KK_VW; k + KK_VW <= len; k += KK_VW) lanes = __builtin_elementwise_max(lanes, kk_load(in + k));
    max = kk_reduce_max(lanes);
  }
  for (; k < len; k++) max = in[k] > max ? in[k] : max;
  kk_vf shift = kk_splat(max), lanes = {0};
  for (k = 0; k + KK_VW <= len; k += KK_VW) {
    kk_vf e = kk_expv(kk_load(in + k) - shift);
    kk_store(out + k, e);
    lanes += e;
  }
  float sum = 0;
  for (; k < len; k++) sum += out[k] = kk_expf(in[k] - max);
  *max_out = max;
  return sum + kk_reduce_add(lanes);
}

/* row[k] *= scale for k < len. */
static inline void kk_scale_row(float *row, size_t len, float scale) {
  size_t k = 0;
  for (; k + KK_VW <= len; k += KK_VW) kk_store(row + k, kk_load(row + k) * scale);
  for (; k < len; k++) row[k] *= scale;
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

/* GELU in its exact (erf) form, 0.5 x (1 + erf(x / √2)): ONNX's Gelu and the five-node pattern models export. */
static inline float kk_gelu(float x) { return 0.5f * x * (1.0f + kk_erff(x * 0.707106781186547524f)); }

/* SiLU (swish), x sigmoid(x): YOLO-style detectors' activation after every convolution. */
static inline float kk_silu(float x) { return x / (1.0f + kk_expf(-x)); }
static inline kk_vf kk_siluv(kk_vf x) { return x / (1.0f + kk_expv(-x)); }

/* The activations an epilogue applies that are more than a clamp: `special` 1 is GELU, 2 SiLU. */
#define KK_SPECIAL_GELU 1
#define KK_SPECIAL_SILU 2
static inline float kk_special(int special, float x) { return special == KK_SPECIAL_GELU ? kk_gelu(x) : kk_silu(x); }
/* Out of line: inlined into every store of every micro-kernel, GELU (as a call per lane, then) tripled
   conv_nhwc.c's compile time (4.3 s against 1.4 s at -O3). */
static __attribute__((noinline, unused)) kk_vf kk_special_vector(int special, kk_vf v) {
  return special == KK_SPECIAL_GELU ? kk_geluv(v) : kk_siluv(v);
}

/* What a product's consumer would otherwise do in another pass over memory, done as each tile of C is
   stored: c = clamp(special?(c + bias[row] + column_bias[column] + residual[row * ld_residual + column])).
   NULL bias, column_bias or residual means none; `clamp` 0 means no min/max, `special` 0 neither GELU nor
   SiLU (KK_SPECIAL_GELU, KK_SPECIAL_SILU). */
typedef struct {
  const float *bias, *residual;
  size_t ld_residual;
  int clamp;
  float lo, hi;
  const float *column_bias; /* a MatMul's bias (Passes/FuseMatMulEpilogue.swift) */
  int special;
} kk_epilogue;
/* The epilogue on one row of n values that is row `row` of its product (no row bias; column_bias points at
   this row's first column). */
static inline void kk_epilogue_apply(const kk_epilogue *ep, float *c, size_t row, size_t n) {
  if (ep->column_bias)
    for (size_t j = 0; j < n; j++) c[j] += ep->column_bias[j];
  if (ep->residual) {
    const float *r = ep->residual + row * ep->ld_residual;
    for (size_t j = 0; j < n; j++) c[j] += r[j];
  }
  if (ep->special)
    for (size_t j = 0; j < n; j++) c[j] = kk_special(ep->special, c[j]);
  if (ep->clamp) {
    float lo = ep->lo, hi = ep->hi;
    /* The vector stores' min/max, so a tile's tail columns treat a NaN as its full vectors do. */
    for (size_t j = 0; j < n; j++) c[j] = __builtin_elementwise_min(__builtin_elementwise_max(c[j], lo), hi);
  }
}
/* MatMul's `count` batches: C + t * m * n = (A + offsets_a[t]) (B + offsets_b[t]), each m x k times k x n. */
void KK(sgemm_batched)(size_t count, size_t m, size_t n, size_t k, const float *a, const size_t *offsets_a,
                       const float *b, const size_t *offsets_b, float *c);
/* Fused attention, softmax(scale · q kt + mask) v, over `batches` products (gemm.c). Offsets are in floats,
   per batch; the mask (optional) is read at offsets_mask[b] + row * mask_row_stride + column *
   mask_column_stride (strides 0 where it broadcasts). `scores` has room for batches * lq * lk floats. */
typedef struct {
  size_t batches, lq, lk, d, dv;
  float scale;
  const size_t *offsets_q, *offsets_kt, *offsets_v, *offsets_mask;
  size_t mask_row_stride, mask_column_stride;
} kk_attention_params;
void KK(attention_f32)(const kk_attention_params *p, const float *q, const float *kt, const float *v, const float *mask,
                       float *out, float *scores);
/* C = A B then the epilogue, row-major, no transposes, alpha 1: C's old contents are never read. */
void KK(sgemm_fused)(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *b, size_t ldb, float *c,
                     size_t ldc, const kk_epilogue *epilogue);

/* The same on one thread, for a block of columns that starts at column `column0` of a whole product whose
   epilogue this is (c points at the block; the residual is indexed like the whole product). */
void KK(sgemm_fused_block)(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *b, size_t ldb,
                           float *c, size_t ldc, const kk_epilogue *epilogue, size_t column0);

/* N-d convolution (1 to 3 spatial dims), NCHW-style layout, via im2col + GEMM.
   `scratch` holds (C/group * prod(kernel)) * prod(out spatial) floats. `residual` (NULL: none, else shaped
   like y) is added and [lo, hi] applied (when `clamp`) as the output is stored: Kiln's fused Conv. */
typedef struct {
  size_t batch, in_channels, out_channels, group, spatial;
  size_t in[3], out[3], kernel[3], stride[3], dilation[3], pad_begin[3];
  const float *residual;
  int clamp;
  float lo, hi;
  int special; /* KK_SPECIAL_SILU after the residual, before the clamp */
} kk_conv_params;
void KK(conv_f32)(const kk_conv_params *p, const float *x, const float *w, const float *bias, float *y, float *scratch);
/* Transposed convolution: scatter form. */
void KK(conv_transpose_f32)(const kk_conv_params *p, const float *x, const float *w, const float *bias, float *y);

/* 2-D convolution on NHWC activations (conv_nhwc.c), weights packed by Passes/ChannelsLast.swift:
   group 1 as [ceil(out_c / 32)][2][kernel_h][kernel_w][in_c][16] (a panel of 32 channels as two sub-panels of
   16, zero past out_c), depthwise as
   [kernel_h][kernel_w][channels]. `residual` (NHWC like y) is added and the clamp applied as y is stored.
   The group-1 kernel needs scratch for kernel_w * in_c floats (the padding's zeros). */
#define KK_NHWC_PANEL 32
#define KK_NHWC_SUB 16
#define KK_NHWC_MAX_TAPS 256
typedef struct {
  size_t batch, in_h, in_w, in_c, out_h, out_w, out_c;
  size_t kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w, pad_top, pad_left;
  const float *residual;
  int clamp;
  float lo, hi;
  int special; /* KK_SPECIAL_GELU (kiln::FusedMatMul) or _SILU after the residual, before the clamp */
} kk_conv_nhwc_params;
void KK(conv_nhwc_f32)(const kk_conv_nhwc_params *p, const float *x, const float *w, const float *bias, float *y,
                       float *scratch);
void KK(depthwise_nhwc_f32)(const kk_conv_nhwc_params *p, const float *x, const float *w, const float *bias,
                            float *y);
/* A 1x1 convolution e (weights as conv_nhwc_f32's, no residual) into the depthwise convolution d, whose input
   is e's output (e->out_c channels), without that tensor: it is made `band` output rows at a time into one of
   `chunks` scratch slots of `slot` floats each (at least ((band - 1) * stride_h + reach) * in_w * out_c of e).
   With pj (else NULL), the 1x1 convolution pj (stride 1, weights wp, bias bp, its own residual and clamp) of
   d's output too, which then goes a band at a time through `chunks` more slots of `mid` floats (band * out_w *
   out_c of d) after the first ones; y is then pj's output. */
void KK(expand_depthwise_nhwc_f32)(const kk_conv_nhwc_params *e, const float *we, const float *be,
                                   const kk_conv_nhwc_params *d, const float *wd, const float *bd,
                                   const kk_conv_nhwc_params *pj, const float *wp, const float *bp, const float *x,
                                   float *y, float *scratch, size_t band, size_t chunks, size_t slot, size_t mid);
/* 3x3, stride 1, group 1 by Winograd F(2x2, 3x3): u = G g Gᵀ packed as [16][panel][2][in_c][16]. Scratch: 16 *
   tiles rounded up to 12 * (in_c + 32 * panels) + in_c floats, tiles = batch * ceil(out_h / 2) * ceil(out_w / 2). */
void KK(conv_winograd_nhwc_f32)(const kk_conv_nhwc_params *p, const float *x, const float *u, const float *bias,
                                float *y, float *scratch);

/* N-d pooling. kind: 0 max, 1 average, 2 Lp (p in `p_norm`). */
typedef struct {
  size_t batch, channels, spatial;
  size_t in[3], out[3], kernel[3], stride[3], dilation[3], pad_begin[3], pad_end[3];
  int kind, count_include_pad, p_norm;
  int storage_order; /* MaxPool indices: 0 row-major, 1 column-major */
} kk_pool_params;
void KK(pool_f32)(const kk_pool_params *p, const float *x, float *y, int64_t *indices);
/* 2-D max (kind 0) or average (kind 1) pooling of NHWC activations: `in`, `out`, `kernel`, ... are the
   two spatial dims (H, W) and `channels` the last one. */
void KK(pool_nhwc_f32)(const kk_pool_params *p, const float *x, float *y);
/* y[n][c] = mean over the pixels of x[n][pixel][c], summed in double like the NCHW GlobalAveragePool. */
void KK(global_average_pool_nhwc_f32)(const float *x, size_t batch, size_t pixels, size_t channels, float *y);

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
