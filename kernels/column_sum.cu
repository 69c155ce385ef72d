// column_sum.cu: column sums of a C-contiguous (rows, d) array (T = float or double), the bias
// gradient; also the second pass of the fused backward kernels that sum dz by column.
//
//   column_sum_partial<T>(x, partial, rows, d, rows_per_chunk)
//       partial[c, j] = sum of x[r, j] over the rows r of chunk c (blockIdx.y). Blocks of
//       (COLUMN_BLOCK_X, COLUMN_BLOCK_Y): a warp reads 32 adjacent columns of a row (coalesced),
//       each thread walks its rows COLUMN_UNROLL at a time (sum_column, common.cuh), and the
//       block's 8 row-lanes are added in shared memory. With one chunk it writes the column sum
//       itself; with several, a second launch over `partial` (rows = chunks) finishes it. The
//       order of additions is fixed, so results are deterministic.
#include "common.cuh"

template <typename T>
__global__ void column_sum_partial(const T* x, T* partial, long long rows, int d, long long rows_per_chunk)
{
    const int col = blockIdx.x * COLUMN_BLOCK_X + threadIdx.x;
    long long begin, end;
    chunk_rows(rows, rows_per_chunk, &begin, &end);
    const T sum = sum_column<T>(
        begin, end, d, col, [=](long long i) { return x[i]; }, [](long long, T v) { return v; });
    store_column_block_sum(sum, partial + (long long)blockIdx.y * d, col, d);
}
