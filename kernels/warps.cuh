// The warp-per-column (and warp-per-row) loops: the 32 lanes of a warp share one column's
// (or row's) reduction, combined by shuffles. Used where one thread per column would walk
// too many rows alone: softmax over a wide layer (kernels.py picks the kernel by n), and the
// row sums of BP3.
//
// Warp w of `step / 32` warps handles columns w, w + step/32, ...; lane = start % 32. This
// needs every block's size to be a multiple of 32 (kernels.py launches 256), so that a
// warp's lanes are 32 consecutive thread indices, and every lane of a warp to run the same
// number of iterations (they do: the loop bound depends on the warp, not the lane), so that
// each shuffle finds all 32 lanes.
//
// Every butterfly step combines a lane's value with its partner's by a commutative
// operation, so all 32 lanes end with bitwise the same total.
//
// A host build (tests/test_kernels_host.py) runs each lane on its own OS thread and
// defines GPUNET_HOST_SHUFFLE and gpunet::shuffle_xor (an exchange through a barrier)
// before including this file.

#ifndef GPUNET_WARPS_CUH
#define GPUNET_WARPS_CUH

#include "activations.cuh"

#if defined(__CUDACC__)
#define GPUNET_DEVICE __device__ __forceinline__
#else
#define GPUNET_DEVICE inline
#if !defined(GPUNET_HOST_SHUFFLE)
#error "a host build must define gpunet::shuffle_xor and GPUNET_HOST_SHUFFLE first"
#endif
#endif

namespace gpunet {

constexpr int kWarp = 32;

#if defined(__CUDACC__)
template <typename T>
GPUNET_DEVICE T shuffle_xor(T value, int mask) {
  return __shfl_xor_sync(0xffffffffu, value, mask);
}
#endif

template <typename T>
GPUNET_DEVICE T warp_sum(T value) {
  for (int mask = kWarp / 2; mask > 0; mask /= 2) {
    value += shuffle_xor(value, mask);
  }
  return value;
}

// NaN never enters: the callers seed every lane with the same element, so all tops are NaN
// or none is.
template <typename T>
GPUNET_DEVICE T warp_max(T value) {
  for (int mask = kWarp / 2; mask > 0; mask /= 2) {
    const T other = shuffle_xor(value, mask);
    value = other > value ? other : value;
  }
  return value;
}

// Softmax per column, as softmax_forward_loop, a warp per column: Z += b, then
// A = e^{Z - max} / sum e^{Z - max}; a may alias z. The first pass only reads, so that
// every lane can seed its maximum with element (0, j) while no lane writes yet.
template <typename T>
GPUNET_DEVICE void softmax_forward_warp_loop(long long start, long long step, T* z,
                                             const T* b, T* a, long long n, long long m) {
  const long long lane = start % kWarp;
  for (long long j = start / kWarp; j < m; j += step / kWarp) {
    T top = z[j] + b[0];
    for (long long i = lane; i < n; i += kWarp) {
      const T v = z[i * m + j] + b[i];
      top = v > top ? v : top;
    }
    top = warp_max(top);
    T sum = T(0);
    for (long long i = lane; i < n; i += kWarp) {
      const T v = z[i * m + j] + b[i];
      z[i * m + j] = v;
      const T e = exp_(v - top);
      a[i * m + j] = e;
      sum += e;
    }
    sum = warp_sum(sum);
    for (long long i = lane; i < n; i += kWarp) {
      a[i * m + j] = a[i * m + j] / sum;
    }
  }
}

// Softmax's Jacobian-vector product per column, a warp per column:
// delta = a (*) (v - sum a (*) v); out may alias grad.
template <typename T>
GPUNET_DEVICE void softmax_delta_warp_loop(long long start, long long step, const T* grad,
                                           const T* a, T* out, long long n, long long m) {
  const long long lane = start % kWarp;
  for (long long j = start / kWarp; j < m; j += step / kWarp) {
    T weighted = T(0);
    for (long long i = lane; i < n; i += kWarp) {
      weighted += a[i * m + j] * grad[i * m + j];
    }
    weighted = warp_sum(weighted);
    for (long long i = lane; i < n; i += kWarp) {
      out[i * m + j] = (grad[i * m + j] - weighted) * a[i * m + j];
    }
  }
}

// out[i] = sum_j x(i, j) y(i, j) over an (n, m) pair at element strides, a warp per row:
// BP3's bias gradient (y a row of ones, y_row = 0) and a GEMM whose product has one element.
template <typename T>
GPUNET_DEVICE void row_dot_loop(long long start, long long step, const T* x, long long x_row,
                                long long x_col, const T* y, long long y_row, long long y_col,
                                T* out, long long n, long long m) {
  const long long lane = start % kWarp;
  for (long long i = start / kWarp; i < n; i += step / kWarp) {
    T sum = T(0);
    for (long long j = lane; j < m; j += kWarp) {
      sum += x[i * x_row + j * x_col] * y[i * y_row + j * y_col];
    }
    sum = warp_sum(sum);
    if (lane == 0) {
      out[i] = sum;
    }
  }
}

}  // namespace gpunet

#endif  // GPUNET_WARPS_CUH
