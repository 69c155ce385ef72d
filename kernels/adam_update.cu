// adam_update.cu: one Adam or AdamW step in place, fused into a single pass over n contiguous
// values (T = float or double): it reads param, grad, m, v and writes param, m, v (7 streams), with
// the unrolled grid-stride loop of common.cuh (for_each_element); any n. The reference is
// minisnn.backends.base.Backend.adam_update; the host computes the step's bias corrections.
//
//   adam_update<T>(param, grad, m, v, n, decay, l2, beta1, one_minus_beta1, beta2, one_minus_beta2,
//                  step_size, root_correction2, eps)
//       g = grad + l2*param; m = beta1*m + (1 - beta1)*g; v = beta2*v + (1 - beta2)*g^2;
//       param = param*decay - step_size*m / (sqrt(v)/root_correction2 + eps), where
//       step_size = lr/(1 - beta1^step) and root_correction2 = sqrt(1 - beta2^step).
//       Adam with L2: decay = 1, l2 = weight_decay. AdamW: decay = 1 - lr*weight_decay, l2 = 0.
#include "common.cuh"

template <typename T>
struct AdamState {
    T param, grad, m, v;
};

template <typename T>
__global__ void adam_update(T* param, const T* grad, T* m, T* v, long long n, T decay, T l2, T beta1,
                            T one_minus_beta1, T beta2, T one_minus_beta2, T step_size, T root_correction2, T eps)
{
    for_each_element(
        n, 1, [=](long long i, int) { return AdamState<T>{param[i], grad[i], m[i], v[i]}; },
        [=](long long i, int, AdamState<T> s) {
            const T g = s.grad + l2 * s.param;
            const T new_m = beta1 * s.m + one_minus_beta1 * g;
            const T new_v = beta2 * s.v + one_minus_beta2 * (g * g);
            m[i] = new_m;
            v[i] = new_v;
            param[i] = s.param * decay - step_size * new_m / (sqrt_t(new_v) / root_correction2 + eps);
        });
}
