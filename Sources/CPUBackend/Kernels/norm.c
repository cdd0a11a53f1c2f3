/* Normalisations in inference form. */

#include "kiln_kernels.h"

void KK(batch_norm_f32)(const float *x, const float *scale, const float *bias, const float *mean, const float *var,
                        float epsilon, size_t n, size_t c, size_t spatial, float *y) {
  for (size_t ch = 0; ch < c; ch++) {
    float a = scale[ch] / sqrtf(var[ch] + epsilon);
    float b = bias[ch] - mean[ch] * a;
    for (size_t i = 0; i < n; i++) {
      const float *src = x + (i * c + ch) * spatial;
      float *dst = y + (i * c + ch) * spatial;
      for (size_t s = 0; s < spatial; s++) dst[s] = src[s] * a + b;
    }
  }
}

/* LayerNormalization over rows of `inner` values, a vector of them at a time: the mean, then the mean square
   of the centred values (two passes, as the NCHW kernels' double sums did, but in four vector accumulators
   each, summed in double), then (x - mean) / sqrt(var + epsilon) * scale + bias. Rows spread over threads. */
typedef struct {
  const float *x, *scale, *bias;
  float epsilon;
  size_t inner;
  float *y, *mean_out, *inv_std_out;
} kk_layer_norm_job;

static double kk_sum_lanes(const kk_vf *acc) {
  double total = 0;
  for (int a = 0; a < 4; a++)
    for (int i = 0; i < KK_VW; i++) total += acc[a][i];
  return total;
}

static void layer_norm_rows(void *context, size_t first, size_t last) {
  const kk_layer_norm_job *job = context;
  size_t inner = job->inner, blocks = inner / (4 * KK_VW) * (4 * KK_VW);
  for (size_t o = first; o < last; o++) {
    const float *row = job->x + o * inner;
    kk_vf acc[4] = {{0}};
    for (size_t i = 0; i < blocks; i += 4 * KK_VW)
      for (int a = 0; a < 4; a++) acc[a] += kk_load(row + i + a * KK_VW);
    double sum = kk_sum_lanes(acc);
    for (size_t i = blocks; i < inner; i++) sum += row[i];
    double mean = inner ? sum / (double)inner : 0;
    kk_vf centre = kk_splat((float)mean), squares[4] = {{0}};
    for (size_t i = 0; i < blocks; i += 4 * KK_VW)
      for (int a = 0; a < 4; a++) {
        kk_vf d = kk_load(row + i + a * KK_VW) - centre;
        squares[a] += d * d;
      }
    double square = kk_sum_lanes(squares);
    for (size_t i = blocks; i < inner; i++) square += ((double)row[i] - mean) * ((double)row[i] - mean);
    double inv_std = 1.0 / sqrt((inner ? square / (double)inner : 0) + (double)job->epsilon);
    float *out = job->y + o * inner;
    kk_vf factor = kk_splat((float)inv_std);
    size_t vectors = inner / KK_VW * KK_VW, i = 0;
    for (; i < vectors; i += KK_VW) {
      kk_vf value = (kk_load(row + i) - centre) * factor * kk_load(job->scale + i);
      if (job->bias) value += kk_load(job->bias + i);
      kk_store(out + i, value);
    }
    for (; i < inner; i++)
      out[i] = ((row[i] - (float)mean) * (float)inv_std) * job->scale[i] + (job->bias ? job->bias[i] : 0.0f);
    if (job->mean_out) job->mean_out[o] = (float)mean;
    if (job->inv_std_out) job->inv_std_out[o] = (float)inv_std;
  }
}

void KK(layer_norm_f32)(const float *x, const float *scale, const float *bias, float epsilon, size_t outer,
                        size_t inner, float *y, float *mean_out, float *inv_std_out) {
  kk_layer_norm_job job = {x, scale, bias, epsilon, inner, y, mean_out, inv_std_out};
  kk_parallel_range(outer, outer * inner, (size_t)1 << 15, layer_norm_rows, &job);
}
