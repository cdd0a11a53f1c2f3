#!/usr/bin/env python3
"""Generates benchmark-sized models with random, seeded weights into
models/zoo/ (ignored by git): each as <name>/model.tar.gz holding model.onnx.

  resnet50     ResNet-50 v1.5 (torchvision layout), input "data" [N,3,224,224], opset 17, ~100 MB
  resnet18     ResNet-18, input "data" [N,3,224,224]
  mobilenetv2  MobileNetV2 (depthwise convs, Clip as ReLU6), input "data" [N,3,224,224]
  squeezenet   SqueezeNet 1.1 (fire modules, Concat), input "data" [N,3,224,224]
  bert         a 2-layer BERT-style encoder, hidden 128, 2 heads, seq 128: inputs "input_ids" int64 [1,128]
               and "attention_mask" float [1,128]; LayerNormalization, GELU via Erf, attention with MatMul/Softmax
  mlp          784-512-256-10 perceptron, input "x" [N,784]

Each also gets reference.npz: seeded random inputs (batch 1) and ONNX Runtime's outputs (pip install onnxruntime).

Built with onnx.helper from NumPy arrays: no framework and no download needed.
Usage: python3 models/make_zoo.py [name ...]   (pip install numpy onnx)
"""
import gzip
import io
import os
import sys
import tarfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ZOO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "zoo")


class Builder:
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.count = [], [], 0

    def name(self, prefix):
        self.count += 1
        return f"{prefix}_{self.count}"

    def weight(self, prefix, shape, scale):
        name = self.name(prefix)
        self.inits.append(numpy_helper.from_array((self.rng.standard_normal(shape) * scale).astype(np.float32), name))
        return name

    def conv_bn(self, x, cin, cout, k, stride=1, relu=True):
        w = self.weight("conv.w", (cout, cin, k, k), np.sqrt(2.0 / (cin * k * k)))
        y = self.name("conv")
        self.nodes.append(helper.make_node("Conv", [x, w], [y], kernel_shape=[k, k], strides=[stride, stride],
                                           pads=[k // 2] * 4, name=y))
        scale = self.weight("bn.scale", (cout,), 0.1)
        self.inits[-1] = numpy_helper.from_array(np.abs(numpy_helper.to_array(self.inits[-1])) + 0.5, scale)
        bias = self.weight("bn.bias", (cout,), 0.1)
        mean = self.weight("bn.mean", (cout,), 0.1)
        var = self.weight("bn.var", (cout,), 0.1)
        self.inits[-1] = numpy_helper.from_array(np.abs(numpy_helper.to_array(self.inits[-1])) + 0.5, var)
        z = self.name("bn")
        self.nodes.append(helper.make_node("BatchNormalization", [y, scale, bias, mean, var], [z], name=z))
        if not relu:
            return z
        r = self.name("relu")
        self.nodes.append(helper.make_node("Relu", [z], [r], name=r))
        return r

    def node(self, op, inputs, **attrs):
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def const(self, prefix, array):
        name = self.name(prefix)
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def conv(self, x, cin, cout, k, stride=1, group=1, bias=True):
        w = self.weight("conv.w", (cout, cin // group, k, k), np.sqrt(2.0 / (cin // group * k * k)))
        inputs = [x, w] + ([self.weight("conv.b", (cout,), 0.05)] if bias else [])
        return self.node("Conv", inputs, kernel_shape=[k, k], strides=[stride, stride], pads=[k // 2] * 4, group=group)

    def add_relu(self, a, b):
        s = self.name("add")
        self.nodes.append(helper.make_node("Add", [a, b], [s], name=s))
        r = self.name("relu")
        self.nodes.append(helper.make_node("Relu", [s], [r], name=r))
        return r


def resnet50():
    b = Builder(50)
    x = b.conv_bn("data", 3, 64, 7, stride=2)
    p = b.name("maxpool")
    b.nodes.append(helper.make_node("MaxPool", [x], [p], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], name=p))
    x, cin = p, 64
    for stage, (width, blocks) in enumerate([(64, 3), (128, 4), (256, 6), (512, 3)]):
        for block in range(blocks):
            stride = 2 if block == 0 and stage > 0 else 1
            y = b.conv_bn(x, cin, width, 1)
            y = b.conv_bn(y, width, width, 3, stride=stride)
            y = b.conv_bn(y, width, width * 4, 1, relu=False)
            shortcut = b.conv_bn(x, cin, width * 4, 1, stride=stride, relu=False) if block == 0 else x
            x, cin = b.add_relu(y, shortcut), width * 4
    g = b.name("gap")
    b.nodes.append(helper.make_node("GlobalAveragePool", [x], [g], name=g))
    f = b.name("flatten")
    b.nodes.append(helper.make_node("Flatten", [g], [f], axis=1, name=f))
    w = b.weight("fc.w", (1000, 2048), 0.01)
    bias = b.weight("fc.b", (1000,), 0.01)
    b.nodes.append(helper.make_node("Gemm", [f, w, bias], ["logits"], transB=1, name="fc"))
    graph = helper.make_graph(b.nodes, "resnet50",
                              [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 3, 224, 224])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1000])], b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="kiln-zoo")
    model.ir_version = 8
    return model


def resnet18():
    b = Builder(18)
    x = b.conv_bn("data", 3, 64, 7, stride=2)
    x = b.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = 64
    for stage, width in enumerate([64, 128, 256, 512]):
        for block in range(2):
            stride = 2 if block == 0 and stage > 0 else 1
            y = b.conv_bn(x, cin, width, 3, stride=stride)
            y = b.conv_bn(y, width, width, 3, relu=False)
            shortcut = b.conv_bn(x, cin, width, 1, stride=stride, relu=False) if (stride != 1 or cin != width) else x
            x, cin = b.add_relu(y, shortcut), width
    return classifier(b, x, 512, "resnet18")


def classifier(b, x, channels, name, inputs=None):
    g = b.node("GlobalAveragePool", [x])
    f = b.node("Flatten", [g], axis=1)
    w = b.weight("fc.w", (1000, channels), 0.02)
    bias = b.weight("fc.b", (1000,), 0.01)
    b.nodes.append(helper.make_node("Gemm", [f, w, bias], ["logits"], transB=1, name="fc"))
    graph = helper.make_graph(b.nodes, name, inputs or [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 3, 224, 224])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1000])], b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="kiln-zoo")
    model.ir_version = 8
    return model


def mobilenetv2():
    b = Builder(2)
    zero, six = b.const("clip.min", np.float32(0)), b.const("clip.max", np.float32(6))

    def conv_bn_relu6(x, cin, cout, k, stride=1, group=1, relu=True):
        y = b.conv_bn(x, cin, cout, k, stride=stride, relu=False) if group == 1 else depthwise(x, cin, stride)
        return b.node("Clip", [y, zero, six]) if relu else y

    def depthwise(x, channels, stride):
        w = b.weight("dw.w", (channels, 1, 3, 3), np.sqrt(2.0 / 9))
        return b.node("Conv", [x, w, b.weight("dw.b", (channels,), 0.05)], kernel_shape=[3, 3], strides=[stride, stride],
                      pads=[1, 1, 1, 1], group=channels)

    x = conv_bn_relu6("data", 3, 32, 3, stride=2)
    cin = 32
    settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
    for t, c, n, s0 in settings:
        for i in range(n):
            stride = s0 if i == 0 else 1
            hidden = cin * t
            y = conv_bn_relu6(x, cin, hidden, 1) if t != 1 else x
            y = conv_bn_relu6(y, hidden, hidden, 3, stride=stride, group=hidden)
            y = b.conv_bn(y, hidden, c, 1, relu=False)
            x = b.node("Add", [x, y]) if stride == 1 and cin == c else y
            cin = c
    x = conv_bn_relu6(x, cin, 1280, 1)
    return classifier(b, x, 1280, "mobilenetv2")


def squeezenet():
    b = Builder(11)
    x = b.node("Relu", [b.conv("data", 3, 64, 3, stride=2)])
    x = b.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
    cin = 64
    for i, (s, e) in enumerate([(16, 64), (16, 64), (32, 128), (32, 128), (48, 192), (48, 192), (64, 256), (64, 256)]):
        sq = b.node("Relu", [b.conv(x, cin, s, 1)])
        e1 = b.node("Relu", [b.conv(sq, s, e, 1)])
        e3 = b.node("Relu", [b.conv(sq, s, e, 3)])
        x, cin = b.node("Concat", [e1, e3], axis=1), 2 * e
        if i in (1, 3):
            x = b.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
    x = b.node("Relu", [b.conv(x, cin, 1000, 1)])
    g = b.node("GlobalAveragePool", [x])
    b.nodes.append(helper.make_node("Flatten", [g], ["logits"], axis=1, name="flatten"))
    graph = helper.make_graph(b.nodes, "squeezenet", [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 3, 224, 224])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1000])], b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="kiln-zoo")
    model.ir_version = 8
    return model


def bert(layers=2, hidden=128, heads=2, seq=128, vocab=1000):
    b = Builder(128)
    head = hidden // heads
    table = b.weight("embeddings.word", (vocab, hidden), 0.05)
    positions = b.weight("embeddings.position", (seq, hidden), 0.05)
    x = b.node("Add", [b.node("Gather", [table, "input_ids"], axis=0), positions])

    def layer_norm(x):
        return b.node("LayerNormalization", [x, b.const("ln.g", np.ones(hidden, np.float32)), b.weight("ln.b", (hidden,), 0.05)],
                      axis=-1, epsilon=1e-5)

    def linear(x, cin, cout):
        return b.node("Add", [b.node("MatMul", [x, b.weight("w", (cin, cout), 1 / np.sqrt(cin))]), b.weight("b", (cout,), 0.02)])

    x = layer_norm(x)
    # mask [1,seq] -> additive [1,1,1,seq]
    mask = b.node("Unsqueeze", ["attention_mask", b.const("axes", np.array([1, 2], np.int64))])
    additive = b.node("Mul", [b.node("Sub", [b.const("one", np.float32(1)), mask]), b.const("neg", np.float32(-10000))])
    split_shape = b.const("shape", np.array([1, seq, heads, head], np.int64))
    merge_shape = b.const("shape", np.array([1, seq, hidden], np.int64))
    scale = b.const("scale", np.float32(1 / np.sqrt(head)))
    for _ in range(layers):
        def heads_of(t):
            return b.node("Transpose", [b.node("Reshape", [t, split_shape])], perm=[0, 2, 1, 3])
        q, k, v = (heads_of(linear(x, hidden, hidden)) for _ in range(3))
        scores = b.node("Mul", [b.node("MatMul", [q, b.node("Transpose", [k], perm=[0, 1, 3, 2])]), scale])
        probs = b.node("Softmax", [b.node("Add", [scores, additive])], axis=-1)
        context = b.node("Reshape", [b.node("Transpose", [b.node("MatMul", [probs, v])], perm=[0, 2, 1, 3]), merge_shape])
        x = layer_norm(b.node("Add", [x, linear(context, hidden, hidden)]))
        h = linear(x, hidden, 4 * hidden)
        gelu = b.node("Mul", [b.node("Mul", [h, b.const("half", np.float32(0.5))]),
                              b.node("Add", [b.node("Erf", [b.node("Div", [h, b.const("sqrt2", np.float32(np.sqrt(2)))])]),
                                             b.const("one", np.float32(1))])])
        x = layer_norm(b.node("Add", [x, linear(gelu, 4 * hidden, hidden)]))
    b.nodes.append(helper.make_node("Identity", [x], ["hidden_states"], name="output"))
    graph = helper.make_graph(b.nodes, "bert", [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, seq]),
                                                helper.make_tensor_value_info("attention_mask", TensorProto.FLOAT, [1, seq])],
                              [helper.make_tensor_value_info("hidden_states", TensorProto.FLOAT, [1, seq, hidden])], b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="kiln-zoo")
    model.ir_version = 8
    return model


def mlp():
    b = Builder(784)
    x = "x"
    for cin, cout in [(784, 512), (512, 256)]:
        x = b.node("Relu", [b.node("Gemm", [x, b.weight("w", (cout, cin), np.sqrt(2 / cin)), b.weight("b", (cout,), 0.01)], transB=1)])
    b.nodes.append(helper.make_node("Gemm", [x, b.weight("w", (10, 256), 0.06), b.weight("b", (10,), 0.01)], ["logits"], transB=1, name="fc3"))
    graph = helper.make_graph(b.nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 784])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])], b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="kiln-zoo")
    model.ir_version = 8
    return model


MODELS = {"resnet50": resnet50, "resnet18": resnet18, "mobilenetv2": mobilenetv2, "squeezenet": squeezenet, "bert": bert, "mlp": mlp}

#: DataInputConfig per model (batch 1).
SHAPES = {"resnet50": {"data": [1, 3, 224, 224]}, "resnet18": {"data": [1, 3, 224, 224]},
          "mobilenetv2": {"data": [1, 3, 224, 224]}, "squeezenet": {"data": [1, 3, 224, 224]},
          "bert": {"input_ids": [1, 128], "attention_mask": [1, 128]}, "mlp": {"x": [1, 784]}}


def reference(name, model):
    """Seeded random inputs and ONNX Runtime's outputs, saved as reference.npz and .npy files."""
    import onnxruntime as ort
    rng = np.random.default_rng(7)
    feeds = {}
    for value in model.graph.input:
        shape = SHAPES[name][value.name]
        if value.type.tensor_type.elem_type == TensorProto.INT64:
            feeds[value.name] = rng.integers(0, 1000, size=shape, dtype=np.int64)
        elif value.name == "attention_mask":
            mask = np.ones(shape, np.float32)
            mask[:, -16:] = 0
            feeds[value.name] = mask
        else:
            feeds[value.name] = rng.standard_normal(shape).astype(np.float32)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    outputs = session.run(None, feeds)
    directory = os.path.join(ZOO, name)
    for key, value in feeds.items():
        np.save(os.path.join(directory, f"input_{key}.npy"), value)
    for output, value in zip(session.get_outputs(), outputs):
        np.save(os.path.join(directory, f"expected_{output.name}.npy"), value)


def write(name, model):
    onnx.checker.check_model(model)
    data = model.SerializeToString()
    directory = os.path.join(ZOO, name)
    os.makedirs(directory, exist_ok=True)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("model.onnx")
        info.size, info.mtime = len(data), 0
        tar.addfile(info, io.BytesIO(data))
    path = os.path.join(directory, "model.tar.gz")
    with open(path, "wb") as out, gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="", compresslevel=6) as gz:
        gz.write(buffer.getvalue())
    print(f"{name}: {len(data) / 1e6:.1f} MB model, {os.path.getsize(path) / 1e6:.1f} MB archive -> {path}")


def main(names):
    for name in names or MODELS:
        model = MODELS[name]()
        write(name, model)
        reference(name, model)


if __name__ == "__main__":
    main(sys.argv[1:])
