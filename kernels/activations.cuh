// The activations' math, once, for the GPU kernels and for a host build that tests it.
//
// Each activation g is a struct Activation<T, ID> over the element type T (float or double)
// with
//   forward(z)     A = g(Z), elementwise
//   derivative(x)  g'(Z), where x is A when kFromOutput is true and Z otherwise
// in the same form as gpunet/activations.py, so that both backends round alike:
//   sigmoid     1/(1 + e^-z), branched on the sign so that e^{-|z|} never overflows;
//               g' = a(1 - a)
//   tanh        g' = 1 - a^2
//   relu        max(z, 0) (NaN passes through); g' = [a > 0], so relu'(0) = 0
//   leaky_relu  max(z, 0.01 z); g' = 1 where a > 0, else 0.01 (also at 0)
//   identity    g' = 1
//   softplus    ln(1 + e^z) = log1p(e^{-|z|}) + max(z, 0); g' = sigma(z) = -expm1(-a)
//   gelu        exact, z Phi(z) = z (1 + erf(z/sqrt 2)) / 2; g' = Phi(z) + z phi(z), from Z
// The integer IDs are the ones gpunet/core/backends/kernels.py names (ACTIVATION_IDS).
//
// Compiled three ways: by NVRTC (CuPy's RawModule; no system headers there), by nvcc
// (the offline compile test), and by a plain C++ compiler (the host math test), where
// GPUNET_HD expands to nothing.

#ifndef GPUNET_ACTIVATIONS_CUH
#define GPUNET_ACTIVATIONS_CUH

#if defined(__CUDACC__)
#define GPUNET_HD __host__ __device__ __forceinline__
#else
#define GPUNET_HD inline
#endif

#if !defined(__CUDACC_RTC__)
#include <math.h>  // NVRTC declares the CUDA math functions itself
#endif

namespace gpunet {

// One name per math function for both element types: float calls the f-suffixed
// function, so a float kernel never computes in double.
GPUNET_HD float exp_(float x) { return expf(x); }
GPUNET_HD double exp_(double x) { return exp(x); }
GPUNET_HD float expm1_(float x) { return expm1f(x); }
GPUNET_HD double expm1_(double x) { return expm1(x); }
GPUNET_HD float log1p_(float x) { return log1pf(x); }
GPUNET_HD double log1p_(double x) { return log1p(x); }
GPUNET_HD float tanh_(float x) { return tanhf(x); }
GPUNET_HD double tanh_(double x) { return tanh(x); }
GPUNET_HD float erf_(float x) { return erff(x); }
GPUNET_HD double erf_(double x) { return erf(x); }
GPUNET_HD float sqrt_(float x) { return sqrtf(x); }
GPUNET_HD double sqrt_(double x) { return sqrt(x); }

// the constants of gpunet/activations.py, digit for digit (Python's repr)
constexpr double kLeakySlope = 0.01;              // LEAKY_SLOPE
constexpr double kSqrtHalf = 0.7071067811865476;  // _SQRT_HALF = 0.5 ** 0.5
constexpr double kInvSqrt2Pi = 0.3989422804014327;  // _INV_SQRT_2PI = (2 pi) ** -0.5

enum ActivationId : int {
  kIdentity = 0,
  kSigmoid = 1,
  kTanh = 2,
  kRelu = 3,
  kLeakyRelu = 4,
  kSoftplus = 5,
  kGelu = 6,
};
constexpr int kActivationCount = 7;

template <typename T, int ID>
struct Activation;

template <typename T>
struct Activation<T, kIdentity> {
  static constexpr bool kFromOutput = true;
  static GPUNET_HD T forward(T z) { return z; }
  static GPUNET_HD T derivative(T) { return T(1); }
};

template <typename T>
struct Activation<T, kSigmoid> {
  static constexpr bool kFromOutput = true;
  static GPUNET_HD T forward(T z) {
    if (z >= T(0)) {
      return T(1) / (T(1) + exp_(-z));
    }
    const T e = exp_(z);  // z < 0 (or NaN): e in (0, 1), no overflow
    return e / (T(1) + e);
  }
  static GPUNET_HD T derivative(T a) { return a * (T(1) - a); }
};

template <typename T>
struct Activation<T, kTanh> {
  static constexpr bool kFromOutput = true;
  static GPUNET_HD T forward(T z) { return tanh_(z); }
  static GPUNET_HD T derivative(T a) { return T(1) - a * a; }
};

template <typename T>
struct Activation<T, kRelu> {
  static constexpr bool kFromOutput = true;
  // written so that NaN passes through (like numpy.maximum) and -0 becomes +0
  static GPUNET_HD T forward(T z) { return z <= T(0) ? T(0) : z; }
  static GPUNET_HD T derivative(T a) { return a > T(0) ? T(1) : T(0); }
};

template <typename T>
struct Activation<T, kLeakyRelu> {
  static constexpr bool kFromOutput = true;
  static GPUNET_HD T forward(T z) { return z > T(0) ? z : T(kLeakySlope) * z; }
  static GPUNET_HD T derivative(T a) { return a > T(0) ? T(1) : T(kLeakySlope); }
};

template <typename T>
struct Activation<T, kSoftplus> {
  static constexpr bool kFromOutput = true;
  static GPUNET_HD T forward(T z) {
    const T negative_abs = z > T(0) ? -z : z;
    return log1p_(exp_(negative_abs)) + (z > T(0) ? z : T(0));
  }
  // sigma(z) = 1 - e^{-a}, with expm1 to stay exact for tiny a
  static GPUNET_HD T derivative(T a) { return -expm1_(-a); }
};

template <typename T>
struct Activation<T, kGelu> {
  static constexpr bool kFromOutput = false;
  static GPUNET_HD T forward(T z) {
    const T half_cdf = (erf_(z * T(kSqrtHalf)) + T(1)) * T(0.5);
    return z * half_cdf;
  }
  static GPUNET_HD T derivative(T z) {
    const T cdf = (erf_(z * T(kSqrtHalf)) + T(1)) * T(0.5);
    const T pdf = exp_(T(-0.5) * z * z) * (z * T(kInvSqrt2Pi));
    return cdf + pdf;
  }
};

}  // namespace gpunet

#endif  // GPUNET_ACTIVATIONS_CUH
