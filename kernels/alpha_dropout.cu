// alpha_dropout.cu: alpha dropout with counter-based masks (the fused bias + SELU + dropout kernels
// are in bias_selu_dropout.cu). The keep bit of flat element i is dropout_keep(i, k0, k1, threshold)
// (common.cuh), the same bits as minisnn.rng.DropoutMask.keep, so masks match the CPU backends
// exactly and the backward regenerates the mask instead of reading a stored one. Kept elements map
// to scale*v + shift, dropped ones to `dropped` (alpha dropout: a, b, a*alpha' + b). T = float or
// double; n < 2^32. Both kernels use the unrolled grid-stride loop of common.cuh (for_each_element).
//
//   alpha_dropout_forward<T>(x, y, n, k0, k1, threshold, scale, shift, dropped)    y may alias x.
//   alpha_dropout_backward<T>(dy, dx, n, k0, k1, threshold, scale)                dx = keep*scale*dy.
#include "common.cuh"

template <typename T>
__global__ void alpha_dropout_forward(const T* x, T* y, long long n, unsigned int k0, unsigned int k1,
                                      unsigned int threshold, T scale, T shift, T dropped)
{
    for_each_element(
        n, 1, [=](long long i, int) { return x[i]; },
        [=](long long i, int, T v) {
            y[i] = dropout_keep((unsigned int)i, k0, k1, threshold) ? scale * v + shift : dropped;
        });
}

template <typename T>
__global__ void alpha_dropout_backward(const T* dy, T* dx, long long n, unsigned int k0, unsigned int k1,
                                       unsigned int threshold, T scale)
{
    for_each_element(
        n, 1, [=](long long i, int) { return dy[i]; },
        [=](long long i, int, T v) { dx[i] = dropout_keep((unsigned int)i, k0, k1, threshold) ? scale * v : T(0); });
}
