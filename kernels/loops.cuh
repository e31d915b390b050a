// One grid-stride loop per kernel: thread `start` of `step` threads handles elements
// start, start + step, ... The __global__ kernels in elementwise.cu only pass their
// thread index and count; a host build calls these loops thread by thread to test them.
//
// Layout (gpunet/network.py): activations, deltas and weighted inputs are (n, m) arrays,
// C-contiguous, one column per example: element (i, j) is at [i * m + j]. Sizes and
// indices are 64-bit. Outputs may alias inputs where a comment says so: the training
// step works in place, and for hidden layers Z and A are one buffer.

#ifndef GPUNET_LOOPS_CUH
#define GPUNET_LOOPS_CUH

#include "activations.cuh"

namespace gpunet {

// (row i, column j) of element k of an (n, m) array, followed along a grid-stride loop
// without a 64-bit division per element: with step = di*m + dj, k -> k + step moves
// (i, j) to (i + di, j + dj), carrying one row when j passes m.
struct RowColumn {
  long long i, j, di, dj, m;
  GPUNET_HD RowColumn(long long start, long long step, long long columns)
      : i(start / columns), j(start % columns), di(step / columns), dj(step % columns),
        m(columns) {}
  GPUNET_HD void advance() {
    i += di;
    j += dj;
    if (j >= m) {
      j -= m;
      ++i;
    }
  }
};

// Z += b (per row), A = g(Z); a may alias z.
template <typename T, int ID>
GPUNET_HD void bias_activation_loop(long long start, long long step, T* z, const T* b, T* a,
                                    long long n, long long m) {
  RowColumn at(start, step, m);
  for (long long k = start; k < n * m; k += step, at.advance()) {
    const T zk = z[k] + b[at.i];
    z[k] = zk;
    a[k] = Activation<T, ID>::forward(zk);
  }
}

// delta = grad (*) g'(x), x = A or Z as the activation needs; out may alias grad, and z may
// alias a (a hidden layer's shared buffer, read as A).
template <typename T, int ID>
GPUNET_HD void activation_delta_loop(long long start, long long step, const T* grad,
                                     const T* z, const T* a, T* out, long long size) {
  using G = Activation<T, ID>;
  const T* x = G::kFromOutput ? a : z;
  for (long long k = start; k < size; k += step) {
    out[k] = grad[k] * G::derivative(x[k]);
  }
}

// Softmax per column: Z += b, then A = e^{Z - max} / sum e^{Z - max}; a may alias z.
// One thread per column (j = start, start + step, ...), walking the column's n entries
// at stride m: right for the few rows of an output layer (tens of classes), where a row's
// columns are read together; taller columns go to softmax_forward_warp_loop (warps.cuh).
template <typename T>
GPUNET_HD void softmax_forward_loop(long long start, long long step, T* z, const T* b, T* a,
                                    long long n, long long m) {
  for (long long j = start; j < m; j += step) {
    T top = z[j] + b[0];
    z[j] = top;
    for (long long i = 1; i < n; ++i) {
      const T v = z[i * m + j] + b[i];
      z[i * m + j] = v;
      top = v > top ? v : top;
    }
    T sum = T(0);
    for (long long i = 0; i < n; ++i) {
      const T e = exp_(z[i * m + j] - top);
      a[i * m + j] = e;
      sum += e;
    }
    for (long long i = 0; i < n; ++i) {
      a[i * m + j] = a[i * m + j] / sum;
    }
  }
}

// Softmax's Jacobian-vector product per column: delta = a (*) (v - sum a (*) v); out may alias
// grad. One thread per column, as in softmax_forward_loop.
template <typename T>
GPUNET_HD void softmax_delta_loop(long long start, long long step, const T* grad, const T* a,
                                  T* out, long long n, long long m) {
  for (long long j = start; j < m; j += step) {
    T weighted = T(0);
    for (long long i = 0; i < n; ++i) {
      weighted += a[i * m + j] * grad[i * m + j];
    }
    for (long long i = 0; i < n; ++i) {
      out[i * m + j] = (grad[i * m + j] - weighted) * a[i * m + j];
    }
  }
}

// BP1's fused output delta (and the quadratic's grad_A C): delta = (A - Y) * scale, with
// scale = 1/m. y is the (n, m) target view at element strides (y_row, y_col): the network
// hands over the (m, n) row-major target buffer transposed, so (1, n) there. out may alias a.
template <typename T>
GPUNET_HD void output_minus_target_loop(long long start, long long step, const T* a,
                                        const T* y, long long y_row, long long y_col, T* out,
                                        long long n, long long m, T scale) {
  RowColumn at(start, step, m);
  for (long long k = start; k < n * m; k += step, at.advance()) {
    const T target = y[at.i * y_row + at.j * y_col];
    out[k] = (a[k] - target) * scale;
  }
}

// SGD over the flat parameter buffer, as Backend.sgd_update (torch.optim.SGD):
//   g = grad + lambda p (first n_decayed entries only; the caller passes 0 when lambda = 0)
//   with momentum:  v = mu v + g;  g = g + mu v (Nesterov) or v
//   p -= lr g
// grads is only read (the generic version scribbles on it; nothing reads it after).
// velocity is read only when use_velocity is nonzero (pass any valid pointer otherwise).
template <typename T>
GPUNET_HD void sgd_update_loop(long long start, long long step, T* params, const T* grads,
                               T* velocity, long long size, long long n_decayed, T lr,
                               T momentum, int use_velocity, int nesterov, T weight_decay) {
  for (long long k = start; k < size; k += step) {
    T g = grads[k];
    if (k < n_decayed) {
      g += weight_decay * params[k];
    }
    if (use_velocity) {
      const T v = velocity[k] * momentum + g;
      velocity[k] = v;
      g = nesterov ? g + momentum * v : v;
    }
    params[k] -= g * lr;
  }
}

// Adam over the flat parameter buffer, as Backend.adam_update (torch.optim.Adam); the
// step's scalars come from the caller, computed in double as the generic version does:
//   one_minus_beta1 = 1 - beta1, one_minus_beta2 = 1 - beta2,
//   step_size = lr / (1 - beta1^t), inv_sqrt_bias2 = 1 / sqrt(1 - beta2^t)
//   g = grad + lambda p (first n_decayed entries)
//   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
//   p -= m / (sqrt(v) inv_sqrt_bias2 + eps) * step_size
template <typename T>
GPUNET_HD void adam_update_loop(long long start, long long step, T* params, const T* grads,
                                T* first_moment, T* second_moment, long long size,
                                long long n_decayed, T beta1, T one_minus_beta1, T beta2,
                                T one_minus_beta2, T eps, T step_size, T inv_sqrt_bias2,
                                T weight_decay) {
  for (long long k = start; k < size; k += step) {
    T g = grads[k];
    if (k < n_decayed) {
      g += weight_decay * params[k];
    }
    const T m1 = first_moment[k] * beta1 + one_minus_beta1 * g;
    const T m2 = second_moment[k] * beta2 + one_minus_beta2 * (g * g);
    first_moment[k] = m1;
    second_moment[k] = m2;
    const T denominator = sqrt_(m2) * inv_sqrt_bias2 + eps;
    params[k] -= m1 / denominator * step_size;
  }
}

}  // namespace gpunet

#endif  // GPUNET_LOOPS_CUH
