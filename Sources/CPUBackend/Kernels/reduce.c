/* Reductions, arg-reductions and the softmax family. */

#include "kiln_kernels.h"

/* Splits dims into kept and reduced axes with their strides in x. */
typedef struct {
  size_t kept_rank, reduced_rank, kept_count, reduced_count;
  size_t kept_dims[KK_MAX_RANK], kept_strides[KK_MAX_RANK], reduced_dims[KK_MAX_RANK],
      reduced_strides[KK_MAX_RANK];
} reduce_plan;

static reduce_plan plan_reduce(size_t rank, const size_t *dims, const uint8_t *reduce) {
  reduce_plan p = {0};
  p.kept_count = p.reduced_count = 1;
  size_t stride = 1, strides[KK_MAX_RANK];
  for (size_t d = rank; d-- > 0;) {
    strides[d] = stride;
    stride *= dims[d];
  }
  for (size_t d = 0; d < rank; d++) {
    if (reduce[d]) {
      p.reduced_dims[p.reduced_rank] = dims[d];
      p.reduced_strides[p.reduced_rank++] = strides[d];
      p.reduced_count *= dims[d];
    } else {
      p.kept_dims[p.kept_rank] = dims[d];
      p.kept_strides[p.kept_rank++] = strides[d];
      p.kept_count *= dims[d];
    }
  }
  return p;
}

/* The offset of the i-th cell of a box with the given dims and strides. */
static size_t box_offset(size_t i, size_t rank, const size_t *dims, const size_t *strides) {
  size_t offset = 0;
  for (size_t d = rank; d-- > 0;) {
    offset += (i % dims[d]) * strides[d];
    i /= dims[d];
  }
  return offset;
}

#define DEFINE_REDUCE(NAME, T, ACC, IS_FLOAT)                                                                   \
  void KK(NAME)(int op, const T *x, size_t rank, const size_t *dims, const uint8_t *reduce, T *y) {           \
    reduce_plan p = plan_reduce(rank, dims, reduce);                                                          \
    for (size_t o = 0; o < p.kept_count; o++) {                                                               \
      const T *base = x + box_offset(o, p.kept_rank, p.kept_dims, p.kept_strides);                            \
      ACC acc = 0, extreme = 0;                                                                               \
      if (op == 8 && p.reduced_count > 0) { /* log-sum-exp: subtract the max first */                       \
        extreme = (ACC)base[box_offset(0, p.reduced_rank, p.reduced_dims, p.reduced_strides)];                \
        for (size_t r = 1; r < p.reduced_count; r++) {                                                        \
          ACC v = (ACC)base[box_offset(r, p.reduced_rank, p.reduced_dims, p.reduced_strides)];                \
          if (v > extreme) extreme = v;                                                                       \
        }                                                                                                     \
      }                                                                                                       \
      if (op == 4) acc = 1;                                                                                   \
      for (size_t r = 0; r < p.reduced_count; r++) {                                                          \
        ACC v = (ACC)base[box_offset(r, p.reduced_rank, p.reduced_dims, p.reduced_strides)];                  \
        switch (op) {                                                                                         \
          case 2: acc = (r == 0 || v > acc) ? v : acc; break;                                                 \
          case 3: acc = (r == 0 || v < acc) ? v : acc; break;                                                 \
          case 4: acc *= v; break;                                                                            \
          case 5: acc += v < 0 ? -v : v; break;                                                               \
          case 6: case 9: acc += v * v; break;                                                                \
          case 8: acc += IS_FLOAT ? (ACC)exp((double)(v - extreme)) : 0; break;                               \
          default: acc += v; break;                                                                           \
        }                                                                                                     \
      }                                                                                                       \
      if (p.reduced_count == 0 && (op == 2 || op == 3)) {                                                     \
        /* Max/min over nothing: ONNX defines the identity as -inf/+inf for floats. */                       \
        acc = IS_FLOAT ? (ACC)(op == 2 ? -INFINITY : INFINITY) : 0;                                           \
      }                                                                                                       \
      switch (op) {                                                                                           \
        case 1: acc = p.reduced_count ? acc / (ACC)p.reduced_count : acc; break;                              \
        case 6: acc = (ACC)sqrt((double)acc); break;                                                          \
        case 7: acc = (ACC)log((double)acc); break;                                                           \
        case 8: acc = p.reduced_count ? (ACC)log((double)acc) + extreme : (ACC)-INFINITY; break;              \
        default: break;                                                                                       \
      }                                                                                                       \
      y[o] = (T)acc;                                                                                          \
    }                                                                                                         \
  }

DEFINE_REDUCE(reduce_f32, float, double, 1)
DEFINE_REDUCE(reduce_f64, double, double, 1)
DEFINE_REDUCE(reduce_i64, int64_t, int64_t, 0)
DEFINE_REDUCE(reduce_i32, int32_t, int64_t, 0)

void KK(arg_reduce_f32)(int is_max, int select_last, const float *x, size_t outer, size_t axis_len, size_t inner,
                        int64_t *y) {
  for (size_t o = 0; o < outer; o++)
    for (size_t i = 0; i < inner; i++) {
      const float *line = x + o * axis_len * inner + i;
      size_t best = 0;
      for (size_t k = 1; k < axis_len; k++) {
        float v = line[k * inner], b = line[best * inner];
        int better = is_max ? (select_last ? v >= b : v > b) : (select_last ? v <= b : v < b);
        if (better) best = k;
      }
      y[o * inner + i] = (int64_t)best;
    }
}

#define DEFINE_SOFTMAX(NAME, T)                                                                                   \
  void KK(NAME)(int kind, const T *x, size_t outer, size_t len, size_t inner, T *y) {                          \
    for (size_t o = 0; o < outer; o++)                                                                          \
      for (size_t i = 0; i < inner; i++) {                                                                      \
        const T *in = x + o * len * inner + i;                                                                  \
        T *out = y + o * len * inner + i;                                                                       \
        if (len == 0) continue;                                                                                 \
        size_t best = 0;                                                                                        \
        for (size_t k = 1; k < len; k++)                                                                        \
          if (in[k * inner] > in[best * inner]) best = k;                                                       \
        if (kind == 2) {                                                                                        \
          for (size_t k = 0; k < len; k++) out[k * inner] = k == best ? (T)1 : (T)0;                            \
          continue;                                                                                             \
        }                                                                                                       \
        double max = in[best * inner], sum = 0;                                                                 \
        for (size_t k = 0; k < len; k++) sum += exp((double)in[k * inner] - max);                               \
        for (size_t k = 0; k < len; k++) {                                                                      \
          double shifted = (double)in[k * inner] - max;                                                         \
          out[k * inner] = kind == 0 ? (T)(exp(shifted) / sum) : (T)(shifted - log(sum));                       \
        }                                                                                                       \
      }                                                                                                         \
  }

DEFINE_SOFTMAX(softmax_generic_f32, float)
DEFINE_SOFTMAX(softmax_f64, double)

/* Softmax and log-softmax of float rows (the last axis), a vector at a time. Rows spread over the runtime's
   threads. */
typedef struct {
  int kind;
  const float *x;
  size_t len;
  float *y;
} kk_softmax_job;

static void softmax_rows(void *context, size_t first, size_t last) {
  const kk_softmax_job *job = context;
  size_t len = job->len;
  for (size_t row = first; row < last; row++) {
    const float *in = job->x + row * len;
    float *out = job->y + row * len;
    float max;
    float sum = kk_exp_row(in, out, len, &max);
    if (job->kind == 0) {
      kk_scale_row(out, len, 1.0f / sum);
    } else {
      float log_sum = log(sum);
      for (size_t k = 0; k < len; k++) out[k] = (in[k] - max) - log_sum;
    }
  }
}

void KK(softmax_f32)(int kind, const float *x, size_t outer, size_t len, size_t inner, float *y) {
  if (kind == 2 || inner != 1 || len == 0) {
    KK(softmax_generic_f32)(kind, x, outer, len, inner, y);
    return;
  }
  kk_softmax_job job = {kind, x, len, y};
  kk_parallel_range(outer, outer * len, (size_t)1 << 15, softmax_rows, &job);
}
