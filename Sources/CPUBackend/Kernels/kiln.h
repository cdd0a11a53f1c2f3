/*
 * kiln.h: the C ABI of a Kiln artifact (model.so, or model.dll for Windows).
 *
 *   kiln_model *m = kiln_create(NULL, 1);           // NULL: weights.bin beside model.so
 *   if (!m) { fprintf(stderr, "%s\n", kiln_last_error()); return 1; }
 *   const void *inputs[] = {input0};                 // caller-owned, dense, C order
 *   void *outputs[] = {output0};                     // caller-owned, sized from the shapes
 *   if (kiln_run(m, inputs, outputs) != 0) fprintf(stderr, "%s\n", kiln_last_error());
 *   kiln_destroy(m);
 *
 * Data types use ONNX's numbering (1 float32, 6 int32, 7 int64, 9 bool, 11 float64, ...).
 * A model handle may run on one thread at a time; create one per thread.
 */
#ifndef KILN_H
#define KILN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KILN_ABI_VERSION 1

/* Windows: the DLL exports these functions; a user of the DLL imports them. */
#if defined(_WIN32) && defined(KILN_BUILDING_ARTIFACT)
#define KILN_API __declspec(dllexport)
#elif defined(_WIN32)
#define KILN_API __declspec(dllimport)
#else
#define KILN_API
#endif

typedef struct kiln_model kiln_model;

/* The ABI version this artifact implements (KILN_ABI_VERSION when built). */
KILN_API int kiln_abi_version(void);
/* Loads the weights and checks that this CPU has the instruction sets the code needs.
   `weights_path` NULL means weights.bin in the directory of the shared object.
   `threads` is the number of threads the model may use (values < 1 mean 1).
   Returns NULL on failure; kiln_last_error() says why. */
KILN_API kiln_model *kiln_create(const char *weights_path, int threads);
/* The last error on this thread, or "" when none. */
KILN_API const char *kiln_last_error(void);

KILN_API int kiln_input_count(const kiln_model *model);
KILN_API const char *kiln_input_name(const kiln_model *model, int index);
KILN_API int kiln_input_dtype(const kiln_model *model, int index);
KILN_API int kiln_input_rank(const kiln_model *model, int index);
KILN_API const int64_t *kiln_input_shape(const kiln_model *model, int index);

KILN_API int kiln_output_count(const kiln_model *model);
KILN_API const char *kiln_output_name(const kiln_model *model, int index);
KILN_API int kiln_output_dtype(const kiln_model *model, int index);
KILN_API int kiln_output_rank(const kiln_model *model, int index);
KILN_API const int64_t *kiln_output_shape(const kiln_model *model, int index);

/* The code variant chosen at load time, e.g. "skylake-avx512" or "haswell". */
KILN_API const char *kiln_variant(const kiln_model *model);

/* Runs the model on dense, C-ordered input buffers into output buffers. Returns 0 on success. */
KILN_API int kiln_run(kiln_model *model, const void *const *inputs, void *const *outputs);

/* Profiling: the model's steps (one per graph node, then one for copying the outputs), each labelled
   like "Conv 'conv1' float32[1,64,112,112]". While `nanoseconds` (kiln_node_count entries, caller-owned) is
   set, each kiln_run on this thread adds every step's wall time into it; NULL stops. Returns 0, or 1 where
   the artifact cannot time itself (Windows and Android artifacts; kiln_last_error says so). */
KILN_API int kiln_node_count(const kiln_model *model);
KILN_API const char *kiln_node_label(const kiln_model *model, int index);
KILN_API int kiln_profile(kiln_model *model, uint64_t *nanoseconds);

KILN_API void kiln_destroy(kiln_model *model);

#ifdef __cplusplus
}
#endif

#endif
