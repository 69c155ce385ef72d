// softmax_cross_entropy.cu: softmax cross-entropy over C classes for integer labels (T = float or
// double).
// logits and probs are C-contiguous (n, c); labels are int64 (n,). A label outside [0, c) lowers
// *first_bad_row (the host sets it to n before the launch) to its row with atomicMin, so the
// host can raise an error naming the first bad row; that row's results are meaningless (its loss
// is NaN, its gradient lacks the one-hot term), and no kernel indexes out of bounds.
//
//   softmax_cross_entropy_forward<T>(logits, labels, probs, row_loss, first_bad_row, n, c)
//       One block of ROW_BLOCK threads per row (grid-stride over rows): the row max, then
//       e = exp(logit - max) (expf / exp, accurate in relative terms for small probabilities) and
//       their sum, both reduced in shared memory; probs = e / sum and row_loss = log(sum) -
//       (logit[label] - max), as in NumPy's log-sum-exp. probs may alias logits.
//   softmax_cross_entropy_forward_mean<T>(x, n, out)
//       out[0] = sum(x) / n with a single block of REDUCE_BLOCK threads (fixed order, deterministic).
//   softmax_cross_entropy_backward<T>(probs, labels, dlogits, first_bad_row, n, c, inv_n)
//       dlogits = (probs - onehot(labels)) * inv_n, grid-stride over the n*c elements; may alias probs.
#include "common.cuh"

// Sum (or max) of one value per thread over a block of BLOCK threads; every thread gets the result.
template <typename T, int BLOCK, bool IS_MAX>
__device__ __forceinline__ T block_reduce(T value, T* scratch)
{
    scratch[threadIdx.x] = value;
    __syncthreads();
    for (int half = BLOCK / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) {
            const T other = scratch[threadIdx.x + half];
            const T mine = scratch[threadIdx.x];
            scratch[threadIdx.x] = IS_MAX ? (other > mine ? other : mine) : mine + other;
        }
        __syncthreads();
    }
    const T result = scratch[0];
    __syncthreads();  // scratch is reused by the next reduction
    return result;
}

template <typename T>
__global__ void softmax_cross_entropy_forward(const T* logits, const long long* labels, T* probs, T* row_loss,
                                              long long* first_bad_row, long long n, int c)
{
    __shared__ T scratch[ROW_BLOCK];
    for (long long row = blockIdx.x; row < n; row += gridDim.x) {
        const T* x = logits + row * c;  // (c,)
        T* p = probs + row * c;         // (c,)
        T row_max = -infinity_t<T>();
        for (int j = threadIdx.x; j < c; j += ROW_BLOCK) {
            row_max = x[j] > row_max ? x[j] : row_max;
        }
        row_max = block_reduce<T, ROW_BLOCK, true>(row_max, scratch);
        const long long label = labels[row];
        const bool label_ok = 0 <= label && label < c;
        const T label_shifted = label_ok ? x[label] - row_max : T(0);
        __syncthreads();  // every thread has read x[label] before p (which may alias x) is written
        T total = T(0);
        for (int j = threadIdx.x; j < c; j += ROW_BLOCK) {
            const T e = exp_t(x[j] - row_max);
            p[j] = e;
            total += e;
        }
        total = block_reduce<T, ROW_BLOCK, false>(total, scratch);
        for (int j = threadIdx.x; j < c; j += ROW_BLOCK) {
            p[j] = p[j] / total;
        }
        if (threadIdx.x == 0) {
            row_loss[row] = label_ok ? log_t(total) - label_shifted : quiet_nan_t<T>();
            if (!label_ok) {
                atomicMin(first_bad_row, row);
            }
        }
    }
}

template <typename T>
__global__ void softmax_cross_entropy_forward_mean(const T* x, long long n, T* out)
{
    __shared__ T scratch[REDUCE_BLOCK];
    T sum = T(0);
    for (long long i = threadIdx.x; i < n; i += REDUCE_BLOCK) {
        sum += x[i];
    }
    sum = block_reduce<T, REDUCE_BLOCK, false>(sum, scratch);
    if (threadIdx.x == 0) {
        out[0] = sum / T(n);
    }
}

template <typename T>
__global__ void softmax_cross_entropy_backward(const T* probs, const long long* labels, T* dlogits,
                                               long long* first_bad_row, long long n, int c, T inv_n)
{
    const long long total = n * c;
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        const long long row = i / c;
        const int col = (int)(i - row * c);
        const long long label = labels[row];
        if (col == 0 && (label < 0 || label >= c)) {
            atomicMin(first_bad_row, row);
        }
        const T onehot = label == col ? T(1) : T(0);
        dlogits[i] = (probs[i] - onehot) * inv_n;
    }
}
