"""cupy.cuda.runtime of the emulator: a single small pretend GPU.

Its shape is what the backend sizes grid-stride launches by: by default 2 multiprocessors of 512
threads, so that loops over large arrays really take several strides (a real GPU has ~100 SMs and
would cover the test arrays in one). MINISNN_EMULATED_SMS and MINISNN_EMULATED_THREADS_PER_SM
change it.
"""

import os

# Attribute numbers and function names are CUDA's own.
cudaDevAttrMultiProcessorCount = 16
cudaDevAttrMaxThreadsPerMultiProcessor = 39


class CUDARuntimeError(RuntimeError):
    """Raised for a request the pretend device cannot satisfy."""


def getDeviceCount() -> int:
    return 1


def getDevice() -> int:
    return 0


def _check_device(device: int) -> None:
    if device != 0:
        raise CUDARuntimeError(f"cudaErrorInvalidDevice: the emulator has only device 0, not {device}")


def deviceGetAttribute(attribute: int, device: int) -> int:
    """The two attributes the backend reads: multiprocessor count and threads per multiprocessor."""
    _check_device(device)
    values = {
        cudaDevAttrMultiProcessorCount: int(os.environ.get("MINISNN_EMULATED_SMS", "2")),
        cudaDevAttrMaxThreadsPerMultiProcessor: int(os.environ.get("MINISNN_EMULATED_THREADS_PER_SM", "512")),
    }
    if attribute not in values:
        raise CUDARuntimeError(f"the emulator does not know device attribute {attribute}")
    return values[attribute]


def getDeviceProperties(device: int) -> dict:
    _check_device(device)
    return {"name": b"CPU emulator (g++, one fiber per CUDA thread)", "major": 0, "minor": 0,
            "totalGlobalMem": 2**30, "multiProcessorCount": deviceGetAttribute(cudaDevAttrMultiProcessorCount, 0)}


def runtimeGetVersion() -> int:
    return 0
