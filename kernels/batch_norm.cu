// batch_norm.cu: batch normalization of a C-contiguous (n, d) array over its rows (T = float or
// double). Statistics are float64 (two passes: the mean, then squared deviations), as in the
// reference (minisnn/backends/base.py).
//
//   batch_norm_forward_statistics<T>(x, gamma, beta, n, d, eps, momentum, update_running,
//                                    running_mean, running_var, mean, rstd, scale, shift)
//       One block of (COLUMN_BLOCK_X, COLUMN_BLOCK_Y) threads per 32 columns: a warp reads 32
//       adjacent columns of a row (coalesced), the 8 row-lanes are added in shared memory. Writes
//       mean, rstd = 1/sqrt(var + eps) and the affine map scale = gamma*rstd, shift = beta -
//       mean*scale (d,); with update_running, running statistics r = (1 - momentum)*r +
//       momentum*s (s: the mean, the unbiased variance), in float64.
//   batch_norm_affine<T>(x, scale, shift, y, n, d)
//       y = x*scale + shift per column, elementwise (the forward's second kernel, and evaluation
//       mode); y may alias x.
//   batch_norm_inference_affine<T>(gamma, beta, running_mean, running_var, eps, d, scale, shift, rstd)
//       The evaluation-mode map: rstd = 1/sqrt(running_var + eps), scale = gamma*rstd, shift =
//       beta - running_mean*scale (one thread per column).
//   batch_norm_backward_sums<T>(dy, x, mean, rstd, n, d, dgamma, dbeta)
//       dbeta = sum dy, dgamma = sum dy*x_hat (x_hat = (x - mean)*rstd), float64, blocks as above.
//   batch_norm_backward_dx<T>(dy, x, gamma, mean, rstd, dgamma, dbeta, dx, n, d, inv_n)
//       dx = gamma*rstd*(dy - dbeta/N - x_hat*dgamma/N), elementwise; dx may alias dy.
#include "common.cuh"


template <typename T>
__global__ void batch_norm_forward_statistics(const T* x, const T* gamma, const T* beta, long long n, int d,
                                              double eps, double momentum, int update_running, T* running_mean,
                                              T* running_var, T* mean, T* rstd, T* scale, T* shift)
{
    const int col = blockIdx.x * COLUMN_BLOCK_X + threadIdx.x;
    double sum = 0.0;
    if (col < d) {
        for (long long r = threadIdx.y; r < n; r += COLUMN_BLOCK_Y) {
            sum += (double)x[r * d + col];
        }
    }
    const double mean64 = column_block_total(sum) / (double)n;
    double squares = 0.0;
    if (col < d) {
        for (long long r = threadIdx.y; r < n; r += COLUMN_BLOCK_Y) {
            const double deviation = (double)x[r * d + col] - mean64;
            squares += deviation * deviation;
        }
    }
    const double var64 = column_block_total(squares) / (double)n;
    if (threadIdx.y == 0 && col < d) {
        const T m = (T)mean64;
        const T s = (T)(1.0 / sqrt(var64 + eps));
        mean[col] = m;
        rstd[col] = s;
        if (update_running) {
            running_mean[col] = (T)((1.0 - momentum) * (double)running_mean[col] + momentum * mean64);
            running_var[col] = (T)((1.0 - momentum) * (double)running_var[col]
                                   + momentum * (var64 * (double)n / (double)(n - 1)));
        }
        const T a = gamma[col] * s;
        scale[col] = a;
        shift[col] = beta[col] - m * a;
    }
}

template <typename T>
__global__ void batch_norm_affine(const T* x, const T* scale, const T* shift, T* y, long long n, int d)
{
    for_each_element(
        n, d, [=](long long i, int) { return x[i]; },
        [=](long long i, int col, T v) { y[i] = v * scale[col] + shift[col]; });
}

template <typename T>
__global__ void batch_norm_inference_affine(const T* gamma, const T* beta, const T* running_mean,
                                            const T* running_var, T eps, int d, T* scale, T* shift, T* rstd)
{
    for (int col = blockIdx.x * blockDim.x + threadIdx.x; col < d; col += gridDim.x * blockDim.x) {
        const T s = T(1) / sqrt_t(running_var[col] + eps);
        const T a = gamma[col] * s;
        rstd[col] = s;
        scale[col] = a;
        shift[col] = beta[col] - running_mean[col] * a;
    }
}

template <typename T>
__global__ void batch_norm_backward_sums(const T* dy, const T* x, const T* mean, const T* rstd, long long n, int d,
                                         T* dgamma, T* dbeta)
{
    const int col = blockIdx.x * COLUMN_BLOCK_X + threadIdx.x;
    double sum_dy = 0.0, sum_dy_xhat = 0.0;
    if (col < d) {
        const T m = mean[col], s = rstd[col];
        for (long long r = threadIdx.y; r < n; r += COLUMN_BLOCK_Y) {
            const double g = (double)dy[r * d + col];
            sum_dy += g;
            sum_dy_xhat += g * (double)((x[r * d + col] - m) * s);
        }
    }
    sum_dy = column_block_total(sum_dy);
    sum_dy_xhat = column_block_total(sum_dy_xhat);
    if (threadIdx.y == 0 && col < d) {
        dbeta[col] = (T)sum_dy;
        dgamma[col] = (T)sum_dy_xhat;
    }
}

template <typename T>
__global__ void batch_norm_backward_dx(const T* dy, const T* x, const T* gamma, const T* mean, const T* rstd,
                                       const T* dgamma, const T* dbeta, T* dx, long long n, int d, T inv_n)
{
    for_each_element(
        n, d, [=](long long i, int) { return GradAndOutput<T>{dy[i], x[i]}; },
        [=](long long i, int col, GradAndOutput<T> v) {
            const T s = rstd[col];
            const T x_hat = (v.y - mean[col]) * s;
            dx[i] = gamma[col] * s * (v.dy - dbeta[col] * inv_n - x_hat * (dgamma[col] * inv_n));
        });
}
