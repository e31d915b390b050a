// gpunet's CUDA kernels: thin __global__ wrappers over the grid-stride loops of loops.cuh
// (a thread per element or column) and warps.cuh (a warp per column or row).
//
// Loaded by gpunet/core/backends/kernels.py through cupy.RawModule with one name expression
// per instantiation, e.g. "bias_activation<float, 1>" (T = float or double; the int is an
// ActivationId from activations.cuh). Launch with a 1-D grid of 1-D blocks of any size;
// every loop strides by the grid's thread count, so any grid covers any size.
// Scalars of type T must be passed as T (numpy.float32 for float kernels), sizes as
// numpy.int64 (long long) and flags as numpy.int32 (int).
//
// A host build (tests/test_kernels_host.py) defines GPUNET_THREAD_INDEX and
// GPUNET_THREAD_COUNT and __global__ as nothing, and runs each kernel thread by thread (the
// warp kernels with the 32 lanes of a warp at once, on threads of their own).

#include "loops.cuh"
#include "warps.cuh"

#ifndef GPUNET_THREAD_INDEX
#define GPUNET_THREAD_INDEX (static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x)
#define GPUNET_THREAD_COUNT (static_cast<long long>(gridDim.x) * blockDim.x)
#endif

// (a) z += b[row]; a = g(z) over an (n, m) array (a may alias z)
template <typename T, int ID>
__global__ void bias_activation(T* z, const T* b, T* a, long long n, long long m) {
  gpunet::bias_activation_loop<T, ID>(GPUNET_THREAD_INDEX, GPUNET_THREAD_COUNT, z, b, a, n, m);
}

// (b) out = grad * g'(z or a), elementwise over size entries (out may alias grad)
template <typename T, int ID>
__global__ void activation_delta(const T* grad, const T* z, const T* a, T* out,
                                 long long size) {
  gpunet::activation_delta_loop<T, ID>(GPUNET_THREAD_INDEX, GPUNET_THREAD_COUNT, grad, z, a,
                                       out, size);
}

// (c) softmax per column, with the bias added first (a may alias z); one thread per column
template <typename T>
__global__ void softmax_forward(T* z, const T* b, T* a, long long n, long long m) {
  gpunet::softmax_forward_loop<T>(GPUNET_THREAD_INDEX, GPUNET_THREAD_COUNT, z, b, a, n, m);
}

// (c) softmax's Jacobian-vector product per column (out may alias grad); one thread per column
template <typename T>
__global__ void softmax_delta(const T* grad, const T* a, T* out, long long n, long long m) {
  gpunet::softmax_delta_loop<T>(GPUNET_THREAD_INDEX, GPUNET_THREAD_COUNT, grad, a, out, n, m);
}

// (c) softmax per column for tall columns (many rows), a warp per column (a may alias z)
template <typename T>
__global__ void softmax_forward_warp(T* z, const T* b, T* a, long long n, long long m) {
  gpunet::softmax_forward_warp_loop<T>(GPUNET_THREAD_INDEX, GPUNET_THREAD_COUNT, z, b, a, n, m);
}

// (c) softmax's Jacobian-vector product for tall columns, a warp per column
template <typename T>
__global__ void softmax_delta_warp(const T* grad, const T* a, T* out, long long n,
                                   long long m) {
  gpunet::softmax_delta_warp_loop<T>(GPUNET_THREAD_INDEX, GPUNET_THREAD_COUNT, grad, a, out, n,
                                     m);
}

// (d) (A - Y) * scale, Y at element strides (y_row, y_col)
template <typename T>
__global__ void output_minus_target(const T* a, const T* y, long long y_row, long long y_col,
                                    T* out, long long n, long long m, T scale) {
  gpunet::output_minus_target_loop<T>(GPUNET_THREAD_INDEX, GPUNET_THREAD_COUNT, a, y, y_row,
                                      y_col, out, n, m, scale);
}

// (e) one SGD step over the flat parameter buffer
template <typename T>
__global__ void sgd_update(T* params, const T* grads, T* velocity, long long size,
                           long long n_decayed, T lr, T momentum, int use_velocity,
                           int nesterov, T weight_decay) {
  gpunet::sgd_update_loop<T>(GPUNET_THREAD_INDEX, GPUNET_THREAD_COUNT, params, grads, velocity,
                             size, n_decayed, lr, momentum, use_velocity, nesterov,
                             weight_decay);
}

// (e) one Adam step over the flat parameter buffer
template <typename T>
__global__ void adam_update(T* params, const T* grads, T* first_moment, T* second_moment,
                            long long size, long long n_decayed, T beta1, T one_minus_beta1,
                            T beta2, T one_minus_beta2, T eps, T step_size, T inv_sqrt_bias2,
                            T weight_decay) {
  gpunet::adam_update_loop<T>(GPUNET_THREAD_INDEX, GPUNET_THREAD_COUNT, params, grads,
                              first_moment, second_moment, size, n_decayed, beta1,
                              one_minus_beta1, beta2, one_minus_beta2, eps, step_size,
                              inv_sqrt_bias2, weight_decay);
}

// (f) out[i] = sum_j x(i, j) y(i, j), a warp per row: BP3's bias gradient (y a row of ones)
// and the GEMMs whose product is one element
template <typename T>
__global__ void row_dot(const T* x, long long x_row, long long x_col, const T* y,
                        long long y_row, long long y_col, T* out, long long n, long long m) {
  gpunet::row_dot_loop<T>(GPUNET_THREAD_INDEX, GPUNET_THREAD_COUNT, x, x_row, x_col, y, y_row,
                          y_col, out, n, m);
}
