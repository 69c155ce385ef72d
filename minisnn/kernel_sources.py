"""The CUDA C kernel sources: where they live, which kernels each file defines, its header constants.

The sources are the files kernels/*.cu and kernels/*.cuh. A source checkout or editable install
finds them at the repository root (next to minisnn/); a wheel carries them as package data in
minisnn/kernels/. Local `#include "x.cuh"` lines are inlined, so the text handed to NVRTC is
self-contained and CuPy's compile cache (keyed by source text) notices a changed header.
This module needs no GPU and no CuPy: the compile test and the backend both use it.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

# file stem -> kernels it defines; each is a template on T, instantiated as NAME<float>, NAME<double>.
# Files and kernels carry the name of the op they implement (minisnn.backends.base.OPS): file
# <op family>.cu, kernels <op> or <op>_<detail>; the sgemm_* kernels are variants of matmul.
KERNELS = {
    "selu": ("selu_forward", "selu_backward"),
    "bias_selu": ("bias_selu_forward", "bias_selu_backward_partial"),
    "column_sum": ("column_sum_partial",),
    "alpha_dropout": ("alpha_dropout_forward", "alpha_dropout_backward"),
    "bias_selu_dropout": ("bias_selu_dropout_forward", "bias_selu_dropout_backward_partial"),
    "softmax_cross_entropy": (
        "softmax_cross_entropy_forward",
        "softmax_cross_entropy_forward_mean",
        "softmax_cross_entropy_backward",
    ),
    "sgd_update": ("sgd_update", "sgd_update_momentum"),
    "adam_update": ("adam_update",),
    "sgemm": ("sgemm_naive", "sgemm_tiled", "sgemm_register_blocked"),
    "relu": ("relu_forward", "relu_backward"),
    "batch_norm": (
        "batch_norm_forward_statistics",
        "batch_norm_affine",
        "batch_norm_inference_affine",
        "batch_norm_backward_sums",
        "batch_norm_backward_dx",
    ),
    "layer_norm": ("layer_norm_forward", "layer_norm_backward_dx", "layer_norm_backward_column_sums"),
}
# NumPy dtype name -> the C type T of the template instantiation.
CTYPES = {"float32": "float", "float64": "double"}
COMMON_HEADER = "common.cuh"

_INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]+"([^"]+)"[ \t]*$', re.MULTILINE)
_CONSTEXPR = re.compile(r"^(?:\[\[maybe_unused\]\]\s+)?constexpr\s+[\w ]+?\s+(\w+)\s*=\s*([^;]+);", re.MULTILINE)


def kernel_dir() -> Path:
    """The folder holding the .cu/.cuh files: minisnn/kernels (wheel) or <repo>/kernels (checkout)."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "kernels", package.parent / "kernels"):
        if (candidate / COMMON_HEADER).is_file():
            return candidate
    raise FileNotFoundError(
        f"CUDA kernel sources not found in {package / 'kernels'} or {package.parent / 'kernels'}; "
        "reinstall minisnn (the wheel ships them as package data)"
    )


@cache
def load_source(stem: str) -> str:
    """The text of kernels/<stem>.cu with its local includes inlined (each header once)."""
    if stem not in KERNELS:
        raise KeyError(f"unknown kernel file {stem!r}; known: {', '.join(KERNELS)}")
    return _inline_includes(kernel_dir() / f"{stem}.cu", included=set())


def _inline_includes(path: Path, included: set[str]) -> str:
    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name in included:
            return ""
        included.add(name)
        return _inline_includes(path.parent / name, included)

    return _INCLUDE.sub(replace, path.read_text(encoding="utf-8"))


def name_expressions(stem: str) -> list[str]:
    """Every template instantiation of kernels/<stem>.cu, e.g. ["selu_forward<float>", ...]."""
    return [f"{kernel}<{ctype}>" for kernel in KERNELS[stem] for ctype in CTYPES.values()]


def kernel_name(kernel: str, dtype_name: str) -> str:
    """The name expression of `kernel` for a NumPy dtype name, e.g. ("selu_forward", "float32")."""
    if dtype_name not in CTYPES:
        raise TypeError(f"kernels take float32 or float64 arrays, got {dtype_name}")
    return f"{kernel}<{CTYPES[dtype_name]}>"


@cache
def header_constants() -> dict[str, int | float]:
    """name -> value of every `[[maybe_unused]] constexpr TYPE NAME = VALUE;` line of common.cuh."""
    text = (kernel_dir() / COMMON_HEADER).read_text(encoding="utf-8")
    constants: dict[str, int | float] = {}
    for name, literal in _CONSTEXPR.findall(text):
        literal = literal.strip()
        integer = re.fullmatch(r"(0[xX][0-9a-fA-F]+|\d+)[uUlL]*", literal)
        constants[name] = int(integer.group(1), 0) if integer else float(literal.rstrip("fF"))
    return constants
