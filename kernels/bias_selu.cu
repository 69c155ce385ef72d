// bias_selu.cu: fused bias + SELU, and its backward with the bias gradient in the same pass.
// Arrays are C-contiguous (rows, d); T = float or double; lam_alpha = lam*alpha.
//
//   bias_selu_forward<T>(z, b, y, n, d, lam, lam_alpha)
//       y = selu(z + b) in one pass, n = rows*d; y may alias z. The unrolled grid-stride loop of
//       common.cuh (for_each_element), which tracks each element's column without a division.
//   bias_selu_backward_partial<T>(dy, y, dz, partial, rows, d, rows_per_chunk, lam, lam_alpha)
//       dz = selu'(from y) * dy written in the same pass that sums dz into `partial`, so the bias
//       gradient costs no extra read of dz (sum_column, common.cuh). Chunked like column_sum_partial
//       (column_sum.cu), which also finishes the sum when there are several chunks.
#include "common.cuh"

template <typename T>
__global__ void bias_selu_forward(const T* z, const T* b, T* y, long long n, int d, T lam, T lam_alpha)
{
    for_each_element(
        n, d, [=](long long i, int col) { return z[i] + b[col]; },
        [=](long long i, int, T v) { y[i] = selu_value(v, lam, lam_alpha); });
}

template <typename T>
__global__ void bias_selu_backward_partial(const T* dy, const T* y, T* dz, T* partial, long long rows, int d,
                                           long long rows_per_chunk, T lam, T lam_alpha)
{
    const int col = blockIdx.x * COLUMN_BLOCK_X + threadIdx.x;
    long long begin, end;
    chunk_rows(rows, rows_per_chunk, &begin, &end);
    const T sum = sum_column<T>(
        begin, end, d, col, [=](long long i) { return GradAndOutput<T>{dy[i], y[i]}; },
        [=](long long i, GradAndOutput<T> v) {
            const T g = selu_grad_from_output(v.dy, v.y, lam, lam_alpha);
            dz[i] = g;
            return g;
        });
    store_column_block_sum(sum, partial + (long long)blockIdx.y * d, col, d);
}
