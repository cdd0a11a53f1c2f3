/*
 * kiln_runner: loads a Kiln artifact through its C ABI and runs it. `kiln run`
 * and `kiln bench` build it for an artifact's own CPU and start it under
 * qemu-user when the artifact was compiled for another architecture. Not part
 * of any artifact; a hosted C program (needs the target's C library).
 *
 *   kiln_runner LIBRARY WEIGHTS THREADS WARMUP ITERATIONS INPUT... OUTPUT:BYTES...
 *
 * Inputs are raw tensor files in the model's input order; the last run's
 * outputs are written raw to the OUTPUT files. Prints "variant NAME" and
 * "times MS..." on stdout; on failure one line on stderr and exit status 1.
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kiln.h"

static int fail(const char *what, const char *detail) {
  fprintf(stderr, "%s%s\n", what, detail ? detail : "");
  return 1;
}

static void *symbol(void *library, const char *name) {
  void *found = dlsym(library, name);
  if (!found) {
    fprintf(stderr, "the library does not export %s; it is not a Kiln artifact\n", name);
    exit(1);
  }
  return found;
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
  if (argc < 6) return fail("usage: kiln_runner LIBRARY WEIGHTS THREADS WARMUP ITERATIONS INPUT... OUTPUT:BYTES...", NULL);
  void *library = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!library) return fail("cannot load the artifact: ", dlerror());
  kiln_model *(*create)(const char *, int) = (kiln_model * (*)(const char *, int)) symbol(library, "kiln_create");
  const char *(*last_error)(void) = (const char *(*)(void))symbol(library, "kiln_last_error");
  int (*input_count)(const kiln_model *) = (int (*)(const kiln_model *))symbol(library, "kiln_input_count");
  int (*output_count)(const kiln_model *) = (int (*)(const kiln_model *))symbol(library, "kiln_output_count");
  const char *(*variant)(const kiln_model *) = (const char *(*)(const kiln_model *))symbol(library, "kiln_variant");
  int (*run)(kiln_model *, const void *const *, void *const *) =
      (int (*)(kiln_model *, const void *const *, void *const *))symbol(library, "kiln_run");
  kiln_model *model = create(argv[2], atoi(argv[3]));
  if (!model) return fail("cannot run this artifact here: ", last_error());
  int warmup = atoi(argv[4]), iterations = atoi(argv[5]);
  int inputs = input_count(model), outputs = output_count(model);
  if (argc != 6 + inputs + outputs) return fail("wrong number of input and output files", NULL);
  const void **in = calloc(inputs + 1, sizeof *in);
  void **out = calloc(outputs + 1, sizeof *out);
  size_t *out_bytes = calloc(outputs + 1, sizeof *out_bytes);
  for (int i = 0; i < inputs; i++) {
    FILE *file = fopen(argv[6 + i], "rb");
    if (!file) return fail("cannot open ", argv[6 + i]);
    fseek(file, 0, SEEK_END);
    long size = ftell(file);
    fseek(file, 0, SEEK_SET);
    void *buffer = aligned_alloc(64, ((size_t)size + 64) / 64 * 64);
    if (!buffer || fread(buffer, 1, (size_t)size, file) != (size_t)size) return fail("cannot read ", argv[6 + i]);
    fclose(file);
    in[i] = buffer;
  }
  for (int i = 0; i < outputs; i++) {
    char *colon = strrchr(argv[6 + inputs + i], ':');
    if (!colon) return fail("an output is not FILE:BYTES: ", argv[6 + inputs + i]);
    *colon = 0;
    out_bytes[i] = strtoull(colon + 1, NULL, 10);
    out[i] = aligned_alloc(64, (out_bytes[i] + 64) / 64 * 64);
    if (!out[i]) return fail("out of memory", NULL);
  }
  printf("variant %s\ntimes", variant(model));
  for (int i = 0; i < warmup + iterations; i++) {
    double start = now_ms();
    if (run(model, in, out) != 0) return fail("", last_error());
    if (i >= warmup) printf(" %.6f", now_ms() - start);
  }
  printf("\n");
  for (int i = 0; i < outputs; i++) {
    FILE *file = fopen(argv[6 + inputs + i], "wb");
    if (!file || fwrite(out[i], 1, out_bytes[i], file) != out_bytes[i] || fclose(file) != 0)
      return fail("cannot write ", argv[6 + inputs + i]);
  }
  return 0;
}
