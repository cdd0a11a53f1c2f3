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

void KK(layer_norm_f32)(const float *x, const float *scale, const float *bias, float epsilon, size_t outer,
                        size_t inner, float *y, float *mean_out, float *inv_std_out) {
  for (size_t o = 0; o < outer; o++) {
    const float *row = x + o * inner;
    double sum = 0, square = 0;
    for (size_t i = 0; i < inner; i++) sum += row[i];
    double mean = inner ? sum / (double)inner : 0;
    for (size_t i = 0; i < inner; i++) square += ((double)row[i] - mean) * ((double)row[i] - mean);
    double inv_std = 1.0 / sqrt((inner ? square / (double)inner : 0) + (double)epsilon);
    float *out = y + o * inner;
    for (size_t i = 0; i < inner; i++) {
      float normalized = (float)(((double)row[i] - mean) * inv_std);
      out[i] = normalized * scale[i] + (bias ? bias[i] : 0.0f);
    }
    if (mean_out) mean_out[o] = (float)mean;
    if (inv_std_out) inv_std_out[o] = (float)inv_std;
  }
}
