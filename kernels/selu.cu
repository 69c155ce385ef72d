// selu.cu: SELU forward and backward, elementwise over n contiguous values (T = float or double).
//
//   selu_forward<T>(x, y, n, lam, lam_alpha)        y = selu(x); y may alias x.
//   selu_backward<T>(dy, y, dx, n, lam, lam_alpha)  dx from dy and the output y; dx may alias dy.
//
// One variant each: the unrolled grid-stride loop of common.cuh (for_each_element), any n.
// lam_alpha = lam*alpha.
#include "common.cuh"

template <typename T>
__global__ void selu_forward(const T* x, T* y, long long n, T lam, T lam_alpha)
{
    for_each_element(
        n, 1, [=](long long i, int) { return x[i]; },
        [=](long long i, int, T v) { y[i] = selu_value(v, lam, lam_alpha); });
}

template <typename T>
__global__ void selu_backward(const T* dy, const T* y, T* dx, long long n, T lam, T lam_alpha)
{
    for_each_element(
        n, 1, [=](long long i, int) { return GradAndOutput<T>{dy[i], y[i]}; },
        [=](long long i, int, GradAndOutput<T> v) { dx[i] = selu_grad_from_output(v.dy, v.y, lam, lam_alpha); });
}
