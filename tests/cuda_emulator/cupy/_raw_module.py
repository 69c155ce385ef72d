"""RawModule: CUDA C source compiled with g++ (cuda_emulator.build) and launched on the CPU.

Arguments are checked more strictly than CuPy checks them: arrays must be emulated device arrays
and C-contiguous (CuPy would pass a strided view's pointer and the kernel would read wrong
elements), and scalars must be NumPy scalars whose C type is exactly the kernel's parameter type
(CuPy would pass an np.int64 to an `int` parameter and the kernel would read half of it).
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from cuda_emulator.build import build_library

from ._arrays import ndarray

# NumPy type -> (the C spelling cuda_emulator.h uses, the ctypes type that holds such a scalar).
_C_TYPES: dict[np.dtype, tuple[str, Any]] = {
    np.dtype(np.float32): ("float", ctypes.c_float),
    np.dtype(np.float64): ("double", ctypes.c_double),
    np.dtype(np.int64): ("long long", ctypes.c_longlong),
    np.dtype(np.int32): ("int", ctypes.c_int),
    np.dtype(np.uint32): ("unsigned int", ctypes.c_uint),
    np.dtype(np.uint8): ("unsigned char", ctypes.c_ubyte),
}
# LaunchStatus values of cuda_emulator.h.
_LAUNCH_OK, _BAD_ARGUMENTS, _BAD_SHAPE, _DIVERGENT_BARRIER, _OUT_OF_MEMORY = range(5)


class LaunchError(RuntimeError):
    """A launch that a GPU would refuse, or a kernel whose threads did not all reach a barrier."""


class RawModule:
    """The kernels `name_expressions` of `code`, compiled for the CPU (`options` are NVRTC's: ignored)."""

    def __init__(self, code: str, options: tuple[str, ...] = (), name_expressions: tuple[str, ...] = ()):
        self.name_expressions = list(name_expressions)
        self.options = tuple(options)
        self._library = ctypes.CDLL(str(build_library(code, self.name_expressions)))

    def get_function(self, name: str) -> RawKernel:
        if name not in self.name_expressions:
            raise KeyError(f"{name!r} is not one of this module's name_expressions: {self.name_expressions}")
        return RawKernel(self._library, self.name_expressions.index(name), name)


def _dims(shape, what: str) -> tuple[int, int, int]:
    dims = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if not 1 <= len(dims) <= 3 or not all(isinstance(size, (int, np.integer)) for size in dims):
        raise TypeError(f"{what} must be an int or a tuple of 1 to 3 ints, got {shape!r}")
    if not all(0 < size < 2**31 for size in dims):
        raise LaunchError(f"{what} {shape!r} has a size outside [1, 2^31)")
    return tuple(int(size) for size in dims) + (1,) * (3 - len(dims))


class RawKernel:
    """One kernel of a RawModule; call it as kernel(grid, block, args) like a CuPy RawKernel."""

    def __init__(self, library: ctypes.CDLL, index: int, name: str):
        self.name = name
        self._launch = getattr(library, f"emulator_launch_{index}")
        self._launch.restype = ctypes.c_int
        self._launch.argtypes = (ctypes.c_uint,) * 6 + (ctypes.c_void_p, ctypes.c_char_p)
        signature = getattr(library, f"emulator_signature_{index}")
        signature.restype = ctypes.c_char_p
        self.parameter_types = signature().decode()

    def _argument(self, value, position: int) -> tuple[str, Any]:
        """(C type name, ctypes object holding the value) of one kernel argument."""
        if isinstance(value, ndarray):
            if value.dtype not in _C_TYPES:
                raise TypeError(f"{self.name}: argument {position} has unsupported dtype {value.dtype}")
            if not value.flags.c_contiguous:
                raise ValueError(f"{self.name}: argument {position} is not C-contiguous (a kernel sees raw memory)")
            return _C_TYPES[value.dtype][0] + "*", ctypes.c_void_p(value.ctypes.data)
        if isinstance(value, np.ndarray):
            raise TypeError(f"{self.name}: argument {position} is a host numpy.ndarray, not a device array")
        if isinstance(value, np.generic) and value.dtype in _C_TYPES:
            c_name, c_type = _C_TYPES[value.dtype]
            return c_name, c_type(value.item())
        raise TypeError(
            f"{self.name}: argument {position} is a {type(value).__name__}; pass device arrays and NumPy scalars "
            "of the parameter's exact type (np.float32, np.int64, ...)"
        )

    def __call__(self, grid, block, args, *, shared_mem: int = 0, stream=None) -> None:
        """Launch on grid x block threads and return when it has finished.

        `args` are device arrays and NumPy scalars in the kernel's parameter order. `stream` is
        accepted for CuPy's signature and ignored: every emulated launch is synchronous.
        """
        if shared_mem:
            raise NotImplementedError("the CPU emulator has no dynamic shared memory (shared_mem must be 0)")
        grid_dims, block_dims = _dims(grid, "grid"), _dims(block, "block")
        converted = [self._argument(value, position) for position, value in enumerate(args)]
        signature = ",".join(c_name for c_name, _ in converted)
        holders = [holder for _, holder in converted]
        pointers = (ctypes.c_void_p * max(1, len(holders)))(*(ctypes.addressof(holder) for holder in holders))
        status = self._launch(*grid_dims, *block_dims, pointers, signature.encode())
        if status == _BAD_ARGUMENTS:
            raise TypeError(
                f"{self.name}: arguments ({signature}) do not match the kernel's parameters ({self.parameter_types})"
            )
        if status == _BAD_SHAPE:
            raise LaunchError(f"{self.name}: invalid launch shape grid={grid_dims} block={block_dims}")
        if status == _DIVERGENT_BARRIER:
            raise LaunchError(f"{self.name}: some threads of a block returned while others waited in __syncthreads()")
        if status == _OUT_OF_MEMORY:
            raise MemoryError(f"{self.name}: no memory for the stacks of {np.prod(block_dims)} emulated threads")
        if status != _LAUNCH_OK:
            raise LaunchError(f"{self.name}: unknown launch status {status}")
