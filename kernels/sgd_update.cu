// sgd_update.cu: the SGD parameter update in place, elementwise over n contiguous values (T = float
// or double), in PyTorch's convention (minisnn.reference.sgd_update), with the unrolled grid-stride
// loop of common.cuh (for_each_element); any n.
//
//   sgd_update<T>(param, grad, n, lr, weight_decay)
//       g = grad + weight_decay*param (just grad when weight_decay == 0); param -= lr*g.
//   sgd_update_momentum<T>(param, grad, velocity, n, lr, momentum, weight_decay, nesterov)
//       v = momentum*v + g; param -= lr*(g + momentum*v) if nesterov else lr*v; velocity updated too.
#include "common.cuh"

template <typename T>
__device__ __forceinline__ T decayed_grad(T grad, T param, T weight_decay)
{
    return weight_decay != T(0) ? grad + weight_decay * param : grad;
}

template <typename T>
struct ParamGrad {
    T param, grad;
};

template <typename T>
struct ParamGradVelocity {
    T param, grad, velocity;
};

template <typename T>
__global__ void sgd_update(T* param, const T* grad, long long n, T lr, T weight_decay)
{
    for_each_element(
        n, 1, [=](long long i, int) { return ParamGrad<T>{param[i], grad[i]}; },
        [=](long long i, int, ParamGrad<T> v) {
            param[i] = v.param - lr * decayed_grad(v.grad, v.param, weight_decay);
        });
}

template <typename T>
__global__ void sgd_update_momentum(T* param, const T* grad, T* velocity, long long n, T lr, T momentum,
                                    T weight_decay, int nesterov)
{
    for_each_element(
        n, 1, [=](long long i, int) { return ParamGradVelocity<T>{param[i], grad[i], velocity[i]}; },
        [=](long long i, int, ParamGradVelocity<T> v) {
            const T g = decayed_grad(v.grad, v.param, weight_decay);
            const T new_velocity = momentum * v.velocity + g;
            velocity[i] = new_velocity;
            param[i] = v.param - lr * (nesterov ? g + momentum * new_velocity : new_velocity);
        });
}
