// relu.cu: ReLU forward and backward, elementwise over n contiguous values (T = float or double).
//
//   relu_forward<T>(x, y, n)        y = max(x, 0), NaN passing through (as np.maximum); y may alias x.
//   relu_backward<T>(dy, y, dx, n)  dx = dy where y > 0, else 0 (also where dy is inf or NaN);
//                                   dx may alias dy.
#include "common.cuh"

template <typename T>
__global__ void relu_forward(const T* x, T* y, long long n)
{
    for_each_element(
        n, 1, [=](long long i, int) { return x[i]; }, [=](long long i, int, T v) { y[i] = v <= T(0) ? T(0) : v; });
}

template <typename T>
__global__ void relu_backward(const T* dy, const T* y, T* dx, long long n)
{
    for_each_element(
        n, 1, [=](long long i, int) { return GradAndOutput<T>{dy[i], y[i]}; },
        [=](long long i, int, GradAndOutput<T> v) { dx[i] = v.y > T(0) ? v.dy : T(0); });
}
