/* Max, average and Lp pooling over 1 to 3 spatial dims, with ONNX's padding,
   ceil_mode (already folded into `out`), dilations and count_include_pad. */

#include "kiln_kernels.h"

typedef struct {
  const kk_pool_params *p;
  const float *x;
  float *y;
  int64_t *indices;
} kk_pool_job;

/* Planes [first, last) of the (image, channel) planes. */
static void pool_planes(void *context, size_t first, size_t last) {
  const kk_pool_job *job = context;
  const kk_pool_params *p = job->p;
  const float *x = job->x;
  float *y = job->y;
  int64_t *indices = job->indices;
  size_t s = p->spatial;
  size_t in3[3], out3[3], k3[3], st3[3], d3[3], pb3[3], pe3[3];
  kk_align3(s, p->in, 1, in3);
  kk_align3(s, p->out, 1, out3);
  kk_align3(s, p->kernel, 1, k3);
  kk_align3(s, p->stride, 1, st3);
  kk_align3(s, p->dilation, 1, d3);
  kk_align3(s, p->pad_begin, 0, pb3);
  kk_align3(s, p->pad_end, 0, pe3);
  size_t in_size = in3[0] * in3[1] * in3[2], out_size = out3[0] * out3[1] * out3[2];
  for (size_t plane = first; plane < last; plane++) {
    const float *src = x + plane * in_size;
    float *dst = y + plane * out_size;
    for (size_t oa = 0; oa < out3[0]; oa++)
      for (size_t ob = 0; ob < out3[1]; ob++)
        for (size_t oc = 0; oc < out3[2]; oc++) {
          double acc = p->kind == 0 ? -INFINITY : 0.0;
          size_t count = 0, padded_count = 0;
          int64_t best = -1;
          for (size_t ka = 0; ka < k3[0]; ka++) {
            ptrdiff_t ia = (ptrdiff_t)(oa * st3[0] + ka * d3[0]) - (ptrdiff_t)pb3[0];
            for (size_t kb = 0; kb < k3[1]; kb++) {
              ptrdiff_t ib = (ptrdiff_t)(ob * st3[1] + kb * d3[1]) - (ptrdiff_t)pb3[1];
              for (size_t kc = 0; kc < k3[2]; kc++) {
                ptrdiff_t ic = (ptrdiff_t)(oc * st3[2] + kc * d3[2]) - (ptrdiff_t)pb3[2];
                if (ia < 0 || ib < 0 || ic < 0 || ia >= (ptrdiff_t)in3[0] || ib >= (ptrdiff_t)in3[1] ||
                    ic >= (ptrdiff_t)in3[2]) {
                  /* Cells in the declared padding count for count_include_pad; cells past it
                     (windows that ceil_mode lets hang over the end) never do. */
                  if (ia < (ptrdiff_t)(in3[0] + pe3[0]) && ib < (ptrdiff_t)(in3[1] + pe3[1]) &&
                      ic < (ptrdiff_t)(in3[2] + pe3[2]))
                    padded_count++;
                  continue;
                }
                size_t offset = ((size_t)ia * in3[1] + (size_t)ib) * in3[2] + (size_t)ic;
                double v = src[offset];
                count++;
                if (p->kind == 0) {
                  if (best < 0 || v > acc) {
                    acc = v;
                    best = (int64_t)offset;
                  }
                } else if (p->kind == 1) {
                  acc += v;
                } else {
                  acc += pow(fabs(v), (double)p->p_norm);
                }
              }
            }
          }
          size_t o = (oa * out3[1] + ob) * out3[2] + oc;
          if (p->kind == 0) {
            dst[o] = (float)acc;
            if (indices) {
              int64_t index = best < 0 ? 0 : best;
              if (p->storage_order == 1) {
                size_t c3 = (size_t)index % in3[2], rest = (size_t)index / in3[2];
                size_t c2 = rest % in3[1], c1 = rest / in3[1];
                index = (int64_t)((c3 * in3[1] + c2) * in3[0] + c1);
              }
              indices[plane * out_size + o] = (int64_t)(plane * in_size) + index;
            }
          } else if (p->kind == 1) {
            size_t divisor = p->count_include_pad ? count + padded_count : count;
            dst[o] = divisor ? (float)(acc / (double)divisor) : 0.0f;
          } else {
            dst[o] = (float)pow(acc, 1.0 / (double)p->p_norm);
          }
        }
  }
}

/* The common case, 2-D max or average pooling without dilation or indices: each input row in an output
   row's window is folded into the output row, kernel column by kernel column, so the inner loop runs
   along the output row with no bounds checks (clang vectorises it); only the border columns, whose
   windows reach into the padding, are clipped one by one. */
static void pool2d_planes(void *context, size_t first, size_t last) {
  const kk_pool_job *job = context;
  const kk_pool_params *p = job->p;
  size_t H = p->in[0], W = p->in[1], OH = p->out[0], OW = p->out[1];
  size_t KH = p->kernel[0], KW = p->kernel[1], SH = p->stride[0], SW = p->stride[1];
  ptrdiff_t PH = (ptrdiff_t)p->pad_begin[0], PW = (ptrdiff_t)p->pad_begin[1];
  int is_max = p->kind == 0;
  /* Output columns [ow_lo, ow_hi) have windows wholly inside the row. */
  size_t ow_lo = (size_t)((PW + (ptrdiff_t)SW - 1) / (ptrdiff_t)SW), ow_hi = 0;
  if ((ptrdiff_t)W + PW >= (ptrdiff_t)KW) ow_hi = (size_t)(((ptrdiff_t)W + PW - (ptrdiff_t)KW) / (ptrdiff_t)SW) + 1;
  if (ow_hi > OW) ow_hi = OW;
  if (ow_lo > ow_hi) ow_lo = ow_hi;
  for (size_t plane = first; plane < last; plane++) {
    const float *src = job->x + plane * H * W;
    float *dst = job->y + plane * OH * OW;
    for (size_t oh = 0; oh < OH; oh++) {
      float *out = dst + oh * OW;
      ptrdiff_t h0 = (ptrdiff_t)(oh * SH) - PH;
      size_t h_lo = h0 < 0 ? 0 : (size_t)h0;
      size_t h_hi = h0 + (ptrdiff_t)KH < (ptrdiff_t)H ? (size_t)(h0 + (ptrdiff_t)KH) : H;
      for (size_t ow = 0; ow < OW; ow++) out[ow] = is_max ? -INFINITY : 0.0f;
      for (size_t h = h_lo; h < h_hi; h++) {
        const float *row = src + h * W;
        for (size_t kw = 0; kw < KW && ow_lo < ow_hi; kw++) {
          const float *base = row + (ow_lo * SW + kw - (size_t)PW);
          float *o = out + ow_lo;
          size_t n = ow_hi - ow_lo;
          if (is_max) {
            size_t i = 0;
            if (SW == 1)
              for (; i + KK_VW <= n; i += KK_VW) {
                kk_vf v = kk_load(base + i), m = kk_load(o + i);
                kk_store(o + i, __builtin_elementwise_max(v, m));
              }
            else if (SW == 2) /* two loads, the even lanes; the last vector's odd lane stays inside the row */
              for (; i + KK_VW < n; i += KK_VW) {
                kk_vf v = kk_load_even(base + 2 * i), m = kk_load(o + i);
                kk_store(o + i, __builtin_elementwise_max(v, m));
              }
            for (; i < n; i++) {
              float v = base[i * SW];
              o[i] = v > o[i] ? v : o[i];
            }
          } else {
            for (size_t i = 0; i < n; i++) o[i] += base[i * SW];
          }
        }
        for (size_t ow = 0; ow < OW; ow++) {
          if (ow == ow_lo) ow = ow_hi;
          if (ow >= OW) break;
          for (size_t kw = 0; kw < KW; kw++) {
            ptrdiff_t w = (ptrdiff_t)(ow * SW + kw) - PW;
            if (w < 0 || w >= (ptrdiff_t)W) continue;
            float v = row[w];
            if (is_max)
              out[ow] = v > out[ow] ? v : out[ow];
            else
              out[ow] += v;
          }
        }
      }
      if (is_max) continue;
      /* The divisor: cells inside the input, or inside the declared padding with count_include_pad
         (never the cells past it that ceil_mode lets a window hang over). */
      ptrdiff_t rows = p->count_include_pad
                           ? (h0 + (ptrdiff_t)KH < (ptrdiff_t)(H + p->pad_end[0]) ? h0 + (ptrdiff_t)KH
                                                                                   : (ptrdiff_t)(H + p->pad_end[0])) -
                                 h0
                           : (ptrdiff_t)(h_hi - h_lo);
      for (size_t ow = 0; ow < OW; ow++) {
        ptrdiff_t w0 = (ptrdiff_t)(ow * SW) - PW, w1 = w0 + (ptrdiff_t)KW;
        ptrdiff_t columns;
        if (p->count_include_pad)
          columns = (w1 < (ptrdiff_t)(W + p->pad_end[1]) ? w1 : (ptrdiff_t)(W + p->pad_end[1])) - w0;
        else
          columns = (w1 < (ptrdiff_t)W ? w1 : (ptrdiff_t)W) - (w0 < 0 ? 0 : w0);
        ptrdiff_t divisor = rows * columns;
        out[ow] = divisor > 0 ? out[ow] / (float)divisor : 0.0f;
      }
    }
  }
}

/* Every plane is independent: planes spread over the runtime's threads when the windows add up. */
void KK(pool_f32)(const kk_pool_params *p, const float *x, float *y, int64_t *indices) {
  kk_pool_job job = {p, x, y, indices};
  size_t planes = p->batch * p->channels, work = planes;
  for (size_t i = 0; i < p->spatial; i++) work *= p->out[i] * p->kernel[i];
  int simple = p->spatial == 2 && p->kind != 2 && !indices && p->dilation[0] == 1 && p->dilation[1] == 1;
  kk_parallel_range(planes, work, (size_t)1 << 18, simple ? pool2d_planes : pool_planes, &job);
}

/* NHWC pooling: output rows [first, last) of all images, every pixel's channels a vector at a time over
   the window's cells inside the input. The average's divisor is the NCHW kernels': cells inside the
   input, or inside the declared padding with count_include_pad, never the cells past it. */
static void pool_nhwc_rows(void *context, size_t first, size_t last) {
  const kk_pool_job *job = context;
  const kk_pool_params *p = job->p;
  size_t H = p->in[0], W = p->in[1], OH = p->out[0], OW = p->out[1], C = p->channels;
  size_t vectors = C / KK_VW * KK_VW;
  int is_max = p->kind == 0;
  for (size_t row = first; row < last; row++) {
    size_t n = row / OH, oh = row % OH;
    const float *image = job->x + n * H * W * C;
    ptrdiff_t h0 = (ptrdiff_t)(oh * p->stride[0]) - (ptrdiff_t)p->pad_begin[0];
    for (size_t ow = 0; ow < OW; ow++) {
      ptrdiff_t w0 = (ptrdiff_t)(ow * p->stride[1]) - (ptrdiff_t)p->pad_begin[1];
      const float *cells[KK_NHWC_MAX_TAPS];
      size_t count = 0, padded = 0;
      for (size_t kh = 0; kh < p->kernel[0]; kh++) {
        ptrdiff_t h = h0 + (ptrdiff_t)(kh * p->dilation[0]);
        for (size_t kw = 0; kw < p->kernel[1]; kw++) {
          ptrdiff_t w = w0 + (ptrdiff_t)(kw * p->dilation[1]);
          if (h >= 0 && h < (ptrdiff_t)H && w >= 0 && w < (ptrdiff_t)W)
            cells[count++] = image + ((size_t)h * W + (size_t)w) * C;
          else if (h < (ptrdiff_t)(H + p->pad_end[0]) && w < (ptrdiff_t)(W + p->pad_end[1]))
            padded++;
        }
      }
      float *out = job->y + ((n * OH + oh) * OW + ow) * C;
      size_t divisor = p->count_include_pad ? count + padded : count;
      size_t c = 0;
      for (; c < vectors; c += KK_VW) {
        kk_vf acc = kk_splat(is_max ? -INFINITY : 0.0f);
        for (size_t t = 0; t < count; t++)
          acc = is_max ? __builtin_elementwise_max(acc, kk_load(cells[t] + c)) : acc + kk_load(cells[t] + c);
        if (!is_max) acc = divisor ? acc / kk_splat((float)divisor) : kk_splat(0.0f);
        kk_store(out + c, acc);
      }
      for (; c < C; c++) {
        float acc = is_max ? -INFINITY : 0.0f;
        for (size_t t = 0; t < count; t++)
          acc = is_max ? __builtin_elementwise_max(acc, cells[t][c]) : acc + cells[t][c];
        out[c] = is_max ? acc : (divisor ? acc / (float)divisor : 0.0f);
      }
    }
  }
}

void KK(pool_nhwc_f32)(const kk_pool_params *p, const float *x, float *y) {
  kk_pool_job job = {p, x, y, 0};
  size_t rows = p->batch * p->out[0];
  kk_parallel_range(rows, rows * p->out[1] * p->channels * p->kernel[0] * p->kernel[1], (size_t)1 << 18,
                    pool_nhwc_rows, &job);
}

void KK(global_average_pool_nhwc_f32)(const float *x, size_t batch, size_t pixels, size_t channels, float *y) {
  enum { block = 256 };
  for (size_t n = 0; n < batch; n++)
    for (size_t c0 = 0; c0 < channels; c0 += block) {
      size_t width = channels - c0 < block ? channels - c0 : block;
      double sums[block];
      for (size_t c = 0; c < width; c++) sums[c] = 0.0;
      for (size_t i = 0; i < pixels; i++) {
        const float *pixel = x + (n * pixels + i) * channels + c0;
        for (size_t c = 0; c < width; c++) sums[c] += pixel[c];
      }
      for (size_t c = 0; c < width; c++) y[n * channels + c0 + c] = (float)(sums[c] / (double)(pixels ? pixels : 1));
    }
}
