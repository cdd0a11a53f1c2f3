/*
 * connx: a C view of an ONNX model held by libonnx (C++), for Swift.
 *
 * Swift never sees a C++ type. A model is an opaque handle; graphs, nodes,
 * attributes, value infos and tensors are opaque pointers into it, valid
 * until the model is freed (or, for pointers obtained before, until a call
 * that rewrites the model: convert_version, set_input_shape, infer_shapes).
 * Strings are returned as pointer + length (they may hold any bytes,
 * including NUL) and are not NUL-terminated.
 *
 * Functions that can fail return 0 on success and non-zero on failure, with
 * a one-line message written into `err` (at most `errlen` bytes, NUL
 * terminated). No C++ exception crosses this boundary.
 */
#ifndef CONNX_H
#define CONNX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct connx_model connx_model;
typedef struct connx_graph connx_graph;
typedef struct connx_node connx_node;
typedef struct connx_attr connx_attr;
typedef struct connx_value_info connx_value_info;
typedef struct connx_tensor connx_tensor;

/* The library's own limits: the highest IR version and ai.onnx opset it knows. */
int64_t connx_library_ir_version(void);
int64_t connx_library_opset(void);

/* ---- model ---- */

/* Parses the protobuf in the file at `path` without reading it whole into a
   second buffer first. Returns NULL on failure. */
connx_model *connx_parse_file(const char *path, char *err, size_t errlen);
/* Parses `len` bytes at `data`. Returns NULL on failure. */
connx_model *connx_parse_bytes(const void *data, size_t len, char *err, size_t errlen);
void connx_free(connx_model *model);

int64_t connx_ir_version(const connx_model *model);
size_t connx_opset_count(const connx_model *model);
/* Domain "" is the default ai.onnx domain. */
void connx_opset(const connx_model *model, size_t index, const char **domain, size_t *domain_len,
                 int64_t *version);
void connx_producer(const connx_model *model, const char **name, size_t *name_len,
                    const char **version, size_t *version_len);

/* Runs the ONNX checker on the whole model. `model_dir` is where external
   data files are looked up (may be NULL). */
int connx_check(const connx_model *model, const char *model_dir, char *err, size_t errlen);

/* Converts the model's ai.onnx opset to `target` with the version converter. */
int connx_convert_version(connx_model *model, int64_t target, char *err, size_t errlen);

/* Fixes graph input `index` (an index into the main graph's inputs) to the
   given static shape, replacing whatever dims it declared. */
int connx_set_input_shape(connx_model *model, size_t index, const int64_t *dims, size_t rank,
                          char *err, size_t errlen);

/* Turns graph input `index` into an initializer holding `len` raw bytes with
   the given data type and dims, and removes it from the graph's inputs. */
int connx_bind_input_constant(connx_model *model, size_t index, int32_t data_type, const int64_t *dims,
                              size_t rank, const void *data, size_t len, char *err, size_t errlen);

/* Runs ONNX shape inference over the model (strict mode, data propagation on).
   Intermediate value infos and output shapes are cleared first so that only
   what follows from the input shapes remains. */
int connx_infer_shapes(connx_model *model, char *err, size_t errlen);

/* ---- graph ---- */

const connx_graph *connx_main_graph(const connx_model *model);
void connx_graph_name(const connx_graph *g, const char **s, size_t *len);
size_t connx_graph_input_count(const connx_graph *g);
const connx_value_info *connx_graph_input(const connx_graph *g, size_t i);
size_t connx_graph_output_count(const connx_graph *g);
const connx_value_info *connx_graph_output(const connx_graph *g, size_t i);
size_t connx_graph_value_info_count(const connx_graph *g);
const connx_value_info *connx_graph_value_info(const connx_graph *g, size_t i);
size_t connx_graph_initializer_count(const connx_graph *g);
const connx_tensor *connx_graph_initializer(const connx_graph *g, size_t i);
size_t connx_graph_sparse_initializer_count(const connx_graph *g);
size_t connx_graph_node_count(const connx_graph *g);
const connx_node *connx_graph_node(const connx_graph *g, size_t i);

/* ---- value info ---- */

void connx_value_info_name(const connx_value_info *v, const char **s, size_t *len);
/* 1 when the type is a tensor type; 0 for sequences, maps, optionals,
   sparse tensors or a missing type. */
int connx_value_info_is_tensor(const connx_value_info *v);
/* The TensorProto.DataType number, 0 when unknown. */
int32_t connx_value_info_elem_type(const connx_value_info *v);
/* -1 when the shape is unknown (not even the rank). */
int64_t connx_value_info_rank(const connx_value_info *v);
/* A dim: kind 1 = value (in *value), kind 2 = symbol (in *symbol), 0 = unknown. */
int connx_value_info_dim(const connx_value_info *v, size_t i, int64_t *value, const char **symbol,
                         size_t *symbol_len);

/* ---- node ---- */

void connx_node_op_type(const connx_node *n, const char **s, size_t *len);
void connx_node_domain(const connx_node *n, const char **s, size_t *len);
void connx_node_name(const connx_node *n, const char **s, size_t *len);
size_t connx_node_input_count(const connx_node *n);
void connx_node_input(const connx_node *n, size_t i, const char **s, size_t *len);
size_t connx_node_output_count(const connx_node *n);
void connx_node_output(const connx_node *n, size_t i, const char **s, size_t *len);
size_t connx_node_attr_count(const connx_node *n);
const connx_attr *connx_node_attr(const connx_node *n, size_t i);

/* ---- attribute ---- */

/* AttributeProto.AttributeType numbers: 1 FLOAT, 2 INT, 3 STRING, 4 TENSOR,
   5 GRAPH, 6 FLOATS, 7 INTS, 8 STRINGS, 9 TENSORS, 10 GRAPHS, 11
   SPARSE_TENSOR, 12 SPARSE_TENSORS, 13 TYPE_PROTO, 14 TYPE_PROTOS. */
int32_t connx_attr_type(const connx_attr *a);
void connx_attr_name(const connx_attr *a, const char **s, size_t *len);
/* 1 when the attribute refers to a function attribute (ref_attr_name). */
int connx_attr_is_reference(const connx_attr *a);
float connx_attr_f(const connx_attr *a);
int64_t connx_attr_i(const connx_attr *a);
void connx_attr_s(const connx_attr *a, const char **s, size_t *len);
const connx_tensor *connx_attr_t(const connx_attr *a);
const connx_graph *connx_attr_g(const connx_attr *a);
size_t connx_attr_floats(const connx_attr *a, const float **values);
size_t connx_attr_ints(const connx_attr *a, const int64_t **values);
size_t connx_attr_strings_count(const connx_attr *a);
void connx_attr_string(const connx_attr *a, size_t i, const char **s, size_t *len);
size_t connx_attr_tensors_count(const connx_attr *a);
const connx_tensor *connx_attr_tensor(const connx_attr *a, size_t i);
size_t connx_attr_graphs_count(const connx_attr *a);
const connx_graph *connx_attr_graph(const connx_attr *a, size_t i);

/* ---- tensor ---- */

void connx_tensor_name(const connx_tensor *t, const char **s, size_t *len);
int32_t connx_tensor_data_type(const connx_tensor *t);
size_t connx_tensor_dims(const connx_tensor *t, const int64_t **dims);
/* 1 when the data lives in an external file (see connx_tensor_external). */
int connx_tensor_is_external(const connx_tensor *t);
/* Where the bytes are. `field` tells which TensorProto field holds them:
   0 none, 1 raw_data (bytes, little-endian), 2 float_data, 3 int32_data,
   4 string_data, 5 int64_data, 6 double_data, 7 uint64_data. For the typed
   fields *data points at `*count` elements of the field's C type (float,
   int32_t, int64_t, double, uint64_t); string_data is not returned here. */
int connx_tensor_data(const connx_tensor *t, const void **data, size_t *count);
size_t connx_tensor_external_count(const connx_tensor *t);
void connx_tensor_external_entry(const connx_tensor *t, size_t i, const char **key, size_t *key_len,
                                 const char **value, size_t *value_len);

/* ---- standalone tensors (the ONNX test data's input_N.pb / output_N.pb) ---- */

typedef struct connx_tensor_file connx_tensor_file;
/* Parses a serialized TensorProto. Returns NULL on failure. */
connx_tensor_file *connx_parse_tensor_file(const char *path, char *err, size_t errlen);
const connx_tensor *connx_tensor_file_tensor(const connx_tensor_file *file);
void connx_free_tensor_file(connx_tensor_file *file);

#ifdef __cplusplus
}
#endif

#endif
