"""Training templates: one module per recipe, sharing evaluation, ONNX export and the run contract."""
