/*
 * kiln_libc.h: the little of the C library an artifact uses, declared here so
 * that artifacts compile without any target's system headers (clang's own
 * stddef.h/stdint.h only, `-nostdlibinc`). That is what lets Kiln build an
 * AArch64, ARMv7, i686 or Windows artifact on an x86-64 Linux machine with no
 * sysroot: the declarations below have the same ABI in glibc, bionic and the
 * Windows C runtime, and are resolved when the artifact is loaded.
 *
 * Math is type-generic the way <tgmath.h> is: `exp(x)` is expf for a float
 * argument and exp for a double (or integer) one.
 */
#ifndef KILN_LIBC_H
#define KILN_LIBC_H

#include <stddef.h>
#include <stdint.h>

void *memcpy(void *restrict, const void *restrict, size_t);
void *memmove(void *, const void *, size_t);
void *memset(void *, int, size_t);

#define INFINITY (__builtin_inff())
#define NAN (__builtin_nanf(""))
#define isnan(x) __builtin_isnan(x)
#define isinf(x) __builtin_isinf(x)

/* Scalar math: one float and one double function per name. On Windows the
   float forms go through double: the 32-bit C runtime exports no expf. */
#ifdef _WIN32
#define KILN_MATH_FLOAT1(name) \
  static inline float kiln_##name##_f(float x) { return (float)name((double)x); }
#define KILN_MATH_FLOAT2(name) \
  static inline float kiln_##name##_f(float x, float y) { return (float)name((double)x, (double)y); }
#else
#define KILN_MATH_FLOAT1(name) \
  float name##f(float);        \
  static inline float kiln_##name##_f(float x) { return name##f(x); }
#define KILN_MATH_FLOAT2(name) \
  float name##f(float, float); \
  static inline float kiln_##name##_f(float x, float y) { return name##f(x, y); }
#endif

#define KILN_MATH1(name)                                                                     \
  double name(double);                                                                       \
  KILN_MATH_FLOAT1(name)                                                                     \
  static inline __attribute__((overloadable)) float kiln_##name(float x) { return kiln_##name##_f(x); } \
  static inline __attribute__((overloadable)) double kiln_##name(double x) { return name(x); }
#define KILN_MATH2(name)                                                                                       \
  double name(double, double);                                                                                 \
  KILN_MATH_FLOAT2(name)                                                                                       \
  static inline __attribute__((overloadable)) float kiln_##name(float x, float y) { return kiln_##name##_f(x, y); } \
  static inline __attribute__((overloadable)) double kiln_##name(double x, double y) { return name(x, y); }

KILN_MATH1(exp)
KILN_MATH1(expm1)
KILN_MATH1(log)
KILN_MATH1(log1p)
KILN_MATH1(sin)
KILN_MATH1(cos)
KILN_MATH1(tan)
KILN_MATH1(asin)
KILN_MATH1(acos)
KILN_MATH1(atan)
KILN_MATH1(sinh)
KILN_MATH1(cosh)
KILN_MATH1(tanh)
KILN_MATH1(asinh)
KILN_MATH1(acosh)
KILN_MATH1(atanh)
KILN_MATH1(erf)
KILN_MATH1(floor)
KILN_MATH1(ceil)
KILN_MATH1(nearbyint)
KILN_MATH2(pow)
KILN_MATH2(fmod)

/* These compile to instructions (or to the library call above where a CPU lacks one). */
static inline __attribute__((overloadable)) float kiln_sqrt(float x) { return __builtin_sqrtf(x); }
static inline __attribute__((overloadable)) double kiln_sqrt(double x) { return __builtin_sqrt(x); }
static inline __attribute__((overloadable)) float kiln_fabs(float x) { return __builtin_fabsf(x); }
static inline __attribute__((overloadable)) double kiln_fabs(double x) { return __builtin_fabs(x); }
static inline __attribute__((overloadable)) float kiln_fmin(float x, float y) { return __builtin_fminf(x, y); }
static inline __attribute__((overloadable)) double kiln_fmin(double x, double y) { return __builtin_fmin(x, y); }
static inline __attribute__((overloadable)) float kiln_fmax(float x, float y) { return __builtin_fmaxf(x, y); }
static inline __attribute__((overloadable)) double kiln_fmax(double x, double y) { return __builtin_fmax(x, y); }
float sqrtf(float);
float fabsf(float);

/* <tgmath.h>'s rule: float stays float, every other arithmetic type computes in double. */
static inline __attribute__((overloadable)) float kiln_promote(float x) { return x; }
static inline __attribute__((overloadable)) double kiln_promote(double x) { return x; }
static inline __attribute__((overloadable)) double kiln_promote(int x) { return x; }
static inline __attribute__((overloadable)) double kiln_promote(unsigned x) { return x; }
static inline __attribute__((overloadable)) double kiln_promote(long x) { return x; }
static inline __attribute__((overloadable)) double kiln_promote(unsigned long x) { return x; }
static inline __attribute__((overloadable)) double kiln_promote(long long x) { return x; }
static inline __attribute__((overloadable)) double kiln_promote(unsigned long long x) { return x; }
#define KILN_T1(x) __typeof__(kiln_promote(x))
#define KILN_T2(x, y) __typeof__(kiln_promote(x) + kiln_promote(y))

#define exp(x) kiln_exp((KILN_T1(x))(x))
#define expm1(x) kiln_expm1((KILN_T1(x))(x))
#define log(x) kiln_log((KILN_T1(x))(x))
#define log1p(x) kiln_log1p((KILN_T1(x))(x))
#define sin(x) kiln_sin((KILN_T1(x))(x))
#define cos(x) kiln_cos((KILN_T1(x))(x))
#define tan(x) kiln_tan((KILN_T1(x))(x))
#define asin(x) kiln_asin((KILN_T1(x))(x))
#define acos(x) kiln_acos((KILN_T1(x))(x))
#define atan(x) kiln_atan((KILN_T1(x))(x))
#define sinh(x) kiln_sinh((KILN_T1(x))(x))
#define cosh(x) kiln_cosh((KILN_T1(x))(x))
#define tanh(x) kiln_tanh((KILN_T1(x))(x))
#define asinh(x) kiln_asinh((KILN_T1(x))(x))
#define acosh(x) kiln_acosh((KILN_T1(x))(x))
#define atanh(x) kiln_atanh((KILN_T1(x))(x))
#define erf(x) kiln_erf((KILN_T1(x))(x))
#define floor(x) kiln_floor((KILN_T1(x))(x))
#define ceil(x) kiln_ceil((KILN_T1(x))(x))
#define nearbyint(x) kiln_nearbyint((KILN_T1(x))(x))
#define sqrt(x) kiln_sqrt((KILN_T1(x))(x))
#define fabs(x) kiln_fabs((KILN_T1(x))(x))
#define pow(x, y) kiln_pow((KILN_T2(x, y))(x), (KILN_T2(x, y))(y))
#define fmod(x, y) kiln_fmod((KILN_T2(x, y))(x), (KILN_T2(x, y))(y))
#define fmin(x, y) kiln_fmin((KILN_T2(x, y))(x), (KILN_T2(x, y))(y))
#define fmax(x, y) kiln_fmax((KILN_T2(x, y))(x), (KILN_T2(x, y))(y))

#endif
