"""
Deploy LeNet-5 with ONNX and safe model files
=============================================

Train a :class:`~sklenet.LeNet5Classifier`, export it to ONNX and run it with
onnxruntime, without PyTorch, sklearn or sklenet at prediction time; then export
a whole scikit-learn pipeline, and store the model in a file that is safe to
load (no pickle).

Needs the deployment extras: ``pip install sklenet[deploy]``.
"""

# %%
# Train a small model on sklearn's 8x8 digits
# -------------------------------------------
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import sklenet
from sklenet import LeNet5Classifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
clf = LeNet5Classifier(max_epochs=5, random_state=0, device="cpu").fit(X_train, y_train)
print(f"test accuracy: {clf.score(X_test, y_test):.3f}")

workdir = Path(tempfile.mkdtemp())

# %%
# Export to ONNX and predict with onnxruntime
# -------------------------------------------
# The model takes float32 flat rows ``(N, 64)`` (``input_layout="nchw"`` or
# ``"nhw"`` export a model for image-shaped input, ``input_dtype="uint8"`` one
# for raw pixels) and returns ``label`` and ``probabilities``. The resizing to
# 28x28 and the input scaling learned from the training data are part of the
# graph.
sklenet.to_onnx(clf, workdir / "lenet5.onnx")
session = ort.InferenceSession(workdir / "lenet5.onnx", providers=["CPUExecutionProvider"])
print("inputs: ", [(i.name, i.shape, i.type) for i in session.get_inputs()])
print("outputs:", [(o.name, o.shape, o.type) for o in session.get_outputs()])

start = time.perf_counter()
labels, proba = session.run(None, {"input": X_test.astype(np.float32)})
elapsed = time.perf_counter() - start
print(f"onnxruntime: {len(X_test)} images in {1000 * elapsed:.1f} ms")
print("max |p_onnx - p_sklenet| =", np.abs(proba - clf.predict_proba(X_test)).max())
print("same labels:", np.array_equal(labels, clf.predict(X_test)))

# One image at a time, as a real-time service would receive them:
label, p = session.run(None, {"input": X_test[:1].astype(np.float32)})
print("first test image:", label[0], "with probability", p[0].max().round(3))

# %%
# A whole scikit-learn pipeline
# -----------------------------
# :func:`sklenet.export.register_skl2onnx_converter` teaches skl2onnx the
# classifier, so pipelines that end in it convert like any sklearn pipeline.
import skl2onnx  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import MinMaxScaler  # noqa: E402

from sklenet.export import register_skl2onnx_converter  # noqa: E402

register_skl2onnx_converter()
pipe = make_pipeline(MinMaxScaler(), LeNet5Classifier(max_epochs=5, random_state=0,
                                                      device="cpu"))
pipe.fit(X_train, y_train)
onx = skl2onnx.to_onnx(pipe, X_train[:1].astype(np.float32),
                       options={LeNet5Classifier: {"zipmap": False}})
session = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
labels, proba = session.run(None, {session.get_inputs()[0].name: X_test.astype(np.float32)})
print("pipeline: max |dp| =", np.abs(proba - pipe.predict_proba(X_test)).max(),
      "same labels:", np.array_equal(labels, pipe.predict(X_test)))

# %%
# Model files that are safe to load
# ---------------------------------
# ``joblib.load`` runs whatever code the file asks for. ``save`` writes the
# weights as safetensors and everything else as JSON; ``sklenet.load`` executes
# nothing from the file and rejects damaged, tampered or pickle files with
# :class:`sklenet.ModelFileError`.
path = sklenet.save(clf, workdir / "lenet5.sklenet")
restored = sklenet.load(path)
print("identical predictions after reload:",
      np.array_equal(restored.predict_proba(X_test), clf.predict_proba(X_test)))
