/* 2-D convolution on channels-last (NHWC) activations, with the weights packed at compile time
   (Passes/ChannelsLast.swift) into the order these loops read them.

   Group 1 is an implicit GEMM: output pixels are the rows of the product, output channels its
   columns, and the depth is the window's taps times the input channels. Nothing is copied at run
   time: a tile of KK_NHWC_MR output pixels reads each input pixel's channels where they lie (a
   pixel's channels are contiguous in NHWC), and a tap in the padding reads a row of zeros. The
   weights are panels of KK_NHWC_PANEL output channels, each as two sub-panels of KK_NHWC_SUB,
   [panel][2][kh][kw][in channel][16], zero past the last channel, so the micro-kernel reads one
   contiguous stream per sub-panel (with AVX2 a tile's 16 columns are one sub-panel: every line of
   weights it pulls into the cache is used whole, against half of it with rows of 32); MR pixels times two
   vectors of output channels stay in registers for the whole depth, and the epilogue (bias,
   residual, clamp) is applied before the one store.

   Depthwise (one filter per channel, multiplier 1) runs along the channels: weights [kh][kw][c]. */
#include "kiln_kernels.h"

/* Output pixels per tile. 12 (24 accumulators where there are 32 vector registers) was measured against
   this, alternating (benchmarks/ab-kernels.sh -DKK_NHWC_MR=6): slower in every zoo network (ResNet-50 83 vs
   75 ms), though faster on a lone 1x1 from 32 channels. */
#ifndef KK_NHWC_MR
#define KK_NHWC_MR 6
#endif
/* Micro-kernel columns: two vectors. A panel (32 channels) is 1 (AVX-512), 2 (AVX) or 4 (SSE, NEON) of them. */
#define KK_NHWC_NR (2 * KK_VW)

/* One stretch of the depth for every row of a tile: `length` consecutive floats at each row's pointer
   meet the next `length` rows of the weight panel. A tap, or a whole kernel row of taps when every
   row's window lies inside the input along the width (then its taps' channels are contiguous). */
typedef struct {
  const float *row[KK_NHWC_MR];
  size_t length;
} kk_nhwc_segment;

/* acc[r][v] = sum over the segments of row r times the panel's columns [v * VW, (v + 1) * VW), for V
   (1 or 2) vectors; `b` is the first column's sub-panel at that column, rows KK_NHWC_SUB floats apart, and
   the second vector `second` floats after the first (the other sub-panel with AVX-512, the next VW columns
   of this one otherwise). V is a constant where it is called, so c stays in registers. */
static inline __attribute__((always_inline)) void nhwc_micro(const kk_nhwc_segment *segments, size_t count,
                                                            const float *b, size_t second, int V,
                                                            kk_vf acc[KK_NHWC_MR][2]) {
  kk_vf c[KK_NHWC_MR][2] = {{{0}}};
  for (size_t s = 0; s < count; s++) {
    const float *a[KK_NHWC_MR];
#pragma clang loop unroll(full)
    for (int r = 0; r < KK_NHWC_MR; r++) a[r] = segments[s].row[r];
    size_t length = segments[s].length;
    for (size_t p = 0; p < length; p++) {
      kk_vf b0 = kk_load(b), b1 = V == 2 ? kk_load(b + second) : b0;
      b += KK_NHWC_SUB;
#pragma clang loop unroll(full)
      for (int r = 0; r < KK_NHWC_MR; r++) {
        float x = a[r][p];
        c[r][0] += b0 * x;
        if (V == 2) c[r][1] += b1 * x;
      }
    }
  }
#pragma clang loop unroll(full)
  for (int r = 0; r < KK_NHWC_MR; r++) acc[r][0] = c[r][0], acc[r][1] = c[r][1];
}

/* The micro-kernel for `width` columns from column `offset` of a panel of depth `depth` at `panel`: one
   vector when they fit in one. */
static inline __attribute__((always_inline)) void nhwc_micro_any(const kk_nhwc_segment *segments, size_t count,
                                                                const float *panel, size_t depth, size_t offset,
                                                                size_t width, kk_vf acc[KK_NHWC_MR][2]) {
  const float *b = panel + offset / KK_NHWC_SUB * depth * KK_NHWC_SUB + offset % KK_NHWC_SUB;
  if (width <= KK_VW)
    nhwc_micro(segments, count, b, 0, 1, acc);
  else
    nhwc_micro(segments, count, b, KK_VW == KK_NHWC_SUB ? depth * KK_NHWC_SUB : KK_VW, 2, acc);
}

/* The activation of the epilogue (GELU or SiLU if asked, then the clamp), read from the parameters once
   per call of a kernel's loop into a local: read through the parameters' pointer, every store of a float to
   y could have changed lo and hi for all the compiler knows, and each store reloaded them (with the splats
   and branches, about 70 of the 220 cycles a 6 x 32 tile of a 16-channel 1x1 convolution took on the
   Zen 5). */
typedef struct {
  kk_vf lo, hi;
  float lo1, hi1;
  int clamp, special;
} kk_nhwc_activation;

static inline kk_nhwc_activation nhwc_activation(const kk_conv_nhwc_params *p) {
  kk_nhwc_activation a = {kk_splat(p->lo), kk_splat(p->hi), p->lo, p->hi, p->clamp, p->special};
  return a;
}

static inline kk_vf nhwc_clamp(const kk_nhwc_activation *a, kk_vf v) {
  if (a->special) v = kk_special_vector(a->special, v);
  return a->clamp ? __builtin_elementwise_min(__builtin_elementwise_max(v, a->lo), a->hi) : v;
}

static inline float nhwc_clamp_scalar(const kk_nhwc_activation *a, float v) {
  if (a->special) v = kk_special(a->special, v);
  return a->clamp ? __builtin_elementwise_min(__builtin_elementwise_max(v, a->lo1), a->hi1) : v;
}

/* Stores `width` (<= NR) channels of one output pixel from its two accumulators, through the epilogue: whole
   vectors directly (a layer of 16 channels stores every pixel this way), a remainder through masked loads
   and stores (with AVX-512, 24 channels: 144 -> 24 at 56 x 56 took 0.153 ms, more than 144 -> 32's 0.113,
   when the remainder went through memory and a memcpy call). */
static inline __attribute__((always_inline)) void nhwc_store(const kk_nhwc_activation *act, float *out,
                                                             const float *bias, const float *residual,
                                                             const kk_vf acc[2], size_t width) {
  for (size_t v = 0, base = 0; v < 2 && base < width; v++, base += KK_VW) {
    kk_vf value = acc[v];
    if (base + KK_VW <= width) {
      if (bias) value += kk_load(bias + base);
      if (residual) value += kk_load(residual + base);
      kk_store(out + base, nhwc_clamp(act, value));
      continue;
    }
    size_t rest = width - base;
    if (bias) value += kk_load_first(bias + base, rest);
    if (residual) value += kk_load_first(residual + base, rest);
    kk_store_first(out + base, nhwc_clamp(act, value), rest);
  }
}

/* Stores a tile's `mr` rows of `width` channels from their accumulators (the first at y + at, the next `step`
   floats on), through the epilogue. Two whole vectors per pixel (every column group of a layer whose channels
   fill its panels) take the bias once for all rows. Unrolled over the rows so the accumulators stay in
   registers (a run-time trip count would send them through memory). */
static inline __attribute__((always_inline)) void nhwc_store_tile(const kk_nhwc_activation *act, float *y, size_t at,
                                                                  size_t step, const float *bias,
                                                                  const float *residual,
                                                                  const kk_vf acc[KK_NHWC_MR][2], size_t mr,
                                                                  size_t width) {
  if (width == KK_NHWC_NR) {
    kk_vf b0 = bias ? kk_load(bias) : kk_splat(0.0f), b1 = bias ? kk_load(bias + KK_VW) : kk_splat(0.0f);
#pragma clang loop unroll(full)
    for (size_t r = 0; r < KK_NHWC_MR; r++, at += step) {
      if (r >= mr) continue;
      kk_vf v0 = acc[r][0], v1 = acc[r][1];
      if (bias) v0 += b0, v1 += b1;
      if (residual) v0 += kk_load(residual + at), v1 += kk_load(residual + at + KK_VW);
      kk_store(y + at, nhwc_clamp(act, v0));
      kk_store(y + at + KK_VW, nhwc_clamp(act, v1));
    }
    return;
  }
#pragma clang loop unroll(full)
  for (size_t r = 0; r < KK_NHWC_MR; r++, at += step)
    if (r < mr) nhwc_store(act, y + at, bias, residual ? residual + at : 0, acc[r], width);
}

typedef struct {
  const kk_conv_nhwc_params *p;
  const float *x, *w, *bias, *zeros;
  float *y;
  size_t tiles, panels, depth; /* tiles per image; panels of output channels; depth = KH * KW * C */
  size_t group;                /* tiles that take each panel in turn (1: a tile takes every panel) */
  int pointwise;               /* 1x1, stride 1, no padding: pixel m reads pixel m */
} kk_nhwc_job;

/* The segments of the tile of output pixels [m0, m0 + mr) of image n; rows past mr repeat the last
   pixel (computed, never stored). Returns how many. */
static size_t nhwc_segments(const kk_nhwc_job *job, size_t n, size_t m0, size_t mr, kk_nhwc_segment *segments) {
  const kk_conv_nhwc_params *p = job->p;
  const float *image = job->x + n * p->in_h * p->in_w * p->in_c;
  if (job->pointwise) {
    /* 1x1, stride 1, no padding: output pixel m reads input pixel m (and layers with few channels have
       little depth to hide any more work per tile behind). */
    segments[0].length = p->in_c;
    for (size_t r = 0; r < KK_NHWC_MR; r++) segments[0].row[r] = image + (m0 + (r < mr ? r : mr - 1)) * p->in_c;
    return 1;
  }
  ptrdiff_t iy0[KK_NHWC_MR], ix0[KK_NHWC_MR];
  int wide = 1; /* every row's window inside the input along the width */
  size_t oy = m0 / p->out_w, ox = m0 % p->out_w; /* one division per tile, then steps along the rows */
  for (size_t r = 0; r < KK_NHWC_MR; r++) {
    iy0[r] = (ptrdiff_t)(oy * p->stride_h) - (ptrdiff_t)p->pad_top;
    ix0[r] = (ptrdiff_t)(ox * p->stride_w) - (ptrdiff_t)p->pad_left;
    if (ix0[r] < 0 || ix0[r] + (ptrdiff_t)((p->kernel_w - 1) * p->dilation_w) >= (ptrdiff_t)p->in_w) wide = 0;
    if (r + 1 < mr && ++ox == p->out_w) ox = 0, oy++;
  }
  int merge = wide && (p->dilation_w == 1 || p->kernel_w == 1);
  size_t count = 0;
  for (size_t kh = 0; kh < p->kernel_h; kh++) {
    size_t taps = merge ? 1 : p->kernel_w;
    for (size_t kw = 0; kw < taps; kw++, count++) {
      kk_nhwc_segment *s = &segments[count];
      s->length = merge ? p->kernel_w * p->in_c : p->in_c;
      for (size_t r = 0; r < KK_NHWC_MR; r++) {
        ptrdiff_t iy = iy0[r] + (ptrdiff_t)(kh * p->dilation_h), ix = ix0[r] + (ptrdiff_t)(kw * p->dilation_w);
        int inside = iy >= 0 && iy < (ptrdiff_t)p->in_h && ix >= 0 && ix < (ptrdiff_t)p->in_w;
        s->row[r] = inside ? image + ((size_t)iy * p->in_w + (size_t)ix) * p->in_c : job->zeros;
      }
    }
  }
  return count;
}

/* The tile of output pixels [m0, m0 + mr) of image n, whose segments are given, times panel j, stored
   through the epilogue. */
static inline __attribute__((always_inline)) void nhwc_tile_panel(const kk_nhwc_job *job,
                                                                  const kk_nhwc_activation *act,
                                                                  const kk_nhwc_segment *segments, size_t count,
                                                                  size_t n, size_t m0, size_t mr, size_t j) {
  const kk_conv_nhwc_params *p = job->p;
  size_t pixels = p->out_h * p->out_w;
  const float *residual = p->residual;
  float *y = job->y;
  for (size_t column = j * KK_NHWC_PANEL; column < (j + 1) * KK_NHWC_PANEL && column < p->out_c;
       column += KK_NHWC_NR) {
    size_t width = p->out_c - column < KK_NHWC_NR ? p->out_c - column : KK_NHWC_NR;
    const float *bias = job->bias ? job->bias + column : 0;
    kk_vf acc[KK_NHWC_MR][2];
    nhwc_micro_any(segments, count, job->w + j * job->depth * KK_NHWC_PANEL, job->depth, column - j * KK_NHWC_PANEL,
                   width, acc);
    size_t at = (n * pixels + m0) * p->out_c + column;
    /* GELU and SiLU apart: they are a call, and a call on the way would send every accumulator through the
       stack. */
    if (act->special)
      nhwc_store_tile(act, y, at, p->out_c, bias, residual, acc, mr, width);
    else {
      kk_nhwc_activation plain = *act;
      plain.special = 0;
      nhwc_store_tile(&plain, y, at, p->out_c, bias, residual, acc, mr, width);
    }
  }
}

/* Units [first, last) of (image, tile, panel), panel fastest: a tile's segments serve all its panels. The
   indices step from unit to unit (a shallow product's unit is a few hundred cycles: four divisions each
   would be a good part of it). */
static void nhwc_units(void *context, size_t first, size_t last) {
  const kk_nhwc_job *job = context;
  const kk_conv_nhwc_params *p = job->p;
  size_t pixels = p->out_h * p->out_w;
  kk_nhwc_segment segments[KK_NHWC_MAX_TAPS];
  size_t j = first % job->panels, tile = first / job->panels, n = tile / job->tiles;
  size_t m0 = (tile % job->tiles) * KK_NHWC_MR, count = 0;
  int fresh = 1; /* the segments are not this tile's yet */
  kk_nhwc_activation act = nhwc_activation(p);
  for (size_t unit = first; unit < last; unit++) {
    size_t mr = pixels - m0 < KK_NHWC_MR ? pixels - m0 : KK_NHWC_MR;
    if (fresh) {
      count = nhwc_segments(job, n, m0, mr, segments);
      fresh = 0;
    }
    nhwc_tile_panel(job, &act, segments, count, n, m0, mr, j);
    if (++j == job->panels) {
      j = 0, fresh = 1;
      m0 += KK_NHWC_MR;
      if (m0 >= pixels) m0 = 0, n++;
    }
  }
}

/* Grouped order, for weights too large to stay in L2: units [first, last) of (image, group of tiles, panel,
   tile in the group), tile fastest, so a panel serves every tile of a group from L2 while the group's inputs
   stay there too, and the weights stream from memory once per group instead of once per tile. Units past an
   image's last tile do nothing. */
static void nhwc_grouped_units(void *context, size_t first, size_t last) {
  const kk_nhwc_job *job = context;
  const kk_conv_nhwc_params *p = job->p;
  size_t pixels = p->out_h * p->out_w, g = job->group, groups = (job->tiles + g - 1) / g;
  kk_nhwc_segment segments[KK_NHWC_MAX_TAPS];
  kk_nhwc_activation act = nhwc_activation(p);
  for (size_t unit = first; unit < last; unit++) {
    size_t i = unit % g, j = unit / g % job->panels, q = unit / g / job->panels % groups;
    size_t n = unit / g / job->panels / groups, tile = q * g + i;
    if (tile >= job->tiles) continue;
    size_t m0 = tile * KK_NHWC_MR, mr = pixels - m0 < KK_NHWC_MR ? pixels - m0 : KK_NHWC_MR;
    size_t count = nhwc_segments(job, n, m0, mr, segments);
    nhwc_tile_panel(job, &act, segments, count, n, m0, mr, j);
  }
}

/* Bytes of weights above which the tiles go in groups, and the bytes of input a group may read (half of the
   smallest L2 among the x86 targets, Zen 2 and 3: 512 KiB). Measured in ResNet-50 on the 2-core Zen 3 (1
   thread, benchmarks/ab-kernels.sh): grouping its 8 and 9 MiB layers took them from 4.7-6.0 ms to 3.9-4.1,
   but made the 1-4 MiB ones slower (256 -> 1024 channels at 14 x 14: 1.85 -> 2.5 ms). Those still stay in
   L3 from tile to tile, and a group writes each output pixel one panel at a time: 32 channels every 4 or 8
   KiB, the same cache sets over and over. */
#ifndef KK_NHWC_GROUP_WEIGHT_BYTES
#if defined(KK_L2_BYTES) && KK_L2_BYTES >= (1 << 20)
/* With 1 MiB of L2 or more (the Zen 5: ResNet-50's 2 and 4 MiB layers too), measured there with
   benchmarks/ab-kernels.sh against 6 MiB: ResNet-50 29.9 vs 30.2 ms at 1 thread, 16.2 vs 16.6 and 16.6 vs 17.0
   at 2; MobileNetV2 (its 1.6 MB 320 -> 1280 layer) 3.15 vs 3.25 and 1.63 vs 1.67. */
#define KK_NHWC_GROUP_WEIGHT_BYTES ((size_t)3 << 19)
#else
#define KK_NHWC_GROUP_WEIGHT_BYTES ((size_t)6 << 20)
#endif
#endif
#ifndef KK_NHWC_GROUP_BYTES
#define KK_NHWC_GROUP_BYTES ((size_t)256 << 10)
#endif

/* Tiles per group: 1 unless the weights exceed KK_NHWC_GROUP_WEIGHT_BYTES (every tile takes every panel
   while its inputs are in L1); otherwise the most tiles whose inputs (the input rows their windows cover, or
   their rows of the product when that is less) fit in KK_NHWC_GROUP_BYTES. */
static size_t nhwc_group(const kk_conv_nhwc_params *p, size_t tiles, size_t panels, size_t depth) {
  if (panels * depth * KK_NHWC_PANEL * sizeof(float) <= KK_NHWC_GROUP_WEIGHT_BYTES) return 1;
  size_t g = 1;
  while (g < tiles) {
    size_t next = g + 1, pixels = next * KK_NHWC_MR;
    size_t rows = ((pixels + p->out_w - 1) / p->out_w + 1) * p->stride_h + p->kernel_h;
    size_t window = rows * p->in_w * p->in_c, product = pixels * depth;
    if ((window < product ? window : product) * sizeof(float) > KK_NHWC_GROUP_BYTES) break;
    g = next;
  }
  return g;
}

/* The job of a convolution: `zeros` a row of kernel_w * in_c zeros (read by taps in the padding). */
static kk_nhwc_job nhwc_job(const kk_conv_nhwc_params *p, const float *x, const float *w, const float *bias, float *y,
                            const float *zeros) {
  size_t depth = p->kernel_h * p->kernel_w * p->in_c;
  kk_nhwc_job job = {p, x, w, bias, zeros, y, (p->out_h * p->out_w + KK_NHWC_MR - 1) / KK_NHWC_MR,
                     (p->out_c + KK_NHWC_PANEL - 1) / KK_NHWC_PANEL, depth, 1, 0};
  job.pointwise = p->kernel_h == 1 && p->kernel_w == 1 && p->stride_h == 1 && p->stride_w == 1 && p->pad_top == 0 &&
                  p->pad_left == 0 && p->in_h == p->out_h && p->in_w == p->out_w;
  job.group = nhwc_group(p, job.tiles, job.panels, depth);
  return job;
}

/* The job's units, and the function that runs a range of them. */
static size_t nhwc_job_units(const kk_nhwc_job *job, void (**range)(void *, size_t, size_t)) {
  *range = job->group == 1 ? nhwc_units : nhwc_grouped_units;
  size_t per_image = job->group == 1 ? job->tiles : (job->tiles + job->group - 1) / job->group * job->group;
  return job->p->batch * per_image * job->panels;
}

/* A pointwise convolution (its padding zeros never read) on this thread alone: inside a task of a fused kernel. */
static void nhwc_serial(const kk_conv_nhwc_params *p, const float *x, const float *w, const float *bias, float *y) {
  kk_nhwc_job job = nhwc_job(p, x, w, bias, y, 0);
  void (*range)(void *, size_t, size_t);
  size_t units = nhwc_job_units(&job, &range);
  range(&job, 0, units);
}

void KK(conv_nhwc_f32)(const kk_conv_nhwc_params *p, const float *x, const float *w, const float *bias, float *y,
                       float *scratch) {
  /* The row a tap in the padding reads: as long as the longest segment. */
  memset(scratch, 0, p->kernel_w * p->in_c * sizeof(float));
  kk_nhwc_job job = nhwc_job(p, x, w, bias, y, scratch);
  void (*range)(void *, size_t, size_t);
  size_t units = nhwc_job_units(&job, &range);
  kk_parallel_range(units, p->batch * p->out_h * p->out_w * p->out_c * job.depth, KK_PARALLEL_MACS, range, &job);
}

/* Depthwise: output rows [first, last) of all images, each pixel's channels a vector at a time. */
typedef struct {
  const kk_conv_nhwc_params *p;
  const float *x, *w, *bias;
  float *y;
} kk_dw_nhwc_job;

/* The taps of output pixel (oh, ow) inside the input, as offsets into the image and the filter. */
static size_t dw_taps(const kk_conv_nhwc_params *p, size_t oh, size_t ow, size_t *input, size_t *filter) {
  ptrdiff_t iy0 = (ptrdiff_t)(oh * p->stride_h) - (ptrdiff_t)p->pad_top;
  ptrdiff_t ix0 = (ptrdiff_t)(ow * p->stride_w) - (ptrdiff_t)p->pad_left;
  size_t taps = 0, C = p->in_c;
  for (size_t kh = 0; kh < p->kernel_h; kh++) {
    ptrdiff_t iy = iy0 + (ptrdiff_t)(kh * p->dilation_h);
    if (iy < 0 || iy >= (ptrdiff_t)p->in_h) continue;
    for (size_t kw = 0; kw < p->kernel_w; kw++) {
      ptrdiff_t ix = ix0 + (ptrdiff_t)(kw * p->dilation_w);
      if (ix < 0 || ix >= (ptrdiff_t)p->in_w) continue;
      input[taps] = ((size_t)iy * p->in_w + (size_t)ix) * C;
      filter[taps++] = (kh * p->kernel_w + kw) * C;
    }
  }
  return taps;
}

/* One output pixel whose window reaches into the padding, all its channels. */
static void dw_nhwc_pixel(const kk_dw_nhwc_job *job, const kk_nhwc_activation *act, const float *image, size_t oh,
                          size_t ow, float *out,
                          const float *residual) {
  const kk_conv_nhwc_params *p = job->p;
  size_t C = p->in_c, vectors = C / KK_VW * KK_VW;
  size_t input[KK_NHWC_MAX_TAPS], filter[KK_NHWC_MAX_TAPS];
  size_t taps = dw_taps(p, oh, ow, input, filter), c = 0;
  for (; c < vectors; c += KK_VW) {
    kk_vf acc = job->bias ? kk_load(job->bias + c) : kk_splat(0.0f);
    for (size_t t = 0; t < taps; t++) acc += kk_load(image + input[t] + c) * kk_load(job->w + filter[t] + c);
    if (residual) acc += kk_load(residual + c);
    kk_store(out + c, nhwc_clamp(act, acc));
  }
  for (; c < C; c++) {
    float acc = job->bias ? job->bias[c] : 0.0f;
    for (size_t t = 0; t < taps; t++) acc += image[input[t] + c] * job->w[filter[t] + c];
    if (residual) acc += residual[c];
    out[c] = nhwc_clamp_scalar(act, acc);
  }
}

/* Output rows [first, last) of all images. The pixels of a row whose windows lie inside the input along
   the width share one list of taps (relative to the pixel); they go four at a time per vector of channels,
   four independent chains of multiply-adds, the tap's weights loaded once for the four. */
static inline __attribute__((always_inline)) void dw_nhwc_rows_with(const kk_dw_nhwc_job *job,
                                                                    const kk_nhwc_activation *activation,
                                                                    size_t first, size_t last) {
  const kk_conv_nhwc_params *p = job->p;
  kk_nhwc_activation act = *activation;
  size_t C = p->in_c, vectors = C / KK_VW * KK_VW, step = p->stride_w * C; /* between neighbouring pixels' inputs */
  ptrdiff_t reach = (ptrdiff_t)((p->kernel_w - 1) * p->dilation_w);
  /* Output columns [lo, hi) have every kernel column inside the input. */
  size_t lo = (p->pad_left + p->stride_w - 1) / p->stride_w, hi = 0;
  if ((ptrdiff_t)p->in_w + (ptrdiff_t)p->pad_left > reach)
    hi = (size_t)(((ptrdiff_t)p->in_w + (ptrdiff_t)p->pad_left - reach - 1) / (ptrdiff_t)p->stride_w) + 1;
  if (hi > p->out_w) hi = p->out_w;
  if (lo > hi) lo = hi;
  for (size_t row = first; row < last; row++) {
    size_t n = row / p->out_h, oh = row % p->out_h;
    const float *image = job->x + n * p->in_h * p->in_w * C;
    float *line = job->y + row * p->out_w * C;
    const float *residual = p->residual ? p->residual + row * p->out_w * C : 0;
    for (size_t ow = 0; ow < p->out_w; ow++) {
      if (ow == lo) ow = hi;
      if (ow >= p->out_w) break;
      dw_nhwc_pixel(job, &act, image, oh, ow, line + ow * C, residual ? residual + ow * C : 0);
    }
    if (lo == hi) continue;
    /* The taps of column lo, as offsets from that pixel's first input column. */
    size_t input[KK_NHWC_MAX_TAPS], filter[KK_NHWC_MAX_TAPS];
    size_t taps = dw_taps(p, oh, lo, input, filter), base = (lo * p->stride_w - p->pad_left) * C;
    for (size_t t = 0; t < taps; t++) input[t] -= base;
    /* Pixel blocks outside, channels inside: a block's inputs stay in L1 while all its channels use them
       (a vector of channels at a time over the whole row would stream the row from L2 once per vector). */
    size_t ow = lo;
    for (; ow + 4 <= hi; ow += 4) {
      const float *at = image + (ow * p->stride_w - p->pad_left) * C;
      for (size_t c = 0; c < vectors; c += KK_VW) {
        kk_vf bias = job->bias ? kk_load(job->bias + c) : kk_splat(0.0f);
        kk_vf acc[4] = {bias, bias, bias, bias};
        for (size_t t = 0; t < taps; t++) {
          kk_vf weight = kk_load(job->w + filter[t] + c);
          for (int q = 0; q < 4; q++) acc[q] += kk_load(at + input[t] + q * step + c) * weight;
        }
        for (int q = 0; q < 4; q++) {
          if (residual) acc[q] += kk_load(residual + (ow + q) * C + c);
          kk_store(line + (ow + q) * C + c, nhwc_clamp(&act, acc[q]));
        }
      }
    }
    for (; ow < hi; ow++) {
      const float *at = image + (ow * p->stride_w - p->pad_left) * C;
      for (size_t c = 0; c < vectors; c += KK_VW) {
        kk_vf acc = job->bias ? kk_load(job->bias + c) : kk_splat(0.0f);
        for (size_t t = 0; t < taps; t++) acc += kk_load(at + input[t] + c) * kk_load(job->w + filter[t] + c);
        if (residual) acc += kk_load(residual + ow * C + c);
        kk_store(line + ow * C + c, nhwc_clamp(&act, acc));
      }
    }
    for (size_t c = vectors; c < C; c++)
      for (size_t ow = lo; ow < hi; ow++) {
        const float *at = image + (ow * p->stride_w - p->pad_left) * C + c;
        float acc = job->bias ? job->bias[c] : 0.0f;
        for (size_t t = 0; t < taps; t++) acc += at[input[t]] * job->w[filter[t] + c];
        if (residual) acc += residual[ow * C + c];
        line[ow * C + c] = nhwc_clamp_scalar(&act, acc);
      }
  }
}

static void dw_nhwc_rows(void *context, size_t first, size_t last) {
  const kk_dw_nhwc_job *job = context;
  kk_nhwc_activation act = nhwc_activation(job->p);
  /* GELU and SiLU apart: they are a call, and a call on the way would send the accumulators through the
     stack. */
  if (act.special) {
    dw_nhwc_rows_with(job, &act, first, last);
  } else {
    act.special = 0;
    dw_nhwc_rows_with(job, &act, first, last);
  }
}

void KK(depthwise_nhwc_f32)(const kk_conv_nhwc_params *p, const float *x, const float *w, const float *bias,
                            float *y) {
  kk_dw_nhwc_job job = {p, x, w, bias, y};
  size_t rows = p->batch * p->out_h;
  kk_parallel_range(rows, rows * p->out_w * p->in_c * p->kernel_h * p->kernel_w, (size_t)1 << 18, dw_nhwc_rows,
                    &job);
}

/* kiln::ExpandDepthwiseNHWC (Passes/FuseExpandDepthwise.swift): a 1x1 convolution `e` (stride 1, no padding,
   no residual) whose output only the depthwise convolution `d` reads, as in MobileNet's inverted residual
   blocks, where it is six times the width of the block's input. Its rows are made a band at a time into
   scratch, just before the depthwise rows that read them, so the wide tensor never leaves L2: a band of `band`
   output rows reads (band - 1) * stride + reach rows of it, and the rows the next band shares with this one are
   moved to the front, not made again. The output rows are split into `chunks` runs, one per scratch slot of
   `slot` floats (each run makes its first band's shared rows itself). With a projection `pj` (the block's 1x1
   convolution back to few channels, the only reader of the depthwise output), a band's depthwise rows go to a
   second slot of `mid` floats and the projection makes the band's output rows from there, so neither wide
   tensor leaves L2. */
typedef struct {
  const kk_conv_nhwc_params *e, *d, *pj;
  const float *x, *we, *be, *wd, *bd, *wp, *bp;
  float *y, *scratch;
  size_t n, band, chunks, slot, mid;
} kk_xdw_job;

static void xdw_chunk(void *context, size_t t) {
  const kk_xdw_job *job = context;
  const kk_conv_nhwc_params *e = job->e, *d = job->d;
  size_t per = (d->out_h + job->chunks - 1) / job->chunks, first = t * per;
  size_t last = first + per < d->out_h ? first + per : d->out_h;
  size_t W = e->in_w, M = e->out_c, row = W * M;
  ptrdiff_t reach = (ptrdiff_t)((d->kernel_h - 1) * d->dilation_h + 1), have0 = 0, have1 = 0;
  float *band = job->scratch + t * job->slot;
  for (size_t oh0 = first; oh0 < last; oh0 += job->band) {
    size_t oh1 = oh0 + job->band < last ? oh0 + job->band : last;
    /* The wide tensor's rows [r0, r1) that output rows [oh0, oh1) read. */
    ptrdiff_t top = (ptrdiff_t)(oh0 * d->stride_h) - (ptrdiff_t)d->pad_top;
    ptrdiff_t r0 = top < 0 ? 0 : top, r1 = (ptrdiff_t)((oh1 - 1) * d->stride_h) - (ptrdiff_t)d->pad_top + reach;
    if (r1 > (ptrdiff_t)d->in_h) r1 = (ptrdiff_t)d->in_h;
    if (r1 < r0) r1 = r0;
    ptrdiff_t from = r0;
    if (have0 <= r0 && r0 < have1) {
      memmove(band, band + (size_t)(r0 - have0) * row, (size_t)(have1 - r0) * row * sizeof(float));
      from = have1;
    }
    if (from < r1) {
      kk_conv_nhwc_params pe = *e;
      pe.batch = 1, pe.in_h = pe.out_h = (size_t)(r1 - from);
      nhwc_serial(&pe, job->x + (job->n * e->in_h + (size_t)from) * W * e->in_c, job->we, job->be,
                  band + (size_t)(from - r0) * row);
    }
    have0 = r0, have1 = r1;
    kk_conv_nhwc_params pd = *d;
    pd.batch = 1, pd.in_h = (size_t)(r1 - r0), pd.out_h = oh1 - oh0, pd.pad_top = (size_t)(r0 - top);
    size_t at = (job->n * d->out_h + oh0) * d->out_w * M;
    if (d->residual) pd.residual = d->residual + at;
    float *mid = job->scratch + job->chunks * job->slot + t * job->mid;
    kk_dw_nhwc_job rows = {&pd, band, job->wd, job->bd, job->pj ? mid : job->y + at};
    dw_nhwc_rows(&rows, 0, oh1 - oh0);
    if (job->pj) {
      kk_conv_nhwc_params pp = *job->pj;
      pp.batch = 1, pp.in_h = pp.out_h = oh1 - oh0;
      size_t out = (job->n * d->out_h + oh0) * d->out_w * pp.out_c;
      if (pp.residual) pp.residual += out;
      nhwc_serial(&pp, mid, job->wp, job->bp, job->y + out);
    }
  }
}

void KK(expand_depthwise_nhwc_f32)(const kk_conv_nhwc_params *e, const float *we, const float *be,
                                   const kk_conv_nhwc_params *d, const float *wd, const float *bd,
                                   const kk_conv_nhwc_params *pj, const float *wp, const float *bp, const float *x,
                                   float *y, float *scratch, size_t band, size_t chunks, size_t slot, size_t mid) {
  size_t threads = (size_t)kiln_rt_threads();
  size_t macs = e->in_h * e->in_w * e->out_c * (e->in_c + d->kernel_h * d->kernel_w) +
                (pj ? d->out_h * d->out_w * pj->in_c * pj->out_c : 0);
  kk_xdw_job job = {e, d, pj, x, we, be, wd, bd, wp, bp, y, scratch, 0, band, chunks, slot, mid};
  job.chunks = 1;
  /* One run of rows per thread: each run makes the rows it shares with the one before a second time. */
  if (threads > 1 && macs >= KK_PARALLEL_MACS) {
    job.chunks = chunks < threads ? chunks : threads;
    if (job.chunks > d->out_h) job.chunks = d->out_h;
  }
  for (job.n = 0; job.n < e->batch; job.n++) {
    if (job.chunks == 1)
      xdw_chunk(&job, 0);
    else
      kiln_rt_parallel(job.chunks, xdw_chunk, &job);
  }
}

/* Winograd F(2x2, 3x3) for 3x3 convolutions of stride 1 (Lavin and Gray, 2016): each 2x2 block ("tile") of
   output pixels is Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A, d the tile's 4x4 input window, so the 36 multiply-adds per
   output pixel and input channel of the direct form become 16 per 4 pixels: 2.25 times fewer. The
   weights arrive transformed (U = G g Gᵀ, by Passes/ChannelsLast.swift) and packed as 16 matrices
   [16][panel][2][in_c][16]; here, per block of tiles: the input transform along the channels into V
   [16][tile][in_c], 16 products V[ξ] U[ξ] on the implicit GEMM's micro-kernel into M [16][tile][panels * 32]
   (rows padded to whole panels, so every store is a full one), and the output transform with bias,
   residual and clamp into y. Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], Aᵀ = [1 1 1 0; 0 1 -1 -1]. */
#define KK_WINO_TILES 12 /* a block's V and M stay in L1 and L2 */

typedef struct {
  const kk_conv_nhwc_params *p;
  const float *x, *u, *bias, *zeros;
  float *y, *scratch;
  size_t tiles_w, tiles, panels, blocks, tasks;
} kk_wino_job;

/* The input transform of the row of d (four vectors along it) into four, in place. */
#define KK_WINO_B(d0, d1, d2, d3, e0, e1, e2, e3) \
  do {                                           \
    e0 = d0 - d2;                                \
    e1 = d1 + d2;                                \
    e2 = d2 - d1;                                \
    e3 = d1 - d3;                                \
  } while (0)

/* Tiles [first, first + count) into V, whose ξ-th matrix has `rows` rows (the block, or every tile). */
static void wino_input(const kk_wino_job *job, float *V, size_t rows, size_t first, size_t count) {
  const kk_conv_nhwc_params *p = job->p;
  size_t C = p->in_c, vectors = C / KK_VW * KK_VW, pixels_in = p->in_h * p->in_w;
  for (size_t t = 0; t < count; t++) {
    size_t tile = first + t, n = tile / (job->tiles / p->batch), in_image = tile % (job->tiles / p->batch);
    ptrdiff_t y0 = (ptrdiff_t)(2 * (in_image / job->tiles_w)) - (ptrdiff_t)p->pad_top;
    ptrdiff_t x0 = (ptrdiff_t)(2 * (in_image % job->tiles_w)) - (ptrdiff_t)p->pad_left;
    const float *window[4][4];
    for (int i = 0; i < 4; i++)
      for (int j = 0; j < 4; j++) {
        ptrdiff_t yy = y0 + i, xx = x0 + j;
        int inside = yy >= 0 && yy < (ptrdiff_t)p->in_h && xx >= 0 && xx < (ptrdiff_t)p->in_w;
        window[i][j] = inside ? job->x + (n * pixels_in + (size_t)yy * p->in_w + (size_t)xx) * C : job->zeros;
      }
    float *out = V + t * C;
    size_t plane = rows * C; /* floats between V's matrices */
    size_t c = 0;
    for (; c < vectors; c += KK_VW) {
      kk_vf d[4][4], e[4][4];
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) d[i][j] = kk_load(window[i][j] + c);
      for (int j = 0; j < 4; j++) KK_WINO_B(d[0][j], d[1][j], d[2][j], d[3][j], e[0][j], e[1][j], e[2][j], e[3][j]);
      for (int i = 0; i < 4; i++) {
        KK_WINO_B(e[i][0], e[i][1], e[i][2], e[i][3], d[i][0], d[i][1], d[i][2], d[i][3]);
        for (int j = 0; j < 4; j++) kk_store(out + (size_t)(i * 4 + j) * plane + c, d[i][j]);
      }
    }
    for (; c < C; c++) {
      float d[4][4], e[4][4];
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) d[i][j] = window[i][j][c];
      for (int j = 0; j < 4; j++) KK_WINO_B(d[0][j], d[1][j], d[2][j], d[3][j], e[0][j], e[1][j], e[2][j], e[3][j]);
      for (int i = 0; i < 4; i++) {
        KK_WINO_B(e[i][0], e[i][1], e[i][2], e[i][3], d[i][0], d[i][1], d[i][2], d[i][3]);
        for (int j = 0; j < 4; j++) out[(size_t)(i * 4 + j) * plane + c] = d[i][j];
      }
    }
  }
}

/* M[ξ] rows [0, count) = V[ξ] U[ξ] for panel j (V and M matrices with `rows` rows). */
static void wino_product(const kk_wino_job *job, const float *V, float *M, size_t rows, size_t count, size_t xi,
                         size_t j) {
  const kk_conv_nhwc_params *p = job->p;
  size_t C = p->in_c, width_m = job->panels * KK_NHWC_PANEL;
  const float *panel = job->u + (xi * job->panels + j) * C * KK_NHWC_PANEL;
  for (size_t r0 = 0; r0 < count; r0 += KK_NHWC_MR) {
    size_t mr = count - r0 < KK_NHWC_MR ? count - r0 : KK_NHWC_MR;
    kk_nhwc_segment segment = {.length = C};
    for (size_t r = 0; r < KK_NHWC_MR; r++) segment.row[r] = V + (xi * rows + r0 + (r < mr ? r : mr - 1)) * C;
    for (size_t column = j * KK_NHWC_PANEL; column < (j + 1) * KK_NHWC_PANEL && column < p->out_c;
         column += KK_NHWC_NR) {
      kk_vf acc[KK_NHWC_MR][2];
      size_t width = p->out_c - column < KK_NHWC_NR ? p->out_c - column : KK_NHWC_NR;
      nhwc_micro_any(&segment, 1, panel, C, column - j * KK_NHWC_PANEL, width, acc);
#pragma clang loop unroll(full)
      for (size_t r = 0; r < KK_NHWC_MR; r++) {
        if (r < mr) {
          float *out = M + (xi * rows + r0 + r) * width_m + column;
          kk_store(out, acc[r][0]);
          kk_store(out + KK_VW, acc[r][1]);
        }
      }
    }
  }
}

/* The output transform of one row of m (four values along it) into two. */
#define KK_WINO_A(m0, m1, m2, m3, o0, o1) \
  do {                                    \
    o0 = m0 + m1 + m2;                    \
    o1 = m1 - m2 - m3;                    \
  } while (0)

static inline __attribute__((always_inline)) void wino_output_with(const kk_wino_job *job,
                                                                   const kk_nhwc_activation *activation,
                                                                   const float *M, size_t rows, size_t first,
                                                                   size_t count) {
  const kk_conv_nhwc_params *p = job->p;
  kk_nhwc_activation act = *activation;
  size_t K = p->out_c, width_m = job->panels * KK_NHWC_PANEL, plane = rows * width_m, vectors = K / KK_VW * KK_VW;
  size_t per_image = job->tiles / p->batch;
  for (size_t t = 0; t < count; t++) {
    size_t tile = first + t, n = tile / per_image, in_image = tile % per_image;
    size_t oy = 2 * (in_image / job->tiles_w), ox = 2 * (in_image % job->tiles_w);
    const float *m = M + t * width_m;
    size_t at[2][2]; /* output element offsets of the tile's pixels; (size_t)-1 past the edge */
    for (int i = 0; i < 2; i++)
      for (int j = 0; j < 2; j++)
        at[i][j] = oy + i < p->out_h && ox + j < p->out_w
                       ? ((n * p->out_h + oy + i) * p->out_w + ox + j) * K
                       : (size_t)-1;
    size_t k = 0;
    for (; k < vectors; k += KK_VW) {
      kk_vf v[4][4], s[2][4], o[2][2];
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) v[i][j] = kk_load(m + (size_t)(i * 4 + j) * plane + k);
      for (int j = 0; j < 4; j++) KK_WINO_A(v[0][j], v[1][j], v[2][j], v[3][j], s[0][j], s[1][j]);
      for (int i = 0; i < 2; i++) KK_WINO_A(s[i][0], s[i][1], s[i][2], s[i][3], o[i][0], o[i][1]);
      kk_vf bias = job->bias ? kk_load(job->bias + k) : kk_splat(0.0f);
      for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
          if (at[i][j] == (size_t)-1) continue;
          kk_vf value = o[i][j] + bias;
          if (p->residual) value += kk_load(p->residual + at[i][j] + k);
          kk_store(job->y + at[i][j] + k, nhwc_clamp(&act, value));
        }
    }
    for (; k < K; k++) {
      float v[4][4], s[2][4], o[2][2];
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) v[i][j] = m[(size_t)(i * 4 + j) * plane + k];
      for (int j = 0; j < 4; j++) KK_WINO_A(v[0][j], v[1][j], v[2][j], v[3][j], s[0][j], s[1][j]);
      for (int i = 0; i < 2; i++) KK_WINO_A(s[i][0], s[i][1], s[i][2], s[i][3], o[i][0], o[i][1]);
      for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
          if (at[i][j] == (size_t)-1) continue;
          float value = o[i][j] + (job->bias ? job->bias[k] : 0.0f);
          if (p->residual) value += p->residual[at[i][j] + k];
          job->y[at[i][j] + k] = nhwc_clamp_scalar(&act, value);
        }
    }
  }
}

static void wino_output(const kk_wino_job *job, const float *M, size_t rows, size_t first, size_t count) {
  kk_nhwc_activation act = nhwc_activation(job->p);
  /* GELU and SiLU apart: they are a call, and a call on the way would send the transform's vectors through
     the stack. */
  if (act.special) {
    wino_output_with(job, &act, M, rows, first, count);
  } else {
    act.special = 0;
    wino_output_with(job, &act, M, rows, first, count);
  }
}

/* Floats of V and M for `rows` tiles. */
static size_t wino_floats(const kk_wino_job *job, size_t rows) {
  return 16 * rows * (job->p->in_c + job->panels * KK_NHWC_PANEL);
}

/* Task t takes blocks t, t + tasks, ... each through all three steps in its own scratch slot. */
static void wino_blocks(void *context, size_t t) {
  const kk_wino_job *job = context;
  float *V = job->scratch + t * wino_floats(job, KK_WINO_TILES), *M = V + 16 * KK_WINO_TILES * job->p->in_c;
  for (size_t block = t; block < job->blocks; block += job->tasks) {
    size_t first = block * KK_WINO_TILES, count = job->tiles - first < KK_WINO_TILES ? job->tiles - first : KK_WINO_TILES;
    wino_input(job, V, KK_WINO_TILES, first, count);
    for (size_t xi = 0; xi < 16; xi++)
      for (size_t j = 0; j < job->panels; j++) wino_product(job, V, M, KK_WINO_TILES, count, xi, j);
    wino_output(job, M, KK_WINO_TILES, first, count);
  }
}

/* Too few blocks to share: each step over every tile, shared by the threads in turn. */
static void wino_input_range(void *context, size_t first, size_t last) {
  const kk_wino_job *job = context;
  wino_input(job, job->scratch + first * job->p->in_c, job->tiles, first, last - first);
}

static void wino_product_range(void *context, size_t first, size_t last) {
  const kk_wino_job *job = context;
  const float *V = job->scratch;
  float *M = job->scratch + 16 * job->tiles * job->p->in_c;
  for (size_t unit = first; unit < last; unit++) wino_product(job, V, M, job->tiles, job->tiles, unit / job->panels, unit % job->panels);
}

static void wino_output_range(void *context, size_t first, size_t last) {
  const kk_wino_job *job = context;
  const float *M = job->scratch + 16 * job->tiles * job->p->in_c;
  wino_output(job, M + first * job->panels * KK_NHWC_PANEL, job->tiles, first, last - first);
}

void KK(conv_winograd_nhwc_f32)(const kk_conv_nhwc_params *p, const float *x, const float *u, const float *bias,
                                float *y, float *scratch) {
  size_t tiles_w = (p->out_w + 1) / 2, tiles = p->batch * ((p->out_h + 1) / 2) * tiles_w;
  kk_wino_job job = {p, x, u, bias, 0, y, scratch, tiles_w, tiles, (p->out_c + KK_NHWC_PANEL - 1) / KK_NHWC_PANEL};
  job.blocks = (tiles + KK_WINO_TILES - 1) / KK_WINO_TILES;
  /* The padding's zeros after V and M for every tile (what the lowering reserves: the blocks' slots fit). */
  float *zeros = scratch + wino_floats(&job, job.blocks * KK_WINO_TILES);
  memset(zeros, 0, p->in_c * sizeof(float));
  job.zeros = zeros;
  size_t threads = (size_t)kiln_rt_threads(), macs = 16 * tiles * p->in_c * p->out_c;
  if (threads == 1 || macs < KK_PARALLEL_MACS || job.blocks >= 4 * threads) {
    job.tasks = threads == 1 || macs < KK_PARALLEL_MACS ? 1 : 4 * threads;
    kiln_rt_parallel(job.tasks, wino_blocks, &job);
    return;
  }
  kk_parallel_range(tiles, macs, 0, wino_input_range, &job);
  kk_parallel_range(16 * job.panels, macs, 0, wino_product_range, &job);
  kk_parallel_range(tiles, macs, 0, wino_output_range, &job);
}
