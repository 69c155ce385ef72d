// common.cuh: constants, launch shapes and device helpers shared by every kernel file.
//
// Each kernels/*.cu includes this header; minisnn/kernel_sources.py inlines it into the source
// before compiling, so CuPy's compile cache sees any change to it. Values written as
// `[[maybe_unused]] constexpr TYPE NAME = VALUE;` (each file uses only some) are parsed by
// kernel_sources.header_constants(): the backend reads the launch shapes from there, and
// tests/test_kernel_constants.py checks the math constants against minisnn/constants.py and
// minisnn/rng.py.
//
// SELU convention (minisnn/constants.py): x > 0 is the linear branch; expm1 only ever sees
// min(x, 0); the backward uses the output y (y > 0 exactly when x > 0) and the slope
// lam*alpha*exp(x) = y + lam*alpha on the exponential branch. Kernels take lam and
// lam_alpha = lam*alpha (rounded once from the float64 product on the host, as NumPy does).
#pragma once

// ---- SELU parameters of the fixed point (0, 1) (minisnn/constants.py) ----------------------------
[[maybe_unused]] constexpr double ALPHA_01 = 1.6732632423543772848170429916717;
[[maybe_unused]] constexpr double LAMBDA_01 = 1.0507009873554804934193349852946;
[[maybe_unused]] constexpr double LAMBDA_ALPHA_01 = 1.7580993408473768599402175208123;

// ---- lowbias32 multipliers of the dropout hash (minisnn/rng.py) -------------------------------
[[maybe_unused]] constexpr unsigned int MIX_MUL1 = 0x21F0AAADu;
[[maybe_unused]] constexpr unsigned int MIX_MUL2 = 0x735A2D97u;

// ---- launch shapes (read by minisnn/backends/cupy_backend.py) ---------------------------------
[[maybe_unused]] constexpr int ELEMENTWISE_BLOCK = 256;   // threads per block of the grid-stride elementwise kernels
[[maybe_unused]] constexpr int ELEMENTWISE_UNROLL = 4;    // elements per thread per grid-stride step
[[maybe_unused]] constexpr int COLUMN_BLOCK_X = 32;       // columns per block of the column reductions (one warp wide)
[[maybe_unused]] constexpr int COLUMN_BLOCK_Y = 8;        // rows read in parallel per block of the column reductions
[[maybe_unused]] constexpr int COLUMN_UNROLL = 4;         // rows per thread per step of the column reductions
[[maybe_unused]] constexpr int ROW_BLOCK = 32;            // threads per row in the softmax kernels (one block per row)
[[maybe_unused]] constexpr int REDUCE_BLOCK = 256;        // threads of the single-block mean
[[maybe_unused]] constexpr int GEMM_NAIVE_BLOCK_X = 32;   // sgemm_naive: block (32, 8), one output per thread
[[maybe_unused]] constexpr int GEMM_NAIVE_BLOCK_Y = 8;
[[maybe_unused]] constexpr int GEMM_TILE = 32;            // sgemm_tiled: 32x32 tiles, block (32, 32)
[[maybe_unused]] constexpr int GEMM_RB_BM = 128;          // sgemm_register_blocked: 128x128 block tile,
[[maybe_unused]] constexpr int GEMM_RB_BN = 128;
[[maybe_unused]] constexpr int GEMM_RB_BK = 8;            //   k-slices of 8,
[[maybe_unused]] constexpr int GEMM_RB_TM = 8;            //   8x8 outputs per thread,
[[maybe_unused]] constexpr int GEMM_RB_TN = 8;
[[maybe_unused]] constexpr int GEMM_RB_THREADS = 256;     //   (128/8) * (128/8) = 256 threads.

// ---- counter-based dropout mask (bit-identical to minisnn.rng.random_bits) --------------------
// mix32 is Chris Wellons' lowbias32; all arithmetic wraps in 32 bits.
__device__ __forceinline__ unsigned int mix32(unsigned int x)
{
    x ^= x >> 16;
    x *= MIX_MUL1;
    x ^= x >> 15;
    x *= MIX_MUL2;
    x ^= x >> 15;
    return x;
}

// Keep element `index` (flat C-order index, taken modulo 2^32) iff its hash is below `threshold`.
__device__ __forceinline__ bool dropout_keep(unsigned int index, unsigned int k0, unsigned int k1,
                                             unsigned int threshold)
{
    return mix32(mix32(index ^ k0) ^ k1) < threshold;
}

// The keep decision of flat element i in column col of a (rows, d) array: its own (index i), or
// with per_feature the decision of its column (index col), shared by every row.
__device__ __forceinline__ bool dropout_keep_at(long long i, int col, int per_feature, unsigned int k0,
                                                unsigned int k1, unsigned int threshold)
{
    return dropout_keep(per_feature ? (unsigned int)col : (unsigned int)i, k0, k1, threshold);
}

// ---- math overloads for T = float / double ---------------------------------------------------
__device__ __forceinline__ float expm1_t(float x) { return expm1f(x); }
__device__ __forceinline__ double expm1_t(double x) { return expm1(x); }
__device__ __forceinline__ float exp_t(float x) { return expf(x); }
__device__ __forceinline__ double exp_t(double x) { return exp(x); }
__device__ __forceinline__ float log_t(float x) { return logf(x); }
__device__ __forceinline__ double log_t(double x) { return log(x); }
__device__ __forceinline__ float sqrt_t(float x) { return sqrtf(x); }
__device__ __forceinline__ double sqrt_t(double x) { return sqrt(x); }
template <typename T> __device__ __forceinline__ T infinity_t();
template <> __device__ __forceinline__ float infinity_t<float>() { return __int_as_float(0x7f800000); }
template <> __device__ __forceinline__ double infinity_t<double>()
{
    return __longlong_as_double(0x7ff0000000000000LL);
}
template <typename T> __device__ __forceinline__ T quiet_nan_t() { return infinity_t<T>() - infinity_t<T>(); }

// ---- SELU ---------------------------------------------------------------------------------------

// selu(x): lam*x for x > 0, else lam*alpha*expm1(x); the exp argument is min(x, 0) (NaN passes through).
template <typename T>
__device__ __forceinline__ T selu_value(T x, T lam, T lam_alpha)
{
    const T negative = x > T(0) ? T(0) : x;
    return x > T(0) ? lam * x : lam_alpha * expm1_t(negative);
}

// dx = dy*lam where y > 0, dy*(y + lam*alpha) elsewhere: the SELU gradient from its output alone.
template <typename T>
__device__ __forceinline__ T selu_grad_from_output(T dy, T y, T lam, T lam_alpha)
{
    return y > T(0) ? dy * lam : dy * (y + lam_alpha);
}

// The two values a SELU backward reads per element.
template <typename T>
struct GradAndOutput {
    T dy, y;
};

// ---- elementwise loop ---------------------------------------------------------------------------
// A grid-stride loop over n elements of a C-contiguous (n/d, d) array. Per step each thread takes
// ELEMENTWISE_UNROLL elements blockDim.x apart (each warp access stays coalesced): it first calls
// load(i, col) for all of them, then store(i, col, value), so several independent loads are in
// flight per thread, and an output may alias an input (every element is read, then written, by
// the same thread). col = i % d is tracked incrementally: one 64-bit modulo per thread, not per
// element. Elementwise ops without a bias pass d = 1.
template <typename Load, typename Store>
__device__ __forceinline__ void for_each_element(long long n, int d, Load load, Store store)
{
    using Value = decltype(load(0LL, 0));
    const long long block_span = (long long)blockDim.x * ELEMENTWISE_UNROLL;
    const long long stride = (long long)gridDim.x * block_span;
    const int block_step = (int)(blockDim.x % d);
    const int stride_step = (int)(stride % d);
    long long base = (long long)blockIdx.x * block_span + threadIdx.x;
    int base_col = (int)(base % d);
    for (; base < n; base += stride) {
        Value values[ELEMENTWISE_UNROLL];
        int col = base_col;
#pragma unroll
        for (int u = 0; u < ELEMENTWISE_UNROLL; ++u) {
            const long long i = base + (long long)u * blockDim.x;
            if (i < n) {
                values[u] = load(i, col);
            }
            col += block_step;
            col = col >= d ? col - d : col;
        }
        col = base_col;
#pragma unroll
        for (int u = 0; u < ELEMENTWISE_UNROLL; ++u) {
            const long long i = base + (long long)u * blockDim.x;
            if (i < n) {
                store(i, col, values[u]);
            }
            col += block_step;
            col = col >= d ? col - d : col;
        }
        base_col += stride_step;
        base_col = base_col >= d ? base_col - d : base_col;
    }
}

// ---- column reduction ---------------------------------------------------------------------------
// Blocks of (COLUMN_BLOCK_X, COLUMN_BLOCK_Y) threads: thread (tx, ty) has summed some rows of
// column threadIdx.x of the block. column_block_total adds the COLUMN_BLOCK_Y partial sums of each
// column in shared memory and returns the total to every thread of the column. Every thread of
// the block must call it (it synchronizes).
template <typename S>
__device__ __forceinline__ S column_block_total(S thread_sum)
{
    __shared__ S sums[COLUMN_BLOCK_Y][COLUMN_BLOCK_X + 1];
    sums[threadIdx.y][threadIdx.x] = thread_sum;
    __syncthreads();
    for (int half = COLUMN_BLOCK_Y / 2; half > 0; half /= 2) {
        if (threadIdx.y < half) {
            sums[threadIdx.y][threadIdx.x] += sums[threadIdx.y + half][threadIdx.x];
        }
        __syncthreads();
    }
    const S total = sums[0][threadIdx.x];
    __syncthreads();  // the next call reuses sums
    return total;
}

// The column's total (as above) written to out[col] by the column's first thread.
template <typename T>
__device__ __forceinline__ void store_column_block_sum(T thread_sum, T* out, int col, int d)
{
    const T total = column_block_total(thread_sum);
    if (threadIdx.y == 0 && col < d) {
        out[col] = total;
    }
}

// The sum over rows r in [begin, end) with r = threadIdx.y (mod COLUMN_BLOCK_Y) of process(i, load(i)),
// i = r*d + col (0 when col >= d). COLUMN_UNROLL rows per step: all their loads are issued before
// any value is processed, so they are in flight together, and process() may store to element i of
// an array that aliases an input (each element is read, then written, by the same thread).
template <typename T, typename Load, typename Process>
__device__ __forceinline__ T sum_column(long long begin, long long end, int d, int col, Load load, Process process)
{
    using Value = decltype(load(0LL));
    T sum = T(0);
    if (col >= d) {
        return sum;
    }
    for (long long r = begin + threadIdx.y; r < end; r += (long long)COLUMN_BLOCK_Y * COLUMN_UNROLL) {
        Value values[COLUMN_UNROLL];
#pragma unroll
        for (int u = 0; u < COLUMN_UNROLL; ++u) {
            const long long row = r + (long long)u * COLUMN_BLOCK_Y;
            if (row < end) {
                values[u] = load(row * d + col);
            }
        }
#pragma unroll
        for (int u = 0; u < COLUMN_UNROLL; ++u) {
            const long long row = r + (long long)u * COLUMN_BLOCK_Y;
            if (row < end) {
                sum += process(row * d + col, values[u]);
            }
        }
    }
    return sum;
}

// Rows [begin, end) handled by block row blockIdx.y of a column reduction over `rows` rows.
__device__ __forceinline__ void chunk_rows(long long rows, long long rows_per_chunk, long long* begin,
                                           long long* end)
{
    *begin = (long long)blockIdx.y * rows_per_chunk;
    *end = *begin + rows_per_chunk < rows ? *begin + rows_per_chunk : rows;
}
