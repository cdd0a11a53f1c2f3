#!/usr/bin/env python3
"""Generates benchmark-sized models with random, seeded weights into
models/zoo/ (ignored by git): each as <name>/model.tar.gz holding model.onnx.

  resnet50   ResNet-50 v1.5 (torchvision layout), input "data" [N,3,224,224], opset 17, ~100 MB

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


MODELS = {"resnet50": resnet50}


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
        write(name, MODELS[name]())


if __name__ == "__main__":
    main(sys.argv[1:])
