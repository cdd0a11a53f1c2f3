/* What the generated metadata file tells the runtime about one model. Internal to artifacts. */
#ifndef KILN_MODEL_INFO_H
#define KILN_MODEL_INFO_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  const char *name;
  int dtype;
  int rank;
  const int64_t *shape;
  size_t bytes;
} kiln_tensor_info;

/* Runs the model: weights, arena, inputs, outputs. Returns 0 or an error code. */
typedef int (*kiln_run_fn)(const uint8_t *weights, uint8_t *arena, const void *const *inputs, void *const *outputs);

typedef struct {
  const char *name;          /* e.g. "haswell" */
  unsigned required_features; /* KILN_FEATURE_* bits */
  kiln_run_fn run;
} kiln_variant_info;

enum {
  KILN_FEATURE_AVX = 1u << 0,
  KILN_FEATURE_AVX2 = 1u << 1,
  KILN_FEATURE_FMA = 1u << 2,
  KILN_FEATURE_F16C = 1u << 3,
  KILN_FEATURE_AVX512F = 1u << 4,
  KILN_FEATURE_AVX512DQ = 1u << 5,
  KILN_FEATURE_AVX512BW = 1u << 6,
  KILN_FEATURE_AVX512VL = 1u << 7,
  KILN_FEATURE_NEON = 1u << 8,
  KILN_FEATURE_VFPV4 = 1u << 9,
  KILN_FEATURE_DOTPROD = 1u << 10,
  KILN_FEATURE_AVX512VNNI = 1u << 11,
  KILN_FEATURE_AVX512BF16 = 1u << 12,
  KILN_FEATURE_AVX512FP16 = 1u << 13,
};

typedef struct {
  size_t arena_bytes, weights_bytes;
  int input_count, output_count, variant_count;
  const kiln_tensor_info *inputs, *outputs;
  const kiln_variant_info *variants;
  int node_count;               /* profiling marks: one per node, then one for the output copies */
  const char *const *node_labels; /* "Conv 'name' float32[1,64,56,56]" per mark */
} kiln_model_info;

extern const kiln_model_info kiln_model_description;

#endif
