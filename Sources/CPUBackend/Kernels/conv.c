/* Convolution as im2col + GEMM for 1 to 3 spatial dims, with groups,
   strides, dilations and asymmetric padding (pad_end is implied by `out`). */

#include "kiln_kernels.h"

#ifndef KK_DEPTHWISE_VECTOR
#define KK_DEPTHWISE_VECTOR 1 /* 0: every depthwise row a tap at a time (for A/B timing) */
#endif
#ifndef KK_CONV_BLOCK_FLOATS
#define KK_CONV_BLOCK_FLOATS 49152 /* the column matrix block im2col + GEMM works on: 192 KiB */
#endif

static size_t product(const size_t *values, size_t count) {
  size_t result = 1;
  for (size_t i = 0; i < count; i++) result *= values[i];
  return result;
}

/* The range of output columns [lo, hi) whose input column o * stride + offset lies in [0, width). */
static void valid_range(ptrdiff_t offset, size_t stride, size_t width, size_t out, size_t *lo, size_t *hi) {
  ptrdiff_t first = offset >= 0 ? 0 : (-offset + (ptrdiff_t)stride - 1) / (ptrdiff_t)stride;
  ptrdiff_t last = (ptrdiff_t)width - 1 - offset; /* o * stride <= last */
  ptrdiff_t end = last < 0 ? 0 : last / (ptrdiff_t)stride + 1;
  *lo = (size_t)first;
  *hi = end > (ptrdiff_t)out ? out : (size_t)end;
  if (*hi < *lo) *hi = *lo;
}

/* Columns [col0, col1) of the column matrix [channels * prod(kernel), prod(out)] of one image and group
   (`channels` of them), stored with row stride col1 - col0. Each output row's in-bounds span is one copy:
   no test per element. */
static void im2col_block(const kk_conv_params *p, const float *x, size_t channels, size_t col0, size_t col1,
                         float *columns) {
  size_t s = p->spatial;
  size_t in3[3], out3[3], k3[3], st3[3], d3[3], pb3[3];
  kk_align3(s, p->in, 1, in3);
  kk_align3(s, p->out, 1, out3);
  kk_align3(s, p->kernel, 1, k3);
  kk_align3(s, p->stride, 1, st3);
  kk_align3(s, p->dilation, 1, d3);
  kk_align3(s, p->pad_begin, 0, pb3);
  size_t in_size = in3[0] * in3[1] * in3[2], width = col1 - col0, row = 0;
  size_t line0 = col0 / out3[2], line1 = (col1 + out3[2] - 1) / out3[2]; /* output lines (a, b) touched */
  for (size_t c = 0; c < channels; c++) {
    const float *plane = x + c * in_size;
    for (size_t ka = 0; ka < k3[0]; ka++)
      for (size_t kb = 0; kb < k3[1]; kb++)
        for (size_t kc = 0; kc < k3[2]; kc++, row++) {
          ptrdiff_t offset = (ptrdiff_t)(kc * d3[2]) - (ptrdiff_t)pb3[2];
          size_t lo, hi, stride = st3[2];
          valid_range(offset, stride, in3[2], out3[2], &lo, &hi);
          for (size_t index = line0; index < line1; index++) {
            size_t oa = index / out3[1], ob = index % out3[1];
            /* This line's columns inside the block, as positions along the line. */
            size_t first = index * out3[2] < col0 ? col0 - index * out3[2] : 0;
            size_t last = (index + 1) * out3[2] > col1 ? col1 - index * out3[2] : out3[2];
            float *line = columns + row * width + (index * out3[2] - col0);
            ptrdiff_t ia = (ptrdiff_t)(oa * st3[0] + ka * d3[0]) - (ptrdiff_t)pb3[0];
            ptrdiff_t ib = (ptrdiff_t)(ob * st3[1] + kb * d3[1]) - (ptrdiff_t)pb3[1];
            if (ia < 0 || ia >= (ptrdiff_t)in3[0] || ib < 0 || ib >= (ptrdiff_t)in3[1]) {
              for (size_t oc = first; oc < last; oc++) line[oc] = 0.0f;
              continue;
            }
            const float *src = plane + ((size_t)ia * in3[1] + (size_t)ib) * in3[2];
            size_t from = lo > first ? lo : first, to = hi < last ? hi : last;
            if (to < from) to = from;
            for (size_t oc = first; oc < from; oc++) line[oc] = 0.0f;
            if (stride == 1)
              memcpy(line + from, src + (ptrdiff_t)from + offset, (to - from) * sizeof(float));
            else
              for (size_t oc = from; oc < to; oc++) line[oc] = src[(ptrdiff_t)(oc * stride) + offset];
            for (size_t oc = to; oc < last; oc++) line[oc] = 0.0f;
          }
        }
  }
}

/* Convolution as im2col + GEMM, a block of output columns at a time: each block's column matrix is
   sized to stay in L2 while the GEMM reads it, instead of the whole matrix going out to memory and back.
   Task t owns scratch slot t and takes blocks t, t + tasks, ...; tasks spread over the runtime's threads. */
typedef struct {
  const kk_conv_params *p;
  const float *image, *weights;
  float *result, *scratch;
  size_t channels, rows, depth, out_size, width, blocks, tasks;
  kk_epilogue ep;
} kk_conv_job;

static void conv_blocks(void *context, size_t t) {
  const kk_conv_job *job = context;
  float *columns = job->scratch + t * job->depth * job->width;
  for (size_t block = t; block < job->blocks; block += job->tasks) {
    size_t col0 = block * job->width;
    size_t col1 = col0 + job->width < job->out_size ? col0 + job->width : job->out_size;
    im2col_block(job->p, job->image, job->channels, col0, col1, columns);
    KK(sgemm_fused_block)(job->rows, col1 - col0, job->depth, job->weights, job->depth, columns, col1 - col0,
                          job->result + col0, job->out_size, &job->ep, col0);
  }
}

/* A 1x1 convolution with stride 1 and no padding: the image already is its column matrix. */
static int pointwise(const kk_conv_params *p) {
  for (size_t i = 0; i < p->spatial; i++)
    if (p->kernel[i] != 1 || p->stride[i] != 1 || p->pad_begin[i] != 0 || p->out[i] != p->in[i]) return 0;
  return 1;
}

/* Depthwise 2-D convolution (one filter per channel), direct: im2col + GEMM would multiply one row of
   weights at a time. Each output row is computed by one of two routines below, then the epilogue. */
typedef struct {
  const float *plane, *filter;
  size_t height, width, kernel_h, kernel_w, stride_w, dilation_h, dilation_w, out_w;
  ptrdiff_t pad_w;
  float bias;
} kk_dw_row;

/* Any stride and dilation: the row starts at the bias, then one axpy along it per kernel position. */
static void depthwise_row_taps(const kk_dw_row *r, ptrdiff_t ih0, float *row) {
  for (size_t ow = 0; ow < r->out_w; ow++) row[ow] = r->bias;
  for (size_t kh = 0; kh < r->kernel_h; kh++) {
    ptrdiff_t ih = ih0 + (ptrdiff_t)(kh * r->dilation_h);
    if (ih < 0 || ih >= (ptrdiff_t)r->height) continue;
    const float *line = r->plane + (size_t)ih * r->width;
    for (size_t kw = 0; kw < r->kernel_w; kw++) {
      float weight = r->filter[kh * r->kernel_w + kw];
      ptrdiff_t offset = (ptrdiff_t)(kw * r->dilation_w) - r->pad_w;
      size_t lo, hi;
      valid_range(offset, r->stride_w, r->width, r->out_w, &lo, &hi);
      if (r->stride_w == 1) {
        for (size_t ow = lo; ow < hi; ow++) row[ow] += weight * line[(ptrdiff_t)ow + offset];
      } else {
        for (size_t ow = lo; ow < hi; ow++) row[ow] += weight * line[(ptrdiff_t)(ow * r->stride_w) + offset];
      }
    }
  }
}

/* N * KK_VW outputs from ow of a depthwise row: the window over `rows` input lines, summed in N registers
   (N independent chains of multiply-adds: one chain would wait on each one's latency). */
#define KK_DW_BODY(N)                                                                                          \
  do {                                                                                                         \
    kk_vf acc[N];                                                                                              \
    for (int v = 0; v < N; v++) acc[v] = kk_splat(bias);                                                       \
    for (size_t l = 0; l < rows; l++) {                                                                        \
      const float *at = lines[l] + (ptrdiff_t)(ow * s) - pad;                                                  \
      for (size_t kw = 0; kw < kw_count; kw++) {                                                               \
        kk_vf weight = kk_splat(taps[l][kw]);                                                                  \
        for (int v = 0; v < N; v++)                                                                            \
          acc[v] += weight * (s == 1 ? kk_load(at + kw + v * KK_VW) : kk_load_even(at + kw + 2 * v * KK_VW)); \
      }                                                                                                        \
    }                                                                                                          \
    for (int v = 0; v < N; v++) kk_store(row + ow + v * KK_VW, acc[v]);                                         \
  } while (0)

static inline __attribute__((always_inline)) void depthwise_vectors(const float *const *lines,
                                                                     const float *const *taps, size_t rows,
                                                                     size_t kw_count, size_t s, size_t out_w,
                                                                     float bias, float *row) {
  const ptrdiff_t pad = 0; /* the lines are padded copies */
  size_t ow = 0;
  if (out_w >= 4 * KK_VW) {
    /* A block that would run past the row moves back to its end, overlapping its neighbour (it stores
       sums, not increments), so every block keeps four chains. */
    for (; ow < out_w; ow += 4 * KK_VW) {
      if (ow + 4 * KK_VW > out_w) ow = out_w - 4 * KK_VW;
      KK_DW_BODY(4);
    }
  } else if (out_w >= KK_VW) {
    for (; ow < out_w; ow += KK_VW) {
      if (ow + KK_VW > out_w) ow = out_w - KK_VW;
      KK_DW_BODY(1);
    }
  } else {
    /* Narrower than a vector (7 x 7 maps with 8 lanes): one vector into a buffer, then the row. */
    float *full = row;
    float spill[KK_VW];
    row = spill;
    KK_DW_BODY(1);
    memcpy(full, spill, out_w * sizeof(float));
  }
}

/* Specialised for the common kernel widths and strides, so the loops over them unroll. */
static void depthwise_vectors_any(const float *const *lines, const float *const *taps, size_t rows,
                                  size_t kw_count, size_t s, size_t out_w, float bias, float *row) {
  if (kw_count == 3 && s == 1)
    depthwise_vectors(lines, taps, rows, 3, 1, out_w, bias, row);
  else if (kw_count == 3 && s == 2)
    depthwise_vectors(lines, taps, rows, 3, 2, out_w, bias, row);
  else if (kw_count == 5 && s == 1)
    depthwise_vectors(lines, taps, rows, 5, 1, out_w, bias, row);
  else if (kw_count == 5 && s == 2)
    depthwise_vectors(lines, taps, rows, 5, 2, out_w, bias, row);
  else
    depthwise_vectors(lines, taps, rows, kw_count, s, out_w, bias, row);
}

/* The longest padded line depthwise_row_vector keeps on the stack (7 of them: 56 KiB). */
#define KK_DW_LINE 2048

/* Floats a padded line needs: every read of a vector block, the last block's two-vector reads included. */
static size_t depthwise_line_floats(size_t out_w, size_t kernel_w, size_t s) {
  return (out_w > KK_VW ? out_w : KK_VW) * s + kernel_w + s + KK_VW;
}

/* Stride 1 or 2, no horizontal dilation, at most 7 kernel rows, padded lines that fit KK_DW_LINE: the input
   lines the window covers are copied with their padding as zeros, then every output is computed by vector
   blocks with the whole window summed in registers (one store per vector instead of one per tap; stride 2
   reads two vectors and keeps the even lanes). No output takes a scalar path. */
static void depthwise_row_vector(const kk_dw_row *r, ptrdiff_t ih0, float *row) {
  float padded[7][KK_DW_LINE];
  const float *lines[7], *taps[7];
  size_t rows = 0, pad = (size_t)r->pad_w, length = depthwise_line_floats(r->out_w, r->kernel_w, r->stride_w);
  for (size_t kh = 0; kh < r->kernel_h; kh++) {
    ptrdiff_t ih = ih0 + (ptrdiff_t)(kh * r->dilation_h);
    if (ih < 0 || ih >= (ptrdiff_t)r->height) continue;
    float *line = padded[rows];
    const float *source = r->plane + (size_t)ih * r->width;
    size_t copied = pad >= length ? 0 : (r->width < length - pad ? r->width : length - pad);
    /* Vector stores in line (KK_DW_LINE leaves a vector of slack past `length`), not memcpy/memset calls:
       these lines are short and the calls cost more than the copies. */
    for (size_t i = 0; i < pad; i += KK_VW) kk_store(line + i, kk_splat(0.0f));
    size_t i = 0;
    for (; i + KK_VW <= copied; i += KK_VW) kk_store(line + pad + i, kk_load(source + i));
    if (i < copied && copied >= KK_VW) {
      kk_store(line + pad + copied - KK_VW, kk_load(source + copied - KK_VW));
    } else {
      for (; i < copied; i++) line[pad + i] = source[i];
    }
    for (i = pad + copied; i < length; i += KK_VW) kk_store(line + i, kk_splat(0.0f));
    lines[rows] = line;
    taps[rows++] = r->filter + kh * r->kernel_w;
  }
  depthwise_vectors_any(lines, taps, rows, r->kernel_w, r->stride_w, r->out_w, r->bias, row);
}

static void depthwise2d_planes(const kk_conv_params *p, const float *x, const float *w, const float *bias,
                               float *y, size_t first, size_t last) {
  size_t channels = p->in_channels, height = p->in[0], width = p->in[1], out_h = p->out[0], out_w = p->out[1];
  size_t kernel_h = p->kernel[0], kernel_w = p->kernel[1];
  int vector = KK_DEPTHWISE_VECTOR && p->dilation[1] == 1 && kernel_h <= 7 &&
               (p->stride[1] == 1 || p->stride[1] == 2) &&
               p->pad_begin[1] + depthwise_line_floats(out_w, kernel_w, p->stride[1]) + KK_VW <= KK_DW_LINE;
  for (size_t plane_index = first; plane_index < last; plane_index++) {
    size_t n = plane_index / channels, c = plane_index % channels;
    kk_dw_row r = {x + (n * channels + c) * height * width, w + c * kernel_h * kernel_w, height, width, kernel_h,
                   kernel_w, p->stride[1], p->dilation[0], p->dilation[1], out_w, (ptrdiff_t)p->pad_begin[1],
                   bias ? bias[c] : 0.0f};
    float *result = y + (n * channels + c) * out_h * out_w;
    const float *residual = p->residual ? p->residual + (n * channels + c) * out_h * out_w : NULL;
    for (size_t oh = 0; oh < out_h; oh++) {
      float *row = result + oh * out_w;
      ptrdiff_t ih0 = (ptrdiff_t)(oh * p->stride[0]) - (ptrdiff_t)p->pad_begin[0];
      if (vector)
        depthwise_row_vector(&r, ih0, row);
      else
        depthwise_row_taps(&r, ih0, row);
      if (residual || p->clamp || p->special) {
        kk_epilogue ep = {NULL, residual, out_w, p->clamp, p->lo, p->hi, NULL, p->special};
        kk_epilogue_apply(&ep, row, oh, out_w);
      }
    }
  }
}

/* Every (image, channel) plane is independent: planes spread over the runtime's threads. */
typedef struct {
  const kk_conv_params *p;
  const float *x, *w, *bias;
  float *y;
} kk_depthwise_job;

static void depthwise_range(void *context, size_t first, size_t last) {
  const kk_depthwise_job *job = context;
  depthwise2d_planes(job->p, job->x, job->w, job->bias, job->y, first, last);
}

static void depthwise2d(const kk_conv_params *p, const float *x, const float *w, const float *bias, float *y) {
  kk_depthwise_job job = {p, x, w, bias, y};
  size_t planes = p->batch * p->in_channels;
  kk_parallel_range(planes, planes * p->out[0] * p->out[1] * p->kernel[0] * p->kernel[1], (size_t)1 << 18,
                    depthwise_range, &job);
}

void KK(conv_f32)(const kk_conv_params *p, const float *x, const float *w, const float *bias, float *y,
                  float *scratch) {
  size_t out_size = product(p->out, p->spatial);
  size_t in_size = product(p->in, p->spatial);
  size_t kernel_size = product(p->kernel, p->spatial);
  size_t cin = p->in_channels / p->group, cout = p->out_channels / p->group;
  size_t depth = cin * kernel_size;
  if (p->spatial == 2 && p->group == p->in_channels && p->out_channels == p->in_channels && p->group > 1) {
    depthwise2d(p, x, w, bias, y);
    return;
  }
  for (size_t n = 0; n < p->batch; n++) {
    for (size_t g = 0; g < p->group; g++) {
      const float *image = x + (n * p->in_channels + g * cin) * in_size;
      float *result = y + (n * p->out_channels + g * cout) * out_size;
      const float *residual = p->residual ? p->residual + (n * p->out_channels + g * cout) * out_size : NULL;
      kk_epilogue ep = {bias ? bias + g * cout : NULL, residual, out_size, p->clamp, p->lo, p->hi, NULL, p->special};
      const float *weights = w + g * cout * depth;
      if (pointwise(p)) {
        KK(sgemm_fused)(cout, out_size, depth, weights, depth, image, out_size, result, out_size, &ep);
        continue;
      }
      /* Blocks of about 192 KiB of column matrix, a multiple of 64 columns. */
      size_t width = (size_t)KK_CONV_BLOCK_FLOATS / depth / 64 * 64;
      if (width < 64) width = 64;
      if (width > out_size) width = out_size;
      size_t blocks = (out_size + width - 1) / width;
      /* Scratch holds the whole column matrix: room for out_size / width slots. */
      size_t threads = (size_t)kiln_rt_threads(), slots = out_size / width;
      size_t tasks = depth * out_size * cout < KK_PARALLEL_MACS ? 1 : 4 * threads;
      if (tasks > slots) tasks = slots;
      if (tasks > blocks) tasks = blocks;
      if (tasks == 1 && threads > 1 && blocks == 1) {
        /* One block (a small map): the threads share the product instead (by columns or by rows). */
        im2col_block(p, image, cin, 0, out_size, scratch);
        KK(sgemm_fused)(cout, out_size, depth, weights, depth, scratch, out_size, result, out_size, &ep);
        continue;
      }
      kk_conv_job job = {p, image, weights, result, scratch, cin, cout, depth, out_size, width, blocks, tasks, ep};
      kiln_rt_parallel(tasks, conv_blocks, &job);
    }
  }
}

void KK(conv_transpose_f32)(const kk_conv_params *p, const float *x, const float *w, const float *bias, float *y) {
  /* Here `in` is the input's spatial size and `out` the output's; w is [C_in, C_out/group, k...]. */
  size_t s = p->spatial;
  size_t out_size = product(p->out, s), in_size = product(p->in, s), kernel_size = product(p->kernel, s);
  size_t cin = p->in_channels / p->group, cout = p->out_channels / p->group;
  for (size_t n = 0; n < p->batch; n++) {
    float *image_out = y + n * p->out_channels * out_size;
    for (size_t c = 0; c < p->out_channels; c++) {
      float b = bias ? bias[c] : 0.0f;
      for (size_t i = 0; i < out_size; i++) image_out[c * out_size + i] = b;
    }
    for (size_t g = 0; g < p->group; g++)
      for (size_t ci = 0; ci < cin; ci++) {
        const float *plane = x + (n * p->in_channels + g * cin + ci) * in_size;
        for (size_t pos = 0; pos < in_size; pos++) {
          size_t coord[3] = {0, 0, 0}, rest = pos;
          for (size_t d = s; d-- > 0;) {
            coord[d] = rest % p->in[d];
            rest /= p->in[d];
          }
          float v = plane[pos];
          for (size_t kpos = 0; kpos < kernel_size; kpos++) {
            size_t kc[3] = {0, 0, 0}, krest = kpos;
            for (size_t d = s; d-- > 0;) {
              kc[d] = krest % p->kernel[d];
              krest /= p->kernel[d];
            }
            size_t offset = 0;
            int inside = 1;
            for (size_t d = 0; d < s; d++) {
              ptrdiff_t o = (ptrdiff_t)(coord[d] * p->stride[d] + kc[d] * p->dilation[d]) - (ptrdiff_t)p->pad_begin[d];
              if (o < 0 || o >= (ptrdiff_t)p->out[d]) {
                inside = 0;
                break;
              }
              offset = offset * p->out[d] + (size_t)o;
            }
            if (!inside) continue;
            for (size_t co = 0; co < cout; co++) {
              float wv = w[((g * cin + ci) * cout + co) * kernel_size + kpos];
              image_out[(g * cout + co) * out_size + offset] += v * wv;
            }
          }
        }
      }
  }
}
