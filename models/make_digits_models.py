#!/usr/bin/env python3
"""Trains the two bundled sample models on scikit-learn's digits data set
(1,797 8x8 handwritten digits, shipped inside scikit-learn) with plain NumPy,
and writes them as ONNX with onnx.helper:

  digits-cnn/model.tar.gz  Conv 3x3 (8) -> Relu -> MaxPool 2x2 -> Flatten -> Gemm (10) -> Softmax,
                           opset 17, input "image" [N,1,8,8] with a symbolic batch dim N.
  digits-mlp/model.tar.gz  Gemm (64->32) -> Relu -> Gemm (32->10), opset 11, input "pixels" [1,64].

Needs numpy, scikit-learn and onnx (pip install numpy scikit-learn onnx).
Deterministic: fixed seeds, and the archives are written with fixed metadata.
"""
import gzip
import io
import os
import tarfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_digits

HERE = os.path.dirname(os.path.abspath(__file__))


def load():
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)  # [1797, 8, 8] in [0, 1]
    y = digits.target.astype(np.int64)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    x, y = x[order], y[order]
    split = 1500
    return x[:split], y[:split], x[split:], y[split:]


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def im2col(x):
    """x [N,1,8,8] padded by 1 -> patches [N,64,9] for a 3x3 conv."""
    n = x.shape[0]
    padded = np.pad(x[:, 0], ((0, 0), (1, 1), (1, 1)))
    cols = np.empty((n, 64, 9), dtype=np.float32)
    for i in range(8):
        for j in range(8):
            cols[:, i * 8 + j, :] = padded[:, i:i + 3, j:j + 3].reshape(n, 9)
    return cols


def train_cnn(x, y, epochs=30, lr=0.1):
    rng = np.random.default_rng(1)
    w1 = (rng.standard_normal((8, 9)) * 0.3).astype(np.float32)  # 8 filters 3x3
    b1 = np.zeros(8, np.float32)
    w2 = (rng.standard_normal((128, 10)) * 0.1).astype(np.float32)
    b2 = np.zeros(10, np.float32)
    cols_all = im2col(x[:, None])
    for _ in range(epochs):
        for start in range(0, len(x), 50):
            cols = cols_all[start:start + 50]
            target = y[start:start + 50]
            n = len(target)
            conv = cols @ w1.T + b1                   # [n,64,8]
            relu = np.maximum(conv, 0)
            fmap = relu.reshape(n, 8, 8, 8)           # [n,h,w,c]
            blocks = fmap.reshape(n, 4, 2, 4, 2, 8)
            pooled = blocks.max(axis=(2, 4))          # [n,4,4,8]
            flat = pooled.transpose(0, 3, 1, 2).reshape(n, 128)  # NCHW flatten order
            probs = softmax(flat @ w2 + b2)
            grad = probs
            grad[np.arange(n), target] -= 1
            grad /= n
            gw2 = flat.T @ grad
            gb2 = grad.sum(0)
            gflat = grad @ w2.T
            gpooled = gflat.reshape(n, 8, 4, 4).transpose(0, 2, 3, 1)
            mask = blocks == pooled[:, :, None, :, None, :]
            gblocks = mask * gpooled[:, :, None, :, None, :]
            grelu = gblocks.reshape(n, 64, 8) * (conv > 0)
            gw1 = np.einsum("npc,npk->ck", grelu, cols)
            gb1 = grelu.sum((0, 1))
            w1 -= lr * gw1
            b1 -= lr * gb1
            w2 -= lr * gw2
            b2 -= lr * gb2
    return w1, b1, w2, b2


def cnn_predict(params, x):
    w1, b1, w2, b2 = params
    n = len(x)
    relu = np.maximum(im2col(x[:, None]) @ w1.T + b1, 0).reshape(n, 4, 2, 4, 2, 8).max(axis=(2, 4))
    return softmax(relu.transpose(0, 3, 1, 2).reshape(n, 128) @ w2 + b2)


def cnn_onnx(params):
    w1, b1, w2, b2 = params
    nodes = [
        helper.make_node("Conv", ["image", "conv.weight", "conv.bias"], ["conv"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Relu", ["conv"], ["relu"], name="relu"),
        helper.make_node("MaxPool", ["relu"], ["pool"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
        helper.make_node("Flatten", ["pool"], ["flat"], axis=1, name="flatten"),
        helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], transB=1, name="fc"),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1, name="softmax"),
    ]
    graph = helper.make_graph(
        nodes, "digits_cnn",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10])],
        [numpy_helper.from_array(w1.reshape(8, 1, 3, 3), "conv.weight"), numpy_helper.from_array(b1, "conv.bias"),
         numpy_helper.from_array(np.ascontiguousarray(w2.T), "fc.weight"), numpy_helper.from_array(b2, "fc.bias")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="kiln-models")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def train_mlp(x, y, epochs=60, lr=0.2):
    rng = np.random.default_rng(2)
    x = x.reshape(len(x), 64)
    w1 = (rng.standard_normal((64, 32)) * 0.2).astype(np.float32)
    b1 = np.zeros(32, np.float32)
    w2 = (rng.standard_normal((32, 10)) * 0.2).astype(np.float32)
    b2 = np.zeros(10, np.float32)
    for _ in range(epochs):
        for start in range(0, len(x), 50):
            xb, target = x[start:start + 50], y[start:start + 50]
            n = len(target)
            hidden = np.maximum(xb @ w1 + b1, 0)
            grad = softmax(hidden @ w2 + b2)
            grad[np.arange(n), target] -= 1
            grad /= n
            ghidden = (grad @ w2.T) * (hidden > 0)
            w2 -= lr * hidden.T @ grad
            b2 -= lr * grad.sum(0)
            w1 -= lr * xb.T @ ghidden
            b1 -= lr * ghidden.sum(0)
    return w1, b1, w2, b2


def mlp_onnx(params):
    w1, b1, w2, b2 = params
    nodes = [
        helper.make_node("Gemm", ["pixels", "fc1.weight", "fc1.bias"], ["hidden"], name="fc1"),
        helper.make_node("Relu", ["hidden"], ["hidden_relu"], name="relu"),
        helper.make_node("Gemm", ["hidden_relu", "fc2.weight", "fc2.bias"], ["logits"], name="fc2"),
    ]
    graph = helper.make_graph(
        nodes, "digits_mlp",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])],
        [numpy_helper.from_array(w1, "fc1.weight"), numpy_helper.from_array(b1, "fc1.bias"),
         numpy_helper.from_array(w2, "fc2.weight"), numpy_helper.from_array(b2, "fc2.bias")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)], producer_name="kiln-models")
    model.ir_version = 6
    onnx.checker.check_model(model)
    return model


def write_archive(model, directory):
    """model.tar.gz holding model.onnx, with fixed metadata so reruns give the same bytes."""
    data = model.SerializeToString()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("model.onnx")
        info.size, info.mtime, info.mode = len(data), 0, 0o644
        tar.addfile(info, io.BytesIO(data))
    path = os.path.join(HERE, directory, "model.tar.gz")
    with open(path, "wb") as out:
        with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as gz:
            gz.write(buffer.getvalue())
    return path


def main():
    xtr, ytr, xte, yte = load()
    cnn = train_cnn(xtr, ytr)
    accuracy = (cnn_predict(cnn, xte).argmax(1) == yte).mean()
    print(f"digits-cnn: held-out accuracy {accuracy:.3f} on {len(yte)} images")
    write_archive(cnn_onnx(cnn), "digits-cnn")
    mlp = train_mlp(xtr, ytr)
    w1, b1, w2, b2 = mlp
    hidden = np.maximum(xte.reshape(len(xte), 64) @ w1 + b1, 0)
    accuracy = ((hidden @ w2 + b2).argmax(1) == yte).mean()
    print(f"digits-mlp: held-out accuracy {accuracy:.3f} on {len(yte)} images")
    write_archive(mlp_onnx(mlp), "digits-mlp")


if __name__ == "__main__":
    main()
