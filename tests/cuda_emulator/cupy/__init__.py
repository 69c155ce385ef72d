"""A CPU stand-in for the part of CuPy that minisnn uses (see tests/cuda_emulator/__init__.py).

Only what the CuPy backend, the layers and the GPU tests need is here, by name: a missing function
raises AttributeError instead of silently running something else. Add names to the lists below
when the engine starts using more of CuPy.
"""

from numpy import (  # dtypes and ufuncs: NumPy's own work on emulated arrays (results stay "on the device")
    abs,
    add,
    argmax,
    copyto,
    exp,
    expm1,
    float32,
    float64,
    greater,
    int32,
    int64,
    log,
    log1p,
    matmul,
    maximum,
    minimum,
    multiply,
    sqrt,
    subtract,
    tanh,
    uint8,
    uint32,
)

from . import cuda
from ._arrays import (
    arange,
    array,
    asarray,
    ascontiguousarray,
    asnumpy,
    empty,
    empty_like,
    ndarray,
    ones,
    ones_like,
    zeros,
    zeros_like,
)
from ._raw_module import LaunchError, RawKernel, RawModule

__version__ = "cpu-emulator"
IS_CPU_EMULATOR = True  # the real CuPy has no such attribute

__all__ = [
    "LaunchError",
    "RawKernel",
    "RawModule",
    "abs",
    "add",
    "arange",
    "argmax",
    "array",
    "asarray",
    "ascontiguousarray",
    "asnumpy",
    "copyto",
    "cuda",
    "empty",
    "empty_like",
    "exp",
    "expm1",
    "float32",
    "float64",
    "greater",
    "int32",
    "int64",
    "log",
    "log1p",
    "matmul",
    "maximum",
    "minimum",
    "multiply",
    "ndarray",
    "ones",
    "ones_like",
    "sqrt",
    "subtract",
    "tanh",
    "uint8",
    "uint32",
    "zeros",
    "zeros_like",
]
