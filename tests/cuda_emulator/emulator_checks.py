"""Checks that the CUDA emulator catches the mistakes it claims to catch (run with it on the path).

tests/test_cuda_emulated.py runs this file next to the GPU tests, with tests/cuda_emulator first
on PYTHONPATH (the file name does not start with test_, so a normal pytest run never collects it).
The tests are marked gpu like the tests they vouch for: they need a CUDA device, here the emulated one.
"""

import subprocess
import sys
import textwrap

import cupy
import numpy as np
import pytest

pytestmark = pytest.mark.gpu

# Small kernels, each showing one kind of mistake next to its correct version.
SOURCE = r"""
template <typename T>
__global__ void pair_sum(const T* x, T* out, int synchronize)
{
    __shared__ T values[2];
    values[threadIdx.x] = x[threadIdx.x];
    if (synchronize) {
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        out[0] = values[0] + values[1];
    }
}

template <typename T>
__global__ void copy_first(const T* x, T* y, long long n)
{
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        y[i] = x[i];
    }
}

template <typename T>
__global__ void barrier_after_early_return(T* y, long long n)
{
    const long long i = threadIdx.x;
    if (i >= n) {
        return;
    }
    __syncthreads();
    y[i] = T(1);
}

template <typename T>
__global__ void read_one_past_the_end(const T* x, T* y, long long n)
{
    const long long i = threadIdx.x;
    if (i <= n) {  // the bug: <= instead of <
        y[0] = x[i];
    }
}
"""
NAMES = ["pair_sum<float>", "copy_first<float>", "barrier_after_early_return<float>", "read_one_past_the_end<float>"]


@pytest.fixture(scope="module")
def module():
    return cupy.RawModule(code=SOURCE, name_expressions=NAMES)


def test_cupy_is_the_emulator():
    assert getattr(cupy, "IS_CPU_EMULATOR", False), f"imported the real CuPy from {cupy.__file__}"


def test_a_missing_barrier_gives_a_wrong_result(module):
    x = cupy.asarray(np.array([3.0, 4.0], dtype=np.float32))
    out = cupy.zeros(1, dtype=np.float32)
    pair_sum = module.get_function("pair_sum<float>")
    pair_sum((1,), (2,), (x, out, np.int32(1)))
    assert float(out[0]) == 7.0
    pair_sum((1,), (2,), (cupy.asarray(np.array([5.0, 6.0], dtype=np.float32)), out, np.int32(0)))
    assert float(out[0]) != 11.0  # thread 0 read values[1] before thread 1 wrote 6 into it


def test_arguments_must_match_the_parameter_types_exactly(module):
    copy_first = module.get_function("copy_first<float>")
    x, y = cupy.ones(5, dtype=np.float32), cupy.zeros(5, dtype=np.float32)
    with pytest.raises(TypeError, match=r"\(float\*,float\*,int\) do not match .*\(float\*,float\*,long long\)"):
        copy_first((1,), (8,), (x, y, np.int32(5)))
    with pytest.raises(TypeError, match="double"):
        copy_first((1,), (8,), (x, cupy.zeros(5, dtype=np.float64), np.int64(5)))
    with pytest.raises(TypeError, match="host numpy.ndarray"):
        copy_first((1,), (8,), (np.ones(5, dtype=np.float32), y, np.int64(5)))
    with pytest.raises(TypeError, match="NumPy scalars"):
        copy_first((1,), (8,), (x, y, 5))
    with pytest.raises(ValueError, match="C-contiguous"):
        copy_first((1,), (8,), (cupy.ones((5, 2), dtype=np.float32)[:, 0], y, np.int64(5)))
    copy_first((1,), (8,), (x, y, np.int64(5)))
    np.testing.assert_array_equal(cupy.asnumpy(y), np.ones(5, dtype=np.float32))


def test_launch_shapes_a_gpu_refuses_are_refused(module):
    copy_first = module.get_function("copy_first<float>")
    x, y = cupy.ones(5, dtype=np.float32), cupy.zeros(5, dtype=np.float32)
    with pytest.raises(cupy.LaunchError, match="invalid launch shape"):
        copy_first((1,), (2048,), (x, y, np.int64(5)))
    with pytest.raises(cupy.LaunchError, match="invalid launch shape"):
        copy_first((1, 70000), (32,), (x, y, np.int64(5)))


def test_a_barrier_that_not_every_thread_reaches_is_an_error(module):
    y = cupy.zeros(8, dtype=np.float32)
    with pytest.raises(cupy.LaunchError, match="__syncthreads"):
        module.get_function("barrier_after_early_return<float>")((1,), (8,), (y, np.int64(5)))


def test_host_and_device_arrays_do_not_mix():
    with pytest.raises(TypeError, match="host NumPy array"):
        cupy.ones(3) + np.ones(3)
    total = cupy.ones(3) + 1.0
    assert isinstance(total, cupy.ndarray) and isinstance(total.sum(), cupy.ndarray)


def test_reading_past_the_end_of_an_array_crashes_and_names_the_kernel():
    # In a child process: the fault kills it. The child inherits PYTHONPATH, so it imports the emulator too.
    script = textwrap.dedent("""
        import numpy as np, cupy
        from cuda_emulator.emulator_checks import SOURCE, NAMES
        kernel = cupy.RawModule(code=SOURCE, name_expressions=NAMES).get_function("read_one_past_the_end<float>")
        x, y = cupy.ones(1000, dtype=np.float32), cupy.zeros(1, dtype=np.float32)
        kernel((1,), (1024,), (x, y, np.int64(1000)))
        print("no fault")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode != 0 and "no fault" not in result.stdout
    assert "invalid memory access" in result.stderr and "read_one_past_the_end<float>" in result.stderr
    assert "thread (1000, 0, 0)" in result.stderr, result.stderr
