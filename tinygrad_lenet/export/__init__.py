"""Getting models out: ONNX graphs (for onnxruntime and other runtimes) and
safetensors weights (for PyTorch and others). Both need the `export` extra."""

from .onnx import ONNX_OPS, OPSET, ExportError, InputScaling, export_onnx, to_onnx
from .safetensors import SafetensorsError, load_safetensors, save_safetensors

__all__ = ["ONNX_OPS", "OPSET", "ExportError", "InputScaling", "SafetensorsError", "export_onnx", "load_safetensors",
           "save_safetensors", "to_onnx"]
