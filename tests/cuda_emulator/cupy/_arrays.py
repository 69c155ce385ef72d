"""Emulated device arrays: NumPy arrays of a distinct type, allocated with a guard page after them.

`ndarray` subclasses numpy.ndarray, so every NumPy method and ufunc works on it, but it is a
different type from numpy.ndarray, as with real CuPy: a ufunc that mixes it with a host array raises
TypeError, and kernels refuse host arrays. The functions that create arrays here (not NumPy
operations such as ufunc results, .copy() or .astype()) place the data so that it ends exactly at
an inaccessible page: a kernel that reads or writes past the end of such an array faults at once
(cuda_emulator.h names the kernel, block and thread). Float arrays from empty() start as NaN, so an
element a kernel forgot to write shows up in the results.
"""

from __future__ import annotations

import ctypes
import mmap

import numpy as np

_PROT_NONE = 0
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)


class MemoryPointer:
    """cupy.cuda.MemoryPointer: the address of a device array's first byte, for raw copies."""

    def __init__(self, owner: np.ndarray):
        self._owner = owner  # keeps the memory alive
        self.ptr = owner.ctypes.data

    def copy_from_device(self, source: MemoryPointer, size: int) -> None:
        """Copy `size` bytes from `source` to here (memcpy; the caller keeps within both arrays)."""
        ctypes.memmove(self.ptr, source.ptr, size)

    def copy_from_device_async(self, source: MemoryPointer, size: int, stream=None) -> None:
        """As copy_from_device: emulated copies finish at once, so `stream` is ignored."""
        self.copy_from_device(source, size)


class ndarray(np.ndarray):
    """An array 'on the device' (host memory really); ufuncs keep results on the device.

    Like CuPy's, .data is a MemoryPointer (NumPy's memoryview stays reachable through a host view).
    """

    @property
    def data(self) -> MemoryPointer:
        return MemoryPointer(self)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        outputs = kwargs.get("out", ())
        for operand in inputs + outputs:
            if isinstance(operand, np.ndarray) and not isinstance(operand, ndarray):
                raise TypeError(
                    f"Unsupported type {type(operand)}: {ufunc.__name__} mixes a host NumPy array with a "
                    "device array (move it with cupy.asarray or cupy.asnumpy first)"
                )
        plain_inputs = tuple(_as_host_view(operand) for operand in inputs)
        if outputs:
            kwargs["out"] = tuple(_as_host_view(operand) for operand in outputs)
        result = getattr(ufunc, method)(*plain_inputs, **kwargs)
        if outputs:
            return outputs[0] if len(outputs) == 1 else outputs
        if isinstance(result, tuple):
            return tuple(_to_device(part) for part in result)
        return _to_device(result)


def _as_host_view(operand):
    return operand.view(np.ndarray) if isinstance(operand, ndarray) else operand


def _to_device(result):
    """A ufunc result as a device array (CuPy returns 0-d arrays, not scalars, from reductions)."""
    if result is None:
        return None
    return np.asarray(result).view(ndarray)


def _guarded_buffer(shape: tuple[int, ...], dtype: np.dtype) -> ndarray:
    """An uninitialized C-contiguous array whose last byte is followed by an inaccessible page."""
    count = int(np.prod(shape, dtype=np.int64))
    n_bytes = count * dtype.itemsize
    if n_bytes == 0:
        return np.empty(shape, dtype).view(ndarray)
    data_pages = -(-n_bytes // mmap.PAGESIZE)
    mapping = mmap.mmap(-1, (data_pages + 1) * mmap.PAGESIZE)
    start = ctypes.addressof(ctypes.c_char.from_buffer(mapping))
    guard = start + data_pages * mmap.PAGESIZE
    if _libc.mprotect(guard, mmap.PAGESIZE, _PROT_NONE) != 0:
        raise OSError(ctypes.get_errno(), "mprotect failed for the guard page of an emulated array")
    offset = data_pages * mmap.PAGESIZE - n_bytes  # a multiple of the item size: pages are
    flat = np.frombuffer(mapping, dtype=dtype, count=count, offset=offset)
    return flat.reshape(shape).view(ndarray)


def _shape(shape) -> tuple[int, ...]:
    return (int(shape),) if np.isscalar(shape) else tuple(int(size) for size in shape)


def empty(shape, dtype=np.float64) -> ndarray:
    """A new device array; floats are NaN (a GPU would hold garbage), other types are zero."""
    array = _guarded_buffer(_shape(shape), np.dtype(dtype))
    array.fill(np.nan if array.dtype.kind in "fc" else 0)
    return array


def zeros(shape, dtype=np.float64) -> ndarray:
    array = _guarded_buffer(_shape(shape), np.dtype(dtype))
    array.fill(0)
    return array


def ones(shape, dtype=np.float64) -> ndarray:
    array = _guarded_buffer(_shape(shape), np.dtype(dtype))
    array.fill(1)
    return array


def empty_like(prototype, dtype=None) -> ndarray:
    return empty(prototype.shape, prototype.dtype if dtype is None else dtype)


def zeros_like(prototype, dtype=None) -> ndarray:
    return zeros(prototype.shape, prototype.dtype if dtype is None else dtype)


def ones_like(prototype, dtype=None) -> ndarray:
    return ones(prototype.shape, prototype.dtype if dtype is None else dtype)


def asarray(values, dtype=None) -> ndarray:
    """`values` on the device: a device array of the right dtype is returned as is, anything else copied."""
    if isinstance(values, ndarray) and (dtype is None or values.dtype == np.dtype(dtype)):
        return values
    host = np.asarray(_as_host_view(values), dtype=dtype)
    array = _guarded_buffer(host.shape, host.dtype)
    array[...] = host
    return array


def array(values, dtype=None) -> ndarray:
    """A new device array holding a copy of `values`."""
    host = np.asarray(_as_host_view(values), dtype=dtype)
    copy = _guarded_buffer(host.shape, host.dtype)
    copy[...] = host
    return copy


def ascontiguousarray(values, dtype=None) -> ndarray:
    """`values` as a C-contiguous device array (copied only if it is not one already)."""
    if isinstance(values, ndarray) and values.flags.c_contiguous and (dtype is None or values.dtype == dtype):
        return values
    return array(values, dtype=dtype)


def arange(*args, dtype=None) -> ndarray:
    return array(np.arange(*args, dtype=dtype))


def asnumpy(values) -> np.ndarray:
    """A host NumPy copy of a device array (or of anything array-like)."""
    return np.array(_as_host_view(values), copy=True)
