// bias_selu_dropout.cu: bias + SELU + alpha dropout fused in one pass, and its backward from the
// output. Masks as in alpha_dropout.cu (dropout_keep_at, common.cuh: bit-identical to minisnn.rng,
// per element or with per_feature per column); T = float or double; z, y, dy, dz are C-contiguous
// (rows, d), b is (d,); n = rows*d < 2^32.
//
//   bias_selu_dropout_forward<T>(z, b, y, n, d, lam, lam_alpha, k0, k1, threshold, per_feature, scale, shift,
//                                dropped)
//       y = dropout(selu(z + b)) in one pass (for_each_element, common.cuh); y may alias z.
//   bias_selu_dropout_backward_partial<T>(dy, y, dz, partial, rows, d, rows_per_chunk, lam, lam_alpha,
//                                         k0, k1, threshold, per_feature, scale, shift)
//       From the output y alone: on kept elements the SELU output is s = (y - shift)/scale and
//       dz = selu'(from s)*dy*scale; dropped elements get 0. Writes dz and, in the same pass, the
//       column sums of dz into `partial` (sum_column, common.cuh), finished by column_sum_partial
//       (column_sum.cu) when there are several chunks.
#include "common.cuh"

template <typename T>
__global__ void bias_selu_dropout_forward(const T* z, const T* b, T* y, long long n, int d, T lam, T lam_alpha,
                                          unsigned int k0, unsigned int k1, unsigned int threshold, int per_feature,
                                          T scale, T shift, T dropped)
{
    for_each_element(
        n, d, [=](long long i, int col) { return z[i] + b[col]; },
        [=](long long i, int col, T v) {
            const T s = selu_value(v, lam, lam_alpha);
            y[i] = dropout_keep_at(i, col, per_feature, k0, k1, threshold) ? scale * s + shift : dropped;
        });
}

template <typename T>
__global__ void bias_selu_dropout_backward_partial(const T* dy, const T* y, T* dz, T* partial, long long rows,
                                                   int d, long long rows_per_chunk, T lam, T lam_alpha,
                                                   unsigned int k0, unsigned int k1, unsigned int threshold,
                                                   int per_feature, T scale, T shift)
{
    const int col = blockIdx.x * COLUMN_BLOCK_X + threadIdx.x;
    long long begin, end;
    chunk_rows(rows, rows_per_chunk, &begin, &end);
    const T sum = sum_column<T>(
        begin, end, d, col, [=](long long i) { return GradAndOutput<T>{dy[i], y[i]}; },
        [=](long long i, GradAndOutput<T> v) {
            T g = T(0);
            if (dropout_keep_at(i, col, per_feature, k0, k1, threshold)) {
                const T s = (v.y - shift) / scale;
                g = selu_grad_from_output(v.dy, s, lam, lam_alpha) * scale;
            }
            dz[i] = g;
            return g;
        });
    store_column_block_sum(sum, partial + (long long)blockIdx.y * d, col, d);
}
