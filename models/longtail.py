#!/usr/bin/env python3
"""The long tail of real models, checked against ONNX Runtime: classic-ML
(ai.onnx.ml) models built with onnx.helper, int8/uint8 models quantized with
onnxruntime.quantization (dynamic, static QOperator, static QDQ), LSTM,
control flow (If, Loop, Scan) and scalar inputs. Each model is generated with
seeded data, compiled with `kiln compile` for this machine, run with
`kiln run`, and compared with ONNX Runtime on the same inputs: integer
outputs must be equal, float outputs within max |kiln - ort| / max |ort| <= 1e-4.
Prints one line per model and ends with "longtail: N passed, M failed".

Usage: python3 models/longtail.py [--kiln .build/debug/kiln] [name ...]
(pip install numpy onnx onnxruntime)
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ML = [helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)]
MODELS = {}


def model(name):
    def register(function):
        MODELS[name] = function
        return function
    return register


def graph_model(nodes, inputs, outputs, initializers=(), opsets=None):
    graph = helper.make_graph(nodes, "longtail", inputs, outputs, list(initializers))
    built = helper.make_model(graph, opset_imports=opsets or [helper.make_opsetid("", 17)])
    built.ir_version = 8
    onnx.checker.check_model(built)
    return built


def tensor(name, type, shape):
    return helper.make_tensor_value_info(name, type, shape)


# ---------------------------------------------------------------- classic ML

def random_trees(rng, trees, depth, features, targets, class_mode):
    """Full binary trees in ONNX's attribute form; class_mode 'all' puts a weight for every target on each
    leaf, 'one' a single weight on target 0."""
    attrs = {k: [] for k in ["nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_values", "nodes_modes",
                             "nodes_truenodeids", "nodes_falsenodeids", "nodes_missing_value_tracks_true"]}
    weights = {k: [] for k in ["treeids", "nodeids", "ids", "weights"]}
    modes = ["BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT"]
    for tree in range(trees):
        count = 2 ** (depth + 1) - 1
        for node in range(count):
            leaf = node >= 2 ** depth - 1
            attrs["nodes_treeids"].append(tree)
            attrs["nodes_nodeids"].append(node)
            attrs["nodes_featureids"].append(0 if leaf else int(rng.integers(features)))
            attrs["nodes_values"].append(0.0 if leaf else float(np.round(rng.standard_normal(), 3)))
            attrs["nodes_modes"].append("LEAF" if leaf else modes[int(rng.integers(len(modes)))])
            attrs["nodes_truenodeids"].append(0 if leaf else 2 * node + 1)
            attrs["nodes_falsenodeids"].append(0 if leaf else 2 * node + 2)
            attrs["nodes_missing_value_tracks_true"].append(int(rng.integers(2)))
            if leaf:
                for target in (range(targets) if class_mode == "all" else [0]):
                    weights["treeids"].append(tree)
                    weights["nodeids"].append(node)
                    weights["ids"].append(target)
                    weights["weights"].append(float(np.round(rng.uniform(-1, 1), 3)))
    return attrs, weights


def tree_classifier(seed, classes, class_mode, post, base=None, positive=False, scale=1.0):
    rng = np.random.default_rng(seed)
    attrs, weights = random_trees(rng, 4, 3, 5, classes, class_mode)
    if positive:
        weights["weights"] = [abs(w) * scale for w in weights["weights"]]
    extra = {"base_values": base} if base else {}
    node = helper.make_node(
        "TreeEnsembleClassifier", ["X"], ["label", "probabilities"], domain="ai.onnx.ml",
        classlabels_int64s=list(range(10, 10 + classes)), post_transform=post,
        class_treeids=weights["treeids"], class_nodeids=weights["nodeids"], class_ids=weights["ids"],
        class_weights=weights["weights"], **attrs, **extra)
    x = rng.standard_normal((16, 5)).astype(np.float32)
    x[3, 2] = np.nan
    built = graph_model([node], [tensor("X", TensorProto.FLOAT, [16, 5])],
                        [tensor("label", TensorProto.INT64, [16]), tensor("probabilities", TensorProto.FLOAT, [16, classes])],
                        opsets=ML)
    return built, {"X": x}


model("tree-classifier-multiclass")(lambda: tree_classifier(1, 3, "all", "NONE", base=[0.1, -0.2, 0.3]))
model("tree-classifier-softmax")(lambda: tree_classifier(2, 4, "all", "SOFTMAX"))
model("tree-classifier-binary")(lambda: tree_classifier(3, 2, "all", "NONE"))
model("tree-classifier-binary-logistic")(lambda: tree_classifier(4, 2, "one", "LOGISTIC"))
model("tree-classifier-binary-positive")(lambda: tree_classifier(5, 2, "one", "NONE", positive=True))
model("tree-classifier-probit")(lambda: tree_classifier(14, 3, "all", "PROBIT", positive=True, scale=0.2))


def tree_regressor(seed, targets, aggregate, base=None, post="NONE"):
    rng = np.random.default_rng(seed)
    attrs, weights = random_trees(rng, 5, 3, 6, targets, "all")
    extra = {"base_values": base} if base else {}
    node = helper.make_node(
        "TreeEnsembleRegressor", ["X"], ["Y"], domain="ai.onnx.ml", n_targets=targets, aggregate_function=aggregate,
        post_transform=post, target_treeids=weights["treeids"], target_nodeids=weights["nodeids"],
        target_ids=weights["ids"], target_weights=weights["weights"], **attrs, **extra)
    x = rng.standard_normal((8, 6)).astype(np.float32)
    built = graph_model([node], [tensor("X", TensorProto.FLOAT, [8, 6])], [tensor("Y", TensorProto.FLOAT, [8, targets])],
                        opsets=ML)
    return built, {"X": x}


model("tree-regressor-sum")(lambda: tree_regressor(6, 2, "SUM", base=[0.5, -0.5]))
model("tree-regressor-average")(lambda: tree_regressor(7, 1, "AVERAGE", base=[1.5]))
model("tree-regressor-min")(lambda: tree_regressor(8, 3, "MIN"))
model("tree-regressor-max")(lambda: tree_regressor(9, 1, "MAX"))


@model("linear-classifier-pipeline")
def linear_classifier_pipeline():
    """skl2onnx's LogisticRegression shape: Scaler → LinearClassifier (softmax) → Normalizer, int labels."""
    rng = np.random.default_rng(10)
    nodes = [
        helper.make_node("Scaler", ["X"], ["scaled"], domain="ai.onnx.ml", offset=[0.1, -0.2, 0.3, 0.0],
                         scale=[2.0, 0.5, 1.0, 3.0]),
        helper.make_node("LinearClassifier", ["scaled"], ["label", "raw"], domain="ai.onnx.ml",
                         coefficients=rng.standard_normal(12).round(3).tolist(), intercepts=[0.1, 0.0, -0.1],
                         classlabels_ints=[3, 5, 7], post_transform="SOFTMAX", multi_class=1),
        helper.make_node("Normalizer", ["raw"], ["probabilities"], domain="ai.onnx.ml", norm="L1"),
    ]
    built = graph_model(nodes, [tensor("X", TensorProto.FLOAT, [10, 4])],
                        [tensor("label", TensorProto.INT64, [10]), tensor("probabilities", TensorProto.FLOAT, [10, 3])],
                        opsets=ML)
    return built, {"X": rng.standard_normal((10, 4)).astype(np.float32)}


@model("linear-classifier-binary")
def linear_classifier_binary():
    rng = np.random.default_rng(11)
    node = helper.make_node("LinearClassifier", ["X"], ["label", "probabilities"], domain="ai.onnx.ml",
                            coefficients=rng.standard_normal(4).round(3).tolist(), intercepts=[0.2],
                            classlabels_ints=[0, 1], post_transform="LOGISTIC")
    built = graph_model([node], [tensor("X", TensorProto.FLOAT, [10, 4])],
                        [tensor("label", TensorProto.INT64, [10]), tensor("probabilities", TensorProto.FLOAT, [10, 2])],
                        opsets=ML)
    return built, {"X": rng.standard_normal((10, 4)).astype(np.float32)}


@model("linear-regressor")
def linear_regressor():
    rng = np.random.default_rng(12)
    node = helper.make_node("LinearRegressor", ["X"], ["Y"], domain="ai.onnx.ml", targets=2,
                            coefficients=rng.standard_normal(10).round(3).tolist(), intercepts=[0.5, -1.0])
    built = graph_model([node], [tensor("X", TensorProto.FLOAT, [6, 5])], [tensor("Y", TensorProto.FLOAT, [6, 2])],
                        opsets=ML)
    return built, {"X": rng.standard_normal((6, 5)).astype(np.float32)}


@model("ml-preprocessing")
def ml_preprocessing():
    rng = np.random.default_rng(13)
    nodes = [
        helper.make_node("Normalizer", ["X"], ["l2"], domain="ai.onnx.ml", norm="L2"),
        helper.make_node("Normalizer", ["X"], ["mx"], domain="ai.onnx.ml", norm="MAX"),
        helper.make_node("Binarizer", ["X"], ["bin"], domain="ai.onnx.ml", threshold=0.25),
        helper.make_node("ArrayFeatureExtractor", ["X", "pick"], ["picked"], domain="ai.onnx.ml"),
        helper.make_node("LabelEncoder", ["codes"], ["mapped"], domain="ai.onnx.ml", keys_int64s=[1, 2, 3],
                         values_int64s=[10, 20, 30], default_int64=-7),
        helper.make_node("LabelEncoder", ["codes"], ["weights"], domain="ai.onnx.ml", keys_int64s=[1, 2],
                         values_floats=[0.5, 1.5], default_float=-1.0),
    ]
    built = graph_model(
        nodes, [tensor("X", TensorProto.FLOAT, [5, 4]), tensor("codes", TensorProto.INT64, [7])],
        [tensor("l2", TensorProto.FLOAT, [5, 4]), tensor("mx", TensorProto.FLOAT, [5, 4]),
         tensor("bin", TensorProto.FLOAT, [5, 4]), tensor("picked", TensorProto.FLOAT, [5, 2]),
         tensor("mapped", TensorProto.INT64, [7]), tensor("weights", TensorProto.FLOAT, [7])],
        [numpy_helper.from_array(np.array([3, 0], dtype=np.int64), "pick")], opsets=ML)
    return built, {"X": rng.standard_normal((5, 4)).astype(np.float32),
                   "codes": np.array([1, 2, 3, 4, 0, 2, 1], dtype=np.int64)}


# ---------------------------------------------------------------- quantized

def small_cnn(seed):
    """A float CNN for the quantizers: Conv-Relu-Conv + residual Add, GlobalAveragePool, MatMul head."""
    rng = np.random.default_rng(seed)

    def weight(name, shape, scale):
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    inits = [weight("w1", (8, 3, 3, 3), 0.3), weight("b1", (8,), 0.1), weight("w2", (8, 8, 3, 3), 0.15),
             weight("b2", (8,), 0.1), weight("fc", (8, 10), 0.3), weight("fcb", (10,), 0.1),
             numpy_helper.from_array(np.array([1, 8], dtype=np.int64), "flat")]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c2", "r1"], ["sum"]),
        helper.make_node("Relu", ["sum"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["pool"]),
        helper.make_node("Reshape", ["pool", "flat"], ["v"]),
        helper.make_node("MatMul", ["v", "fc"], ["mm"]),
        helper.make_node("Add", ["mm", "fcb"], ["y"]),
    ]
    built = graph_model(nodes, [tensor("x", TensorProto.FLOAT, [1, 3, 12, 12])], [tensor("y", TensorProto.FLOAT, [1, 10])],
                        inits, opsets=[helper.make_opsetid("", 13)])
    return built, {"x": rng.standard_normal((1, 3, 12, 12)).astype(np.float32)}


def quantized(kind, seed):
    from onnxruntime import quantization as q
    built, inputs = small_cnn(seed)
    work = tempfile.mkdtemp(prefix="kiln-quant-")
    source, target = os.path.join(work, "float.onnx"), os.path.join(work, "quant.onnx")
    onnx.save(built, source)
    if kind == "dynamic":
        q.quantize_dynamic(source, target, weight_type=q.QuantType.QUInt8, op_types_to_quantize=["Conv", "MatMul"])
    else:
        rng = np.random.default_rng(seed + 100)
        samples = [{"x": rng.standard_normal((1, 3, 12, 12)).astype(np.float32)} for _ in range(8)]

        class Reader(q.CalibrationDataReader):
            def __init__(self):
                self.items = iter(samples)

            def get_next(self):
                return next(self.items, None)

        q.quantize_static(source, target, Reader(),
                          quant_format=q.QuantFormat.QOperator if kind == "qoperator" else q.QuantFormat.QDQ,
                          activation_type=q.QuantType.QUInt8, weight_type=q.QuantType.QInt8, per_channel=kind == "qdq")
    return onnx.load(target), inputs


model("quantized-dynamic-cnn")(lambda: quantized("dynamic", 20))
model("quantized-static-qoperator-cnn")(lambda: quantized("qoperator", 21))
model("quantized-static-qdq-cnn")(lambda: quantized("qdq", 22))


@model("quantize-roundtrip")
def quantize_roundtrip():
    """QuantizeLinear per axis to int8, DynamicQuantizeLinear, MatMulInteger with per-row zero points."""
    rng = np.random.default_rng(23)
    inits = [numpy_helper.from_array(np.array([0.02, 0.05, 0.1], dtype=np.float32), "scale"),
             numpy_helper.from_array(np.array([0, 3, -5], dtype=np.int8), "zero"),
             numpy_helper.from_array(rng.integers(0, 255, (6, 5)).astype(np.uint8), "B"),
             numpy_helper.from_array(np.array(128, dtype=np.uint8), "bz")]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "scale", "zero"], ["q"], axis=1),
        helper.make_node("DequantizeLinear", ["q", "scale", "zero"], ["dq"], axis=1),
        helper.make_node("DynamicQuantizeLinear", ["a"], ["aq", "as", "az"]),
        helper.make_node("MatMulInteger", ["aq", "B", "az", "bz"], ["mm"]),
    ]
    built = graph_model(
        nodes, [tensor("x", TensorProto.FLOAT, [2, 3, 4]), tensor("a", TensorProto.FLOAT, [4, 6])],
        [tensor("q", TensorProto.INT8, [2, 3, 4]), tensor("dq", TensorProto.FLOAT, [2, 3, 4]),
         tensor("aq", TensorProto.UINT8, [4, 6]), tensor("as", TensorProto.FLOAT, []), tensor("az", TensorProto.UINT8, []),
         tensor("mm", TensorProto.INT32, [4, 5])], inits)
    x = (rng.standard_normal((2, 3, 4)) * 5).astype(np.float32)
    x[0, 0, 0] = 0.01  # exactly half a step: round half to even
    return built, {"x": x, "a": rng.standard_normal((4, 6)).astype(np.float32)}


@model("qlinear-add-mul")
def qlinear_add_mul():
    """com.microsoft QLinearAdd and QLinearMul on uint8 with broadcasting, and int8 QLinearAdd."""
    rng = np.random.default_rng(24)

    def scalar(name, value, dtype):
        return numpy_helper.from_array(np.array(value, dtype=dtype), name)

    inits = [scalar("sa", 0.05, np.float32), scalar("za", 120, np.uint8), scalar("sb", 0.03, np.float32),
             scalar("zb", 130, np.uint8), scalar("sc", 0.08, np.float32), scalar("zc", 125, np.uint8),
             scalar("sm", 0.2, np.float32), scalar("zs", -3, np.int8), scalar("zt", 5, np.int8)]
    ms = "com.microsoft"
    nodes = [
        helper.make_node("QLinearAdd", ["a", "sa", "za", "b", "sb", "zb", "sc", "zc"], ["sum"], domain=ms),
        helper.make_node("QLinearMul", ["a", "sa", "za", "b", "sb", "zb", "sm", "zc"], ["product"], domain=ms),
        helper.make_node("QLinearAdd", ["s", "sa", "zs", "t", "sb", "zt", "sc", "zs"], ["signed"], domain=ms),
    ]
    built = graph_model(
        nodes, [tensor("a", TensorProto.UINT8, [3, 4]), tensor("b", TensorProto.UINT8, [4]),
                tensor("s", TensorProto.INT8, [2, 5]), tensor("t", TensorProto.INT8, [2, 5])],
        [tensor("sum", TensorProto.UINT8, [3, 4]), tensor("product", TensorProto.UINT8, [3, 4]),
         tensor("signed", TensorProto.INT8, [2, 5])], inits,
        opsets=[helper.make_opsetid("", 17), helper.make_opsetid(ms, 1)])
    return built, {"a": rng.integers(0, 256, (3, 4)).astype(np.uint8), "b": rng.integers(0, 256, 4).astype(np.uint8),
                   "s": rng.integers(-128, 128, (2, 5)).astype(np.int8),
                   "t": rng.integers(-128, 128, (2, 5)).astype(np.int8)}


# ---------------------------------------------------------------- recurrent

def recurrent(op, seed, direction, layout=0, lengths=False, clip=None, **attributes):
    rng = np.random.default_rng(seed)
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
    steps, batch, features, hidden = 5, 3, 4, 6
    dirs = 2 if direction == "bidirectional" else 1
    inits = [numpy_helper.from_array((rng.standard_normal((dirs, gates * hidden, features)) * 0.4).astype(np.float32), "W"),
             numpy_helper.from_array((rng.standard_normal((dirs, gates * hidden, hidden)) * 0.4).astype(np.float32), "R"),
             numpy_helper.from_array((rng.standard_normal((dirs, 2 * gates * hidden)) * 0.1).astype(np.float32), "B")]
    names = ["X", "W", "R", "B", "lens" if lengths else "", "h0"] + (["c0"] if op == "LSTM" else [])
    xs = [batch, steps, features] if layout else [steps, batch, features]
    state = [batch, dirs, hidden] if layout else [dirs, batch, hidden]
    inputs = [tensor("X", TensorProto.FLOAT, xs), tensor("h0", TensorProto.FLOAT, state)]
    feeds = {"X": rng.standard_normal(xs).astype(np.float32), "h0": rng.standard_normal(state).astype(np.float32)}
    if op == "LSTM":
        inputs.append(tensor("c0", TensorProto.FLOAT, state))
        feeds["c0"] = rng.standard_normal(state).astype(np.float32)
    if lengths:
        inputs.append(tensor("lens", TensorProto.INT32, [batch]))
        feeds["lens"] = np.array([5, 2, 4], dtype=np.int32)
    if clip is not None:
        attributes["clip"] = clip
    outputs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
    node = helper.make_node(op, names, outputs, hidden_size=hidden, direction=direction, layout=layout, **attributes)
    y = [batch, steps, dirs, hidden] if layout else [steps, dirs, batch, hidden]
    built = graph_model([node], inputs, [tensor("Y", TensorProto.FLOAT, y)] +
                        [tensor(name, TensorProto.FLOAT, state) for name in outputs[1:]], inits,
                        opsets=[helper.make_opsetid("", 14)])
    return built, feeds


model("lstm-bidirectional-lengths")(lambda: recurrent("LSTM", 30, "bidirectional", lengths=True))
model("lstm-reverse-clip")(lambda: recurrent("LSTM", 31, "reverse", clip=1.5))
model("gru-forward")(lambda: recurrent("GRU", 32, "forward", lengths=True))
model("gru-linear-before-reset")(lambda: recurrent("GRU", 33, "bidirectional", linear_before_reset=1))
model("rnn-relu")(lambda: recurrent("RNN", 34, "forward", activations=["Relu"]))


# ---------------------------------------------------------------- control flow and scalars

def if_recurrent(constant_condition=None):
    """A stateful step: if sum(x) > 0 the state moves (h' = tanh(x W + h U)), else it decays (h' = h / 2);
    both branches read the outer x, h, W and U. Checked on inputs that take each branch."""
    rng = np.random.default_rng(40)
    inits = [numpy_helper.from_array((rng.standard_normal((4, 8)) * 0.5).astype(np.float32), "W"),
             numpy_helper.from_array((rng.standard_normal((8, 8)) * 0.5).astype(np.float32), "U"),
             numpy_helper.from_array(np.array(0.5, dtype=np.float32), "half")]
    moved = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["xw"]), helper.make_node("MatMul", ["h", "U"], ["hu"]),
         helper.make_node("Add", ["xw", "hu"], ["pre"]), helper.make_node("Tanh", ["pre"], ["h_moved"])],
        "moved", [], [tensor("h_moved", TensorProto.FLOAT, [1, 8])])
    decayed = helper.make_graph([helper.make_node("Mul", ["h", "half"], ["h_decayed"])], "decayed", [],
                                [tensor("h_decayed", TensorProto.FLOAT, [1, 8])])
    if constant_condition is None:
        inits.append(numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero"))
        nodes = [helper.make_node("ReduceSum", ["x"], ["total"], keepdims=0),
                 helper.make_node("Greater", ["total", "zero"], ["moving"])]
    else:
        inits.append(numpy_helper.from_array(np.array(constant_condition), "moving"))
        nodes = []
    nodes.append(helper.make_node("If", ["moving"], ["h_next"], then_branch=moved, else_branch=decayed))
    built = graph_model(nodes, [tensor("x", TensorProto.FLOAT, [1, 4]), tensor("h", TensorProto.FLOAT, [1, 8])],
                        [tensor("h_next", TensorProto.FLOAT, [1, 8])], inits)
    h = rng.standard_normal((1, 8)).astype(np.float32)
    return built, [{"x": np.abs(rng.standard_normal((1, 4))).astype(np.float32), "h": h},
                   {"x": -np.abs(rng.standard_normal((1, 4))).astype(np.float32), "h": h}]


model("if-stateful-recurrent")(lambda: if_recurrent())
model("if-constant-condition")(lambda: if_recurrent(constant_condition=False))


@model("if-nested")
def if_nested():
    """An If inside an If's branch, with integer outputs: y = a > 0 ? (b > 0 ? a + b : a - b) : -a."""
    inner = helper.make_graph([helper.make_node("Add", ["a", "b"], ["inner_then"])], "inner_then", [],
                              [tensor("inner_then", TensorProto.INT64, [3])])
    inner_else = helper.make_graph([helper.make_node("Sub", ["a", "b"], ["inner_else"])], "inner_else", [],
                                   [tensor("inner_else", TensorProto.INT64, [3])])
    outer_then = helper.make_graph(
        [helper.make_node("ReduceSum", ["b"], ["bs"], keepdims=0), helper.make_node("Greater", ["bs", "zero"], ["bpos"]),
         helper.make_node("If", ["bpos"], ["picked"], then_branch=inner, else_branch=inner_else)],
        "outer_then", [], [tensor("picked", TensorProto.INT64, [3])])
    outer_else = helper.make_graph([helper.make_node("Neg", ["a"], ["negated"])], "outer_else", [],
                                   [tensor("negated", TensorProto.INT64, [3])])
    nodes = [helper.make_node("ReduceSum", ["a"], ["as"], keepdims=0), helper.make_node("Greater", ["as", "zero"], ["apos"]),
             helper.make_node("If", ["apos"], ["y"], then_branch=outer_then, else_branch=outer_else)]
    built = graph_model(nodes, [tensor("a", TensorProto.INT64, [3]), tensor("b", TensorProto.INT64, [3])],
                        [tensor("y", TensorProto.INT64, [3])],
                        [numpy_helper.from_array(np.array(0, dtype=np.int64), "zero")])
    return built, [{"a": np.array(a, dtype=np.int64), "b": np.array(b, dtype=np.int64)}
                   for a, b in [([1, 2, 3], [4, 5, -1]), ([1, 2, 3], [-4, 0, 1]), ([-5, 1, 1], [1, 1, 1])]]


@model("loop-unrolled")
def loop_unrolled():
    """Loop with a constant trip count: h = tanh(h W + i) carried, every h stacked as a scan output."""
    rng = np.random.default_rng(41)
    body = helper.make_graph(
        [helper.make_node("Cast", ["i"], ["fi"], to=TensorProto.FLOAT),
         helper.make_node("MatMul", ["h_in", "W"], ["hw"]), helper.make_node("Add", ["hw", "fi"], ["pre"]),
         helper.make_node("Tanh", ["pre"], ["h_out"]), helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Identity", ["h_out"], ["h_scan"])],
        "body", [tensor("i", TensorProto.INT64, []), tensor("cond_in", TensorProto.BOOL, []),
                 tensor("h_in", TensorProto.FLOAT, [2, 3])],
        [tensor("cond_out", TensorProto.BOOL, []), tensor("h_out", TensorProto.FLOAT, [2, 3]),
         tensor("h_scan", TensorProto.FLOAT, [2, 3])])
    inits = [numpy_helper.from_array(np.array(5, dtype=np.int64), "M"),
             numpy_helper.from_array(np.array(True), "go"),
             numpy_helper.from_array((rng.standard_normal((3, 3)) * 0.5).astype(np.float32), "W")]
    node = helper.make_node("Loop", ["M", "go", "h0"], ["h_final", "h_all"], body=body)
    built = graph_model([node], [tensor("h0", TensorProto.FLOAT, [2, 3])],
                        [tensor("h_final", TensorProto.FLOAT, [2, 3]), tensor("h_all", TensorProto.FLOAT, [5, 2, 3])],
                        inits)
    return built, {"h0": rng.standard_normal((2, 3)).astype(np.float32)}


@model("scan-running-sum")
def scan_running_sum():
    """Scan: a running sum over axis 1 of x, the second input scanned in reverse, outputs stacked on axis 1."""
    rng = np.random.default_rng(42)
    body = helper.make_graph(
        [helper.make_node("Add", ["total_in", "x_t"], ["sum"]), helper.make_node("Mul", ["sum", "w_t"], ["total_out"]),
         helper.make_node("Identity", ["total_out"], ["step"])],
        "body", [tensor("total_in", TensorProto.FLOAT, [2]), tensor("x_t", TensorProto.FLOAT, [2]),
                 tensor("w_t", TensorProto.FLOAT, [2])],
        [tensor("total_out", TensorProto.FLOAT, [2]), tensor("step", TensorProto.FLOAT, [2])])
    node = helper.make_node("Scan", ["init", "x", "w"], ["total", "steps"], body=body, num_scan_inputs=2,
                            scan_input_axes=[1, 0], scan_input_directions=[0, 1], scan_output_axes=[1])
    built = graph_model([node], [tensor("init", TensorProto.FLOAT, [2]), tensor("x", TensorProto.FLOAT, [2, 4]),
                                 tensor("w", TensorProto.FLOAT, [4, 2])],
                        [tensor("total", TensorProto.FLOAT, [2]), tensor("steps", TensorProto.FLOAT, [2, 4])])
    return built, {"init": rng.standard_normal(2).astype(np.float32), "x": rng.standard_normal((2, 4)).astype(np.float32),
                   "w": rng.uniform(0.5, 1.5, (4, 2)).astype(np.float32)}


@model("scalar-inputs")
def scalar_inputs():
    """Rank-0 inputs and outputs: a float scale, an int64 index into a table, and a scalar sum."""
    rng = np.random.default_rng(43)
    nodes = [helper.make_node("Mul", ["x", "scale"], ["scaled"]),
             helper.make_node("Gather", ["table", "index"], ["row"], axis=0),
             helper.make_node("ReduceSum", ["row"], ["total"], keepdims=0),
             helper.make_node("Add", ["total", "scale"], ["result"])]
    built = graph_model(nodes, [tensor("x", TensorProto.FLOAT, [3]), tensor("scale", TensorProto.FLOAT, []),
                                tensor("index", TensorProto.INT64, [])],
                        [tensor("scaled", TensorProto.FLOAT, [3]), tensor("row", TensorProto.FLOAT, [4]),
                         tensor("result", TensorProto.FLOAT, [])],
                        [numpy_helper.from_array(rng.standard_normal((5, 4)).astype(np.float32), "table")])
    return built, {"x": rng.standard_normal(3).astype(np.float32), "scale": np.array(2.5, dtype=np.float32),
                   "index": np.array(3, dtype=np.int64)}


@model("data-dependent-known")
def data_dependent_known():
    """NonZero, Unique and Compress whose deciding inputs are constants (or shape arithmetic on them):
    folded at compile time; Compress then gathers a run-time input."""
    rng = np.random.default_rng(44)
    inits = [numpy_helper.from_array(np.array([[0, 3, 0], [2, 0, 5]], dtype=np.int64), "mask"),
             numpy_helper.from_array(np.array([4, 1, 4, 2, 1, 9], dtype=np.int64), "labels"),
             numpy_helper.from_array(np.array([True, False, True, True]), "keep")]
    nodes = [helper.make_node("NonZero", ["mask"], ["where"]),
             helper.make_node("Unique", ["labels"], ["uniq", "first", "inverse", "counts"], sorted=1),
             helper.make_node("Compress", ["x", "keep"], ["kept"], axis=1)]
    built = graph_model(nodes, [tensor("x", TensorProto.FLOAT, [2, 4])],
                        [tensor("where", TensorProto.INT64, [2, 3]), tensor("uniq", TensorProto.INT64, [4]),
                         tensor("first", TensorProto.INT64, [4]), tensor("inverse", TensorProto.INT64, [6]),
                         tensor("counts", TensorProto.INT64, [4]), tensor("kept", TensorProto.FLOAT, [2, 3])], inits)
    return built, {"x": rng.standard_normal((2, 4)).astype(np.float32)}


# ---------------------------------------------------------------- running

def run_ort(built, inputs):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    if any(node.op_type == "DequantizeLinear" for node in built.graph.node if node.input[0] not in
           {i.name for i in built.graph.initializer}) and any(node.op_type == "QuantizeLinear" for node in built.graph.node):
        # QDQ graphs: ONNX defines them by their float ops; ONNX Runtime's optimizer would fuse
        # DequantizeLinear-op-QuantizeLinear groups into integer kernels that round differently.
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(built.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, inputs)))


def check(name, kiln, work):
    built, feeds = MODELS[name]()
    directory = os.path.join(work, name)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "model.onnx")
    onnx.save(built, path)
    compiled = subprocess.run([kiln, "compile", "--model", path, "--target-device", "ml_c5", "--output",
                               os.path.join(directory, "out"), "--json"], capture_output=True, text=True)
    if compiled.returncode != 0:
        return False, "compile: " + (compiled.stderr.strip().splitlines() or ["?"])[-1]
    artifact = json.loads(compiled.stdout)["artifactPath"]
    notes = []
    ok = True
    # Several input sets where a model has branches to take.
    for case, inputs in enumerate(feeds if isinstance(feeds, list) else [feeds]):
        expected = run_ort(built, inputs)
        arguments = []
        for key, value in inputs.items():
            file = os.path.join(directory, f"input_{case}_{len(arguments)}.npy")
            np.save(file, value)
            arguments += ["--input", f"{key}={file}"]
        results = os.path.join(directory, f"results_{case}")
        ran = subprocess.run([kiln, "run", artifact, "--output-dir", results] + arguments, capture_output=True,
                             text=True)
        if ran.returncode != 0:
            return False, "run: " + (ran.stderr.strip().splitlines() or ["?"])[-1]
        for output, reference in expected.items():
            got = np.load(os.path.join(results, f"{output}.npy"))
            if got.shape != reference.shape or got.dtype != reference.dtype:
                return False, (f"{output}: {got.dtype}{list(got.shape)}, "
                               f"ONNX Runtime {reference.dtype}{list(reference.shape)}")
            if np.issubdtype(reference.dtype, np.floating):
                scale = max(float(np.nanmax(np.abs(reference))) if reference.size else 0.0, 1e-30)
                error = float(np.nanmax(np.abs(got.astype(np.float64) - reference))) / scale if reference.size else 0.0
                ok &= error <= 1e-4 and np.array_equal(np.isnan(got), np.isnan(reference))
                notes.append(f"{output} {error:.1e}")
            else:
                differing = int(np.count_nonzero(got != reference))
                ok &= differing == 0
                notes.append(f"{output} {'exact' if differing == 0 else f'{differing} differ'}")
    return ok, ", ".join(notes)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kiln", default=".build/debug/kiln")
    parser.add_argument("names", nargs="*")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="kiln-longtail-")
    passed = failed = 0
    for name in args.names or MODELS:
        try:
            ok, detail = check(name, os.path.abspath(args.kiln), work)
        except Exception as error:  # a generator or ONNX Runtime problem is a failure too
            ok, detail = False, f"{type(error).__name__}: {error}"
        passed, failed = passed + ok, failed + (not ok)
        print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)
    print(f"longtail: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
