// alpha_dropout.cu: alpha dropout with counter-based masks (the fused bias + SELU + dropout kernels
// are in bias_selu_dropout.cu). The keep bit of flat element i is dropout_keep(i, k0, k1, threshold)
// (common.cuh), the same bits as minisnn.rng.DropoutMask.keep, so masks match the CPU backends
// exactly and the backward regenerates the mask instead of reading a stored one; with per_feature,
// element i of a (rows, d) array takes the bit of its column i % d (dropout_keep_at). Kept elements
// map to scale*v + shift, dropped ones to `dropped` (alpha dropout: a, b, a*alpha' + b). T = float
// or double; n < 2^32; d is the last axis (1 is fine without per_feature). Both kernels use the
// unrolled grid-stride loop of common.cuh (for_each_element), which tracks the column.
//
//   alpha_dropout_forward<T>(x, y, n, d, k0, k1, threshold, per_feature, scale, shift, dropped)
//       y may alias x.
//   alpha_dropout_backward<T>(dy, dx, n, d, k0, k1, threshold, per_feature, scale)
//       dx = keep*scale*dy; dx may alias dy.
#include "common.cuh"

template <typename T>
__global__ void alpha_dropout_forward(const T* x, T* y, long long n, int d, unsigned int k0, unsigned int k1,
                                      unsigned int threshold, int per_feature, T scale, T shift, T dropped)
{
    for_each_element(
        n, d, [=](long long i, int) { return x[i]; },
        [=](long long i, int col, T v) {
            y[i] = dropout_keep_at(i, col, per_feature, k0, k1, threshold) ? scale * v + shift : dropped;
        });
}

template <typename T>
__global__ void alpha_dropout_backward(const T* dy, T* dx, long long n, int d, unsigned int k0, unsigned int k1,
                                       unsigned int threshold, int per_feature, T scale)
{
    for_each_element(
        n, d, [=](long long i, int) { return dy[i]; },
        [=](long long i, int col, T v) {
            dx[i] = dropout_keep_at(i, col, per_feature, k0, k1, threshold) ? scale * v : T(0);
        });
}
