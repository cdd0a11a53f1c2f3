/* The artifact's ABI entry points (kiln.h). Compiled for the baseline of the
   target architecture, never with the variant flags: this code must run on any
   CPU of the architecture to say which instruction sets are missing instead
   of dying of SIGILL. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln.h"
#include "kiln_model_info.h"

struct kiln_model {
  const kiln_model_info *info;
  const kiln_variant_info *variant;
  uint8_t *weights;
  uint8_t *arena;
  int threads;
};

static _Thread_local char last_error[512];

static void set_error(const char *format, const char *detail) {
  snprintf(last_error, sizeof last_error, format, detail ? detail : "");
}

const char *kiln_last_error(void) { return last_error; }

int kiln_abi_version(void) { return KILN_ABI_VERSION; }

static unsigned cpu_features(void) {
  unsigned features = 0;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx")) features |= KILN_FEATURE_AVX;
  if (__builtin_cpu_supports("avx2")) features |= KILN_FEATURE_AVX2;
  if (__builtin_cpu_supports("fma")) features |= KILN_FEATURE_FMA;
  if (__builtin_cpu_supports("f16c")) features |= KILN_FEATURE_F16C;
  if (__builtin_cpu_supports("avx512f")) features |= KILN_FEATURE_AVX512F;
  if (__builtin_cpu_supports("avx512dq")) features |= KILN_FEATURE_AVX512DQ;
  if (__builtin_cpu_supports("avx512bw")) features |= KILN_FEATURE_AVX512BW;
  if (__builtin_cpu_supports("avx512vl")) features |= KILN_FEATURE_AVX512VL;
#endif
  return features;
}

static void describe_missing(unsigned missing, char *out, size_t size) {
  static const char *names[] = {"avx", "avx2", "fma", "f16c", "avx512f", "avx512dq", "avx512bw", "avx512vl"};
  out[0] = 0;
  for (unsigned bit = 0; bit < 8; bit++)
    if (missing & (1u << bit)) {
      if (out[0]) strncat(out, ", ", size - strlen(out) - 1);
      strncat(out, names[bit], size - strlen(out) - 1);
    }
}

static void *aligned(size_t bytes) {
  void *memory = NULL;
  if (posix_memalign(&memory, 64, bytes ? bytes : 64) != 0) return NULL;
  return memory;
}

kiln_model *kiln_create(const char *weights_path, int threads) {
  last_error[0] = 0;
  const kiln_model_info *info = &kiln_model_description;
  unsigned have = cpu_features();
  const kiln_variant_info *chosen = NULL;
  for (int i = 0; i < info->variant_count && !chosen; i++)
    if ((info->variants[i].required_features & ~have) == 0) chosen = &info->variants[i];
  if (!chosen) {
    char missing[128];
    describe_missing(info->variants[info->variant_count - 1].required_features & ~have, missing, sizeof missing);
    set_error("this CPU lacks instruction sets the model's code needs: %s; compile for a target this CPU supports",
              missing);
    return NULL;
  }
  char path[4096];
  if (!weights_path) {
    Dl_info self;
    if (!dladdr((void *)&kiln_create, &self) || !self.dli_fname) {
      set_error("cannot find the shared object's directory to load weights.bin%s", NULL);
      return NULL;
    }
    snprintf(path, sizeof path, "%s", self.dli_fname);
    char *slash = strrchr(path, '/');
    if (slash)
      snprintf(slash + 1, sizeof path - (size_t)(slash + 1 - path), "weights.bin");
    else
      snprintf(path, sizeof path, "weights.bin");
    weights_path = path;
  }
  kiln_model *model = calloc(1, sizeof *model);
  if (!model) {
    set_error("out of memory%s", NULL);
    return NULL;
  }
  model->info = info;
  model->variant = chosen;
  model->threads = threads < 1 ? 1 : threads;
  model->weights = aligned(info->weights_bytes);
  model->arena = aligned(info->arena_bytes);
  if (!model->weights || !model->arena) {
    kiln_destroy(model);
    set_error("out of memory allocating the arena and weights%s", NULL);
    return NULL;
  }
  FILE *file = fopen(weights_path, "rb");
  if (!file) {
    set_error("cannot open the weights file %s", weights_path);
    kiln_destroy(model);
    return NULL;
  }
  size_t read = info->weights_bytes ? fread(model->weights, 1, info->weights_bytes, file) : 0;
  int extra = fgetc(file);
  fclose(file);
  if (read != info->weights_bytes || extra != EOF) {
    set_error("the weights file %s does not match this model (wrong size)", weights_path);
    kiln_destroy(model);
    return NULL;
  }
  return model;
}

#define CHECK_INDEX(list, count, fallback) \
  if (!model || index < 0 || index >= model->info->count) return fallback;

int kiln_input_count(const kiln_model *model) { return model ? model->info->input_count : 0; }
int kiln_output_count(const kiln_model *model) { return model ? model->info->output_count : 0; }
const char *kiln_input_name(const kiln_model *model, int index) {
  CHECK_INDEX(inputs, input_count, NULL) return model->info->inputs[index].name;
}
int kiln_input_dtype(const kiln_model *model, int index) {
  CHECK_INDEX(inputs, input_count, 0) return model->info->inputs[index].dtype;
}
int kiln_input_rank(const kiln_model *model, int index) {
  CHECK_INDEX(inputs, input_count, -1) return model->info->inputs[index].rank;
}
const int64_t *kiln_input_shape(const kiln_model *model, int index) {
  CHECK_INDEX(inputs, input_count, NULL) return model->info->inputs[index].shape;
}
const char *kiln_output_name(const kiln_model *model, int index) {
  CHECK_INDEX(outputs, output_count, NULL) return model->info->outputs[index].name;
}
int kiln_output_dtype(const kiln_model *model, int index) {
  CHECK_INDEX(outputs, output_count, 0) return model->info->outputs[index].dtype;
}
int kiln_output_rank(const kiln_model *model, int index) {
  CHECK_INDEX(outputs, output_count, -1) return model->info->outputs[index].rank;
}
const int64_t *kiln_output_shape(const kiln_model *model, int index) {
  CHECK_INDEX(outputs, output_count, NULL) return model->info->outputs[index].shape;
}
const char *kiln_variant(const kiln_model *model) { return model ? model->variant->name : NULL; }

int kiln_run(kiln_model *model, const void *const *inputs, void *const *outputs) {
  last_error[0] = 0;
  if (!model) {
    set_error("kiln_run called with a NULL model%s", NULL);
    return 1;
  }
  int status = model->variant->run(model->weights, model->arena, inputs, outputs);
  if (status != 0) set_error("the model failed at run time: %s", status == 2 ? "an index is out of range" : "error");
  return status;
}

void kiln_destroy(kiln_model *model) {
  if (!model) return;
  free(model->weights);
  free(model->arena);
  free(model);
}
