"""Getting models out: ONNX graphs (for onnxruntime and other runtimes) and
safetensors weights (for PyTorch and others). Both need the `export` extra."""

from .onnx import ONNX_OPS, OPSET, ExportError, export_onnx, to_onnx
from .safetensors import SafetensorsError, load_safetensors, save_safetensors

__all__ = ["ONNX_OPS", "OPSET", "ExportError", "SafetensorsError", "export_onnx", "load_safetensors", "save_safetensors",
           "to_onnx"]
