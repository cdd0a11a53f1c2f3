// connx: the C ABI over libonnx that Swift calls. See include/connx.h.
//
// Every entry point that can throw is wrapped in `guarded`, so libonnx's
// ValidationError, InferenceError, ConvertError and any std::exception come
// back as a message, never as an exception crossing into Swift.

#include "connx.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <exception>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "onnx/checker.h"
#include "onnx/common/version.h"
#include "onnx/defs/schema.h"
#include "onnx/onnx_pb.h"
#include "onnx/shape_inference/implementation.h"
// SwiftPM defines DEBUG=1 in debug builds; libonnx uses DEBUG as a member name.
#pragma push_macro("DEBUG")
#undef DEBUG
#include "onnx/version_converter/convert.h"
#pragma pop_macro("DEBUG")

struct connx_model {
  onnx::ModelProto proto;
};

namespace {

void write_error(char *err, size_t errlen, const std::string &message) {
  if (err == nullptr || errlen == 0) return;
  // Keep the message to one line: a failure reason is a single line.
  std::string line;
  line.reserve(message.size());
  for (char c : message) line.push_back(c == '\n' || c == '\r' ? ' ' : c);
  size_t n = line.size() < errlen - 1 ? line.size() : errlen - 1;
  std::memcpy(err, line.data(), n);
  err[n] = '\0';
}

template <typename F>
int guarded(char *err, size_t errlen, F &&body) {
  try {
    body();
    return 0;
  } catch (const std::exception &e) {
    write_error(err, errlen, e.what());
  } catch (...) {
    write_error(err, errlen, "unknown C++ exception in libonnx");
  }
  return 1;
}

void out(const std::string &s, const char **p, size_t *len) {
  *p = s.data();
  *len = s.size();
}

const onnx::GraphProto &G(const connx_graph *g) { return *reinterpret_cast<const onnx::GraphProto *>(g); }
const onnx::NodeProto &N(const connx_node *n) { return *reinterpret_cast<const onnx::NodeProto *>(n); }
const onnx::AttributeProto &A(const connx_attr *a) {
  return *reinterpret_cast<const onnx::AttributeProto *>(a);
}
const onnx::ValueInfoProto &V(const connx_value_info *v) {
  return *reinterpret_cast<const onnx::ValueInfoProto *>(v);
}
const onnx::TensorProto &T(const connx_tensor *t) { return *reinterpret_cast<const onnx::TensorProto *>(t); }

const connx_graph *wrap(const onnx::GraphProto &g) { return reinterpret_cast<const connx_graph *>(&g); }
const connx_tensor *wrap(const onnx::TensorProto &t) { return reinterpret_cast<const connx_tensor *>(&t); }
const connx_value_info *wrap(const onnx::ValueInfoProto &v) {
  return reinterpret_cast<const connx_value_info *>(&v);
}

// The same steps as onnx::checker::check_model(const ModelProto&), but with
// the model directory set so that external data locations are checked
// against the unpacked archive rather than the process's working directory.
void check_model_in_dir(const onnx::ModelProto &model, const std::string &model_dir) {
  using namespace onnx::checker;
  if (!model.ir_version()) fail_check("The model does not have an ir_version set properly.");
  if (model.ir_version() > onnx::IR_VERSION) fail_check("Your model ir_version is higher than the checker's.");
  std::unordered_set<std::string> keys;
  for (const auto &entry : model.metadata_props()) {
    if (!keys.insert(entry.key()).second) fail_check("Your model has duplicate keys in metadata_props.");
  }
  CheckerContext ctx;
  ctx.set_ir_version(static_cast<int>(model.ir_version()));
  ctx.set_model_dir(model_dir);
  std::unordered_map<std::string, int> opset_imports;
  for (const auto &opset : model.opset_import()) opset_imports[opset.domain()] = static_cast<int>(opset.version());
  if (model.ir_version() >= 3) {
    if (opset_imports.empty()) fail_check("model with IR version >= 3 must specify opset_import for ONNX");
  } else {
    if (opset_imports.empty())
      opset_imports[onnx::ONNX_DOMAIN] = 1;
    else
      fail_check("model with IR version < 3 cannot have opset_import specified");
  }
  ctx.set_opset_imports(opset_imports);
  LexicalScopeContext lex;
  check_graph(model.graph(), ctx, lex);
  if (ctx.get_ir_version() >= 0x00000008) check_model_local_functions(model, ctx, lex);
}

}  // namespace

extern "C" {

int64_t connx_library_ir_version(void) { return onnx::IR_VERSION; }

int64_t connx_library_opset(void) {
  return onnx::OpSchemaRegistry::DomainToVersionRange::Instance().Map().at(onnx::ONNX_DOMAIN).second;
}

connx_model *connx_parse_file(const char *path, char *err, size_t errlen) {
  auto *model = new connx_model();
  int fd = -1;
  int rc = guarded(err, errlen, [&] {
    fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error(std::string("cannot open: ") + std::strerror(errno));
    google::protobuf::io::FileInputStream stream(fd);
    if (!model->proto.ParseFromZeroCopyStream(&stream))
      throw std::runtime_error("not a valid ONNX protobuf (parsing ModelProto failed)");
  });
  if (fd >= 0) ::close(fd);
  if (rc != 0) {
    delete model;
    return nullptr;
  }
  return model;
}

connx_model *connx_parse_bytes(const void *data, size_t len, char *err, size_t errlen) {
  auto *model = new connx_model();
  int rc = guarded(err, errlen, [&] {
    google::protobuf::io::ArrayInputStream stream(data, static_cast<int>(len));
    if (len > static_cast<size_t>(INT32_MAX) || !model->proto.ParseFromZeroCopyStream(&stream))
      throw std::runtime_error("not a valid ONNX protobuf (parsing ModelProto failed)");
  });
  if (rc != 0) {
    delete model;
    return nullptr;
  }
  return model;
}

void connx_free(connx_model *model) { delete model; }

int64_t connx_ir_version(const connx_model *model) { return model->proto.ir_version(); }

size_t connx_opset_count(const connx_model *model) { return model->proto.opset_import_size(); }

void connx_opset(const connx_model *model, size_t index, const char **domain, size_t *domain_len,
                 int64_t *version) {
  const auto &opset = model->proto.opset_import(static_cast<int>(index));
  out(opset.domain(), domain, domain_len);
  *version = opset.version();
}

void connx_producer(const connx_model *model, const char **name, size_t *name_len, const char **version,
                    size_t *version_len) {
  out(model->proto.producer_name(), name, name_len);
  out(model->proto.producer_version(), version, version_len);
}

int connx_check(const connx_model *model, const char *model_dir, char *err, size_t errlen) {
  return guarded(err, errlen, [&] { check_model_in_dir(model->proto, model_dir ? model_dir : ""); });
}

int connx_convert_version(connx_model *model, int64_t target, char *err, size_t errlen) {
  return guarded(err, errlen, [&] {
    onnx::ModelProto converted = onnx::version_conversion::ConvertVersion(model->proto, static_cast<int>(target));
    model->proto = std::move(converted);
  });
}

int connx_set_input_shape(connx_model *model, size_t index, const int64_t *dims, size_t rank, char *err,
                          size_t errlen) {
  return guarded(err, errlen, [&] {
    auto *graph = model->proto.mutable_graph();
    if (index >= static_cast<size_t>(graph->input_size())) throw std::out_of_range("graph input index");
    auto *type = graph->mutable_input(static_cast<int>(index))->mutable_type();
    if (!type->has_tensor_type()) throw std::runtime_error("graph input is not a tensor");
    auto *shape = type->mutable_tensor_type()->mutable_shape();
    shape->clear_dim();
    for (size_t i = 0; i < rank; i++) shape->add_dim()->set_dim_value(dims[i]);
  });
}

int connx_bind_input_constant(connx_model *model, size_t index, int32_t data_type, const int64_t *dims,
                              size_t rank, const void *data, size_t len, char *err, size_t errlen) {
  return guarded(err, errlen, [&] {
    auto *graph = model->proto.mutable_graph();
    if (index >= static_cast<size_t>(graph->input_size())) throw std::out_of_range("graph input index");
    auto *tensor = graph->add_initializer();
    tensor->set_name(graph->input(static_cast<int>(index)).name());
    tensor->set_data_type(data_type);
    for (size_t i = 0; i < rank; i++) tensor->add_dims(dims[i]);
    tensor->set_raw_data(data, len);
    graph->mutable_input()->DeleteSubrange(static_cast<int>(index), 1);
  });
}

int connx_infer_shapes(connx_model *model, char *err, size_t errlen) {
  return guarded(err, errlen, [&] {
    auto *graph = model->proto.mutable_graph();
    graph->clear_value_info();
    for (auto &output : *graph->mutable_output()) {
      if (output.type().has_tensor_type()) output.mutable_type()->mutable_tensor_type()->clear_shape();
    }
    onnx::ShapeInferenceOptions options(/*check_type=*/true, /*strict=*/1, /*data_prop=*/true);
    onnx::shape_inference::InferShapes(model->proto, onnx::OpSchemaRegistry::Instance(), options);
  });
}

const connx_graph *connx_main_graph(const connx_model *model) { return wrap(model->proto.graph()); }

void connx_graph_name(const connx_graph *g, const char **s, size_t *len) { out(G(g).name(), s, len); }
size_t connx_graph_input_count(const connx_graph *g) { return G(g).input_size(); }
const connx_value_info *connx_graph_input(const connx_graph *g, size_t i) {
  return wrap(G(g).input(static_cast<int>(i)));
}
size_t connx_graph_output_count(const connx_graph *g) { return G(g).output_size(); }
const connx_value_info *connx_graph_output(const connx_graph *g, size_t i) {
  return wrap(G(g).output(static_cast<int>(i)));
}
size_t connx_graph_value_info_count(const connx_graph *g) { return G(g).value_info_size(); }
const connx_value_info *connx_graph_value_info(const connx_graph *g, size_t i) {
  return wrap(G(g).value_info(static_cast<int>(i)));
}
size_t connx_graph_initializer_count(const connx_graph *g) { return G(g).initializer_size(); }
const connx_tensor *connx_graph_initializer(const connx_graph *g, size_t i) {
  return wrap(G(g).initializer(static_cast<int>(i)));
}
size_t connx_graph_sparse_initializer_count(const connx_graph *g) { return G(g).sparse_initializer_size(); }
size_t connx_graph_node_count(const connx_graph *g) { return G(g).node_size(); }
const connx_node *connx_graph_node(const connx_graph *g, size_t i) {
  return reinterpret_cast<const connx_node *>(&G(g).node(static_cast<int>(i)));
}

void connx_value_info_name(const connx_value_info *v, const char **s, size_t *len) { out(V(v).name(), s, len); }
int connx_value_info_is_tensor(const connx_value_info *v) { return V(v).type().has_tensor_type() ? 1 : 0; }
int32_t connx_value_info_elem_type(const connx_value_info *v) {
  return V(v).type().has_tensor_type() ? V(v).type().tensor_type().elem_type() : 0;
}
int64_t connx_value_info_rank(const connx_value_info *v) {
  const auto &type = V(v).type();
  if (!type.has_tensor_type() || !type.tensor_type().has_shape()) return -1;
  return type.tensor_type().shape().dim_size();
}
int connx_value_info_dim(const connx_value_info *v, size_t i, int64_t *value, const char **symbol,
                         size_t *symbol_len) {
  const auto &dim = V(v).type().tensor_type().shape().dim(static_cast<int>(i));
  if (dim.has_dim_value()) {
    *value = dim.dim_value();
    return 1;
  }
  if (dim.has_dim_param() && !dim.dim_param().empty()) {
    out(dim.dim_param(), symbol, symbol_len);
    return 2;
  }
  return 0;
}

void connx_node_op_type(const connx_node *n, const char **s, size_t *len) { out(N(n).op_type(), s, len); }
void connx_node_domain(const connx_node *n, const char **s, size_t *len) { out(N(n).domain(), s, len); }
void connx_node_name(const connx_node *n, const char **s, size_t *len) { out(N(n).name(), s, len); }
size_t connx_node_input_count(const connx_node *n) { return N(n).input_size(); }
void connx_node_input(const connx_node *n, size_t i, const char **s, size_t *len) {
  out(N(n).input(static_cast<int>(i)), s, len);
}
size_t connx_node_output_count(const connx_node *n) { return N(n).output_size(); }
void connx_node_output(const connx_node *n, size_t i, const char **s, size_t *len) {
  out(N(n).output(static_cast<int>(i)), s, len);
}
size_t connx_node_attr_count(const connx_node *n) { return N(n).attribute_size(); }
const connx_attr *connx_node_attr(const connx_node *n, size_t i) {
  return reinterpret_cast<const connx_attr *>(&N(n).attribute(static_cast<int>(i)));
}

int32_t connx_attr_type(const connx_attr *a) { return A(a).type(); }
void connx_attr_name(const connx_attr *a, const char **s, size_t *len) { out(A(a).name(), s, len); }
int connx_attr_is_reference(const connx_attr *a) { return A(a).ref_attr_name().empty() ? 0 : 1; }
float connx_attr_f(const connx_attr *a) { return A(a).f(); }
int64_t connx_attr_i(const connx_attr *a) { return A(a).i(); }
void connx_attr_s(const connx_attr *a, const char **s, size_t *len) { out(A(a).s(), s, len); }
const connx_tensor *connx_attr_t(const connx_attr *a) { return wrap(A(a).t()); }
const connx_graph *connx_attr_g(const connx_attr *a) { return wrap(A(a).g()); }
size_t connx_attr_floats(const connx_attr *a, const float **values) {
  *values = A(a).floats().data();
  return A(a).floats_size();
}
size_t connx_attr_ints(const connx_attr *a, const int64_t **values) {
  *values = A(a).ints().data();
  return A(a).ints_size();
}
size_t connx_attr_strings_count(const connx_attr *a) { return A(a).strings_size(); }
void connx_attr_string(const connx_attr *a, size_t i, const char **s, size_t *len) {
  out(A(a).strings(static_cast<int>(i)), s, len);
}
size_t connx_attr_tensors_count(const connx_attr *a) { return A(a).tensors_size(); }
const connx_tensor *connx_attr_tensor(const connx_attr *a, size_t i) {
  return wrap(A(a).tensors(static_cast<int>(i)));
}
size_t connx_attr_graphs_count(const connx_attr *a) { return A(a).graphs_size(); }
const connx_graph *connx_attr_graph(const connx_attr *a, size_t i) { return wrap(A(a).graphs(static_cast<int>(i))); }

void connx_tensor_name(const connx_tensor *t, const char **s, size_t *len) { out(T(t).name(), s, len); }
int32_t connx_tensor_data_type(const connx_tensor *t) { return T(t).data_type(); }
size_t connx_tensor_dims(const connx_tensor *t, const int64_t **dims) {
  *dims = T(t).dims().data();
  return T(t).dims_size();
}
int connx_tensor_is_external(const connx_tensor *t) {
  return T(t).data_location() == onnx::TensorProto::EXTERNAL ? 1 : 0;
}
int connx_tensor_data(const connx_tensor *t, const void **data, size_t *count) {
  const auto &tensor = T(t);
  if (tensor.has_raw_data()) {
    *data = tensor.raw_data().data();
    *count = tensor.raw_data().size();
    return 1;
  }
  if (tensor.float_data_size() > 0) {
    *data = tensor.float_data().data();
    *count = tensor.float_data_size();
    return 2;
  }
  if (tensor.int32_data_size() > 0) {
    *data = tensor.int32_data().data();
    *count = tensor.int32_data_size();
    return 3;
  }
  if (tensor.string_data_size() > 0) {
    *data = nullptr;
    *count = tensor.string_data_size();
    return 4;
  }
  if (tensor.int64_data_size() > 0) {
    *data = tensor.int64_data().data();
    *count = tensor.int64_data_size();
    return 5;
  }
  if (tensor.double_data_size() > 0) {
    *data = tensor.double_data().data();
    *count = tensor.double_data_size();
    return 6;
  }
  if (tensor.uint64_data_size() > 0) {
    *data = tensor.uint64_data().data();
    *count = tensor.uint64_data_size();
    return 7;
  }
  *data = nullptr;
  *count = 0;
  return 0;
}
size_t connx_tensor_external_count(const connx_tensor *t) { return T(t).external_data_size(); }
void connx_tensor_external_entry(const connx_tensor *t, size_t i, const char **key, size_t *key_len,
                                 const char **value, size_t *value_len) {
  const auto &entry = T(t).external_data(static_cast<int>(i));
  out(entry.key(), key, key_len);
  out(entry.value(), value, value_len);
}

struct connx_tensor_file {
  onnx::TensorProto proto;
};

connx_tensor_file *connx_parse_tensor_file(const char *path, char *err, size_t errlen) {
  auto *file = new connx_tensor_file();
  int fd = -1;
  int rc = guarded(err, errlen, [&] {
    fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error(std::string("cannot open: ") + std::strerror(errno));
    google::protobuf::io::FileInputStream stream(fd);
    if (!file->proto.ParseFromZeroCopyStream(&stream)) throw std::runtime_error("not a TensorProto");
  });
  if (fd >= 0) ::close(fd);
  if (rc != 0) {
    delete file;
    return nullptr;
  }
  return file;
}

const connx_tensor *connx_tensor_file_tensor(const connx_tensor_file *file) { return wrap(file->proto); }

void connx_free_tensor_file(connx_tensor_file *file) { delete file; }

}  // extern "C"
