"""The constants of kernels/common.cuh equal the Python ones they mirror (parsed from the header)."""

import numpy as np

from minisnn import constants, rng
from minisnn.kernel_sources import header_constants, kernel_dir


def test_selu_constants_match_python():
    header = header_constants()
    # The header spells the same 32-digit literals; parsed as float64 they must be the same doubles.
    assert header["ALPHA_01"] == constants.ALPHA_01
    assert header["LAMBDA_01"] == constants.LAMBDA_01
    assert header["LAMBDA_ALPHA_01"] == constants.LAMBDA_ALPHA_01


def test_hash_multipliers_match_python():
    header = header_constants()
    assert header["MIX_MUL1"] == rng.MIX_MUL1
    assert header["MIX_MUL2"] == rng.MIX_MUL2


def test_header_mix32_is_the_python_mix32():
    # The body of mix32 in common.cuh uses the shift amounts of rng.mix32; check them on a known input.
    text = (kernel_dir() / "common.cuh").read_text()
    body = text[text.index("unsigned int mix32(") :].split("}", 1)[0]
    steps = [line.strip() for line in body.splitlines() if line.strip().startswith("x ")]
    assert steps == [
        "x ^= x >> 16;",
        "x *= MIX_MUL1;",
        "x ^= x >> 15;",
        "x *= MIX_MUL2;",
        "x ^= x >> 15;",
    ]
    # Replaying those steps in NumPy reproduces rng.mix32 bit for bit.
    x = np.arange(0, 2**32 - 1, 2**20 + 7, dtype=np.uint32)
    expected = rng.mix32(x.copy())
    y = x.copy()
    y ^= y >> np.uint32(16)
    y *= np.uint32(header_constants()["MIX_MUL1"])
    y ^= y >> np.uint32(15)
    y *= np.uint32(header_constants()["MIX_MUL2"])
    y ^= y >> np.uint32(15)
    np.testing.assert_array_equal(y, expected)


def test_launch_shapes_are_consistent():
    shapes = header_constants()
    assert shapes["GEMM_RB_THREADS"] == (shapes["GEMM_RB_BM"] // shapes["GEMM_RB_TM"]) * (
        shapes["GEMM_RB_BN"] // shapes["GEMM_RB_TN"]
    )
    assert shapes["COLUMN_BLOCK_X"] * shapes["COLUMN_BLOCK_Y"] <= 1024
    assert shapes["GEMM_TILE"] ** 2 <= 1024
    for name in ("COLUMN_BLOCK_Y", "ROW_BLOCK", "REDUCE_BLOCK"):  # tree reductions halve these
        assert shapes[name] & (shapes[name] - 1) == 0, f"{name} must be a power of two"
