// layer_norm.cu: layer normalization of each row of a C-contiguous (n, d) array over its d
// features (T = float or double); float64 statistics (two passes), as in the reference.
//
//   layer_norm_forward<T>(x, gamma, beta, n, d, eps, y, mean, rstd)
//       One block of ROW_BLOCK threads per row (grid-stride over rows): the row sum, then the sum
//       of squared deviations from the float64 mean, both reduced in shared memory; writes mean,
//       rstd (n,) and y = (x - mean)*rstd*gamma + beta. y may alias x (each thread writes only
//       the elements it read).
//   layer_norm_backward_dx<T>(dy, x, gamma, mean, rstd, n, d, dx)
//       One block per row: the row means of g = dy*gamma and g*x_hat (float64), then
//       dx = rstd*(g - mean(g) - x_hat*mean(g*x_hat)); dx may alias dy.
//   layer_norm_backward_column_sums<T>(dy, x, mean, rstd, n, d, dgamma, dbeta)
//       dbeta = sum dy, dgamma = sum dy*x_hat over the rows (float64): blocks of
//       (COLUMN_BLOCK_X, COLUMN_BLOCK_Y) threads per 32 columns, 8 row-lanes added in shared
//       memory. Runs before layer_norm_backward_dx, which may overwrite dy.
#include "common.cuh"

// The sum over the block's ROW_BLOCK threads, for every thread. Every thread must call it.
template <typename S>
__device__ __forceinline__ S row_block_total(S value)
{
    __shared__ S scratch[ROW_BLOCK];
    scratch[threadIdx.x] = value;
    __syncthreads();
    for (int half = ROW_BLOCK / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) {
            scratch[threadIdx.x] += scratch[threadIdx.x + half];
        }
        __syncthreads();
    }
    const S total = scratch[0];
    __syncthreads();  // the next call reuses scratch
    return total;
}

template <typename T>
__global__ void layer_norm_forward(const T* x, const T* gamma, const T* beta, long long n, int d, double eps, T* y,
                                   T* mean, T* rstd)
{
    for (long long row = blockIdx.x; row < n; row += gridDim.x) {
        const T* xr = x + row * d;  // (d,)
        T* yr = y + row * d;        // (d,)
        double sum = 0.0;
        for (int j = threadIdx.x; j < d; j += ROW_BLOCK) {
            sum += (double)xr[j];
        }
        const double mean64 = row_block_total(sum) / (double)d;
        double squares = 0.0;
        for (int j = threadIdx.x; j < d; j += ROW_BLOCK) {
            const double deviation = (double)xr[j] - mean64;
            squares += deviation * deviation;
        }
        const double var64 = row_block_total(squares) / (double)d;
        const T m = (T)mean64;
        const T s = (T)(1.0 / sqrt(var64 + eps));
        if (threadIdx.x == 0) {
            mean[row] = m;
            rstd[row] = s;
        }
        for (int j = threadIdx.x; j < d; j += ROW_BLOCK) {
            yr[j] = (xr[j] - m) * s * gamma[j] + beta[j];
        }
    }
}

template <typename T>
__global__ void layer_norm_backward_dx(const T* dy, const T* x, const T* gamma, const T* mean, const T* rstd,
                                       long long n, int d, T* dx)
{
    for (long long row = blockIdx.x; row < n; row += gridDim.x) {
        const T* dyr = dy + row * d;  // (d,)
        const T* xr = x + row * d;    // (d,)
        T* dxr = dx + row * d;        // (d,)
        const T m = mean[row], s = rstd[row];
        double sum_g = 0.0, sum_g_xhat = 0.0;
        for (int j = threadIdx.x; j < d; j += ROW_BLOCK) {
            const T g = dyr[j] * gamma[j];
            sum_g += (double)g;
            sum_g_xhat += (double)g * (double)((xr[j] - m) * s);
        }
        const T g_mean = (T)(row_block_total(sum_g) / (double)d);
        const T gx_mean = (T)(row_block_total(sum_g_xhat) / (double)d);
        for (int j = threadIdx.x; j < d; j += ROW_BLOCK) {
            const T x_hat = (xr[j] - m) * s;
            dxr[j] = (dyr[j] * gamma[j] - g_mean - x_hat * gx_mean) * s;
        }
    }
}

template <typename T>
__global__ void layer_norm_backward_column_sums(const T* dy, const T* x, const T* mean, const T* rstd, long long n,
                                                int d, T* dgamma, T* dbeta)
{
    __shared__ double sums[2][COLUMN_BLOCK_Y][COLUMN_BLOCK_X + 1];
    const int col = blockIdx.x * COLUMN_BLOCK_X + threadIdx.x;
    double sum_dy = 0.0, sum_dy_xhat = 0.0;
    if (col < d) {
        for (long long r = threadIdx.y; r < n; r += COLUMN_BLOCK_Y) {
            const double g = (double)dy[r * d + col];
            sum_dy += g;
            sum_dy_xhat += g * (double)((x[r * d + col] - mean[r]) * rstd[r]);
        }
    }
    sums[0][threadIdx.y][threadIdx.x] = sum_dy;
    sums[1][threadIdx.y][threadIdx.x] = sum_dy_xhat;
    __syncthreads();
    for (int half = COLUMN_BLOCK_Y / 2; half > 0; half /= 2) {
        if (threadIdx.y < half) {
            sums[0][threadIdx.y][threadIdx.x] += sums[0][threadIdx.y + half][threadIdx.x];
            sums[1][threadIdx.y][threadIdx.x] += sums[1][threadIdx.y + half][threadIdx.x];
        }
        __syncthreads();
    }
    if (threadIdx.y == 0 && col < d) {
        dbeta[col] = (T)sums[0][0][threadIdx.x];
        dgamma[col] = (T)sums[1][0][threadIdx.x];
    }
}
