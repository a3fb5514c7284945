"""Tiny, seeded test models built in code (no TensorFlow, no PyTorch).

- ``onnx_models``: float32 ONNX models made with ``onnx.helper``.
- ``tflite_models``: TFLite flatbuffers made with the ``tflite`` package's builder
  functions (see ``TFLiteGraph``).

Each module offers ``good_models()`` and ``bad_models()``: fresh name -> builder maps.
"""
