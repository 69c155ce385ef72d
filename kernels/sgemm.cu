// sgemm.cu: hand-written matrix products C = A @ B, kept for study beside cuBLAS (the default).
// A (n, k), B (k, m), C (n, m), all C-contiguous; T = float ("SGEMM") or double. Any n, k, m:
// out-of-range loads read 0 and out-of-range stores are skipped.
//
//   sgemm_naive<T>     block (32, 8), one output per thread, every operand read from global
//                      memory (through L1/L2): the baseline of the baseline.
//   sgemm_tiled<T>     block (32, 32), one output per thread; 32x32 tiles of A and B staged in
//                      shared memory, so each global value is loaded once per tile instead of 32 times.
//   sgemm_register_blocked<T>
//                      256 threads compute a 128x128 tile of C; per k-slice of 8, A (transposed)
//                      and B tiles go to shared memory and each thread accumulates an 8x8 block of
//                      outputs in registers from 8 + 8 shared loads per k (16 loads for 64 FMAs).
//                      A thread owns rows ty*4 + {0..3} and 64 + ty*4 + {0..3} (columns likewise
//                      with tx): each group of 4 is contiguous and 16-byte aligned in shared memory,
//                      so it can be read as one 128-bit load, and a warp's 16 column groups span
//                      256 contiguous bytes (no bank conflicts; the rows are broadcast).
#include "common.cuh"

template <typename T>
__global__ void sgemm_naive(const T* a, const T* b, T* c, int n, int k, int m)
{
    const int col = blockIdx.x * GEMM_NAIVE_BLOCK_X + threadIdx.x;
    const int row = blockIdx.y * GEMM_NAIVE_BLOCK_Y + threadIdx.y;
    if (row >= n || col >= m) {
        return;
    }
    T acc = T(0);
    for (int p = 0; p < k; ++p) {
        acc += a[(long long)row * k + p] * b[(long long)p * m + col];
    }
    c[(long long)row * m + col] = acc;
}

template <typename T>
__global__ void sgemm_tiled(const T* a, const T* b, T* c, int n, int k, int m)
{
    __shared__ T a_tile[GEMM_TILE][GEMM_TILE + 1];  // +1: no bank conflicts on column reads
    __shared__ T b_tile[GEMM_TILE][GEMM_TILE + 1];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int row = blockIdx.y * GEMM_TILE + ty;
    const int col = blockIdx.x * GEMM_TILE + tx;
    T acc = T(0);
    for (int p0 = 0; p0 < k; p0 += GEMM_TILE) {
        a_tile[ty][tx] = (row < n && p0 + tx < k) ? a[(long long)row * k + p0 + tx] : T(0);
        b_tile[ty][tx] = (p0 + ty < k && col < m) ? b[(long long)(p0 + ty) * m + col] : T(0);
        __syncthreads();
        for (int p = 0; p < GEMM_TILE; ++p) {
            acc += a_tile[ty][p] * b_tile[p][tx];
        }
        __syncthreads();
    }
    if (row < n && col < m) {
        c[(long long)row * m + col] = acc;
    }
}

template <typename T>
__global__ void __launch_bounds__(GEMM_RB_THREADS) sgemm_register_blocked(const T* a, const T* b, T* c, int n,
                                                                           int k, int m)
{
    constexpr int THREADS_X = GEMM_RB_BN / GEMM_RB_TN;  // 16 threads across the columns of the tile
    constexpr int THREADS_Y = GEMM_RB_BM / GEMM_RB_TM;  // 16 across its rows
    constexpr int GROUP = 4;                            // a thread's rows (columns) come in groups of 4
    static_assert(THREADS_X * THREADS_Y == GEMM_RB_THREADS, "thread count must match the tile shape");
    static_assert(GEMM_RB_TM % GROUP == 0 && GEMM_RB_TN % GROUP == 0, "TM and TN must be multiples of 4");
    // A transposed: a_tile[p][r]; the +4 spreads the stores over the banks and keeps rows 16-byte aligned.
    __shared__ __align__(16) T a_tile[GEMM_RB_BK][GEMM_RB_BM + 4];
    __shared__ __align__(16) T b_tile[GEMM_RB_BK][GEMM_RB_BN];
    const int tid = threadIdx.x;
    const int tx = tid % THREADS_X, ty = tid / THREADS_X;
    const int row0 = blockIdx.y * GEMM_RB_BM, col0 = blockIdx.x * GEMM_RB_BN;

    T acc[GEMM_RB_TM][GEMM_RB_TN];
#pragma unroll
    for (int i = 0; i < GEMM_RB_TM; ++i) {
#pragma unroll
        for (int j = 0; j < GEMM_RB_TN; ++j) {
            acc[i][j] = T(0);
        }
    }
    T a_frag[GEMM_RB_TM], b_frag[GEMM_RB_TN];

    for (int p0 = 0; p0 < k; p0 += GEMM_RB_BK) {
#pragma unroll
        for (int e = tid; e < GEMM_RB_BM * GEMM_RB_BK; e += GEMM_RB_THREADS) {
            const int r = e / GEMM_RB_BK, p = e % GEMM_RB_BK;
            const int gr = row0 + r, gp = p0 + p;
            a_tile[p][r] = (gr < n && gp < k) ? a[(long long)gr * k + gp] : T(0);
        }
#pragma unroll
        for (int e = tid; e < GEMM_RB_BK * GEMM_RB_BN; e += GEMM_RB_THREADS) {
            const int p = e / GEMM_RB_BN, col = e % GEMM_RB_BN;
            const int gp = p0 + p, gc = col0 + col;
            b_tile[p][col] = (gp < k && gc < m) ? b[(long long)gp * m + gc] : T(0);
        }
        __syncthreads();
#pragma unroll
        for (int p = 0; p < GEMM_RB_BK; ++p) {
#pragma unroll
            for (int i = 0; i < GEMM_RB_TM; ++i) {
                a_frag[i] = a_tile[p][(i / GROUP) * THREADS_Y * GROUP + ty * GROUP + i % GROUP];
            }
#pragma unroll
            for (int j = 0; j < GEMM_RB_TN; ++j) {
                b_frag[j] = b_tile[p][(j / GROUP) * THREADS_X * GROUP + tx * GROUP + j % GROUP];
            }
#pragma unroll
            for (int i = 0; i < GEMM_RB_TM; ++i) {
#pragma unroll
                for (int j = 0; j < GEMM_RB_TN; ++j) {
                    acc[i][j] += a_frag[i] * b_frag[j];
                }
            }
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < GEMM_RB_TM; ++i) {
        const int gr = row0 + (i / GROUP) * THREADS_Y * GROUP + ty * GROUP + i % GROUP;
#pragma unroll
        for (int j = 0; j < GEMM_RB_TN; ++j) {
            const int gc = col0 + (j / GROUP) * THREADS_X * GROUP + tx * GROUP + j % GROUP;
            if (gr < n && gc < m) {
                c[(long long)gr * m + gc] = acc[i][j];
            }
        }
    }
}
