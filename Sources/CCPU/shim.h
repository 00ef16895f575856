// What the CPU can run, for picking kernels at run time. Header only: nothing to link.
#ifndef VIGIL_CCPU_SHIM_H
#define VIGIL_CCPU_SHIM_H

#if defined(__x86_64__)
#include <cpuid.h>

/// 1 when the CPU and the OS support everything `-target-cpu haswell` lets the compiler emit
/// (AVX2, FMA, BMI1, BMI2, LZCNT, MOVBE, F16C, and the OS saving YMM state), else 0.
static inline int vigil_cpu_supports_haswell(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    const unsigned leaf1 = (1u << 12) | (1u << 22) | (1u << 27) | (1u << 28) | (1u << 29); // FMA MOVBE OSXSAVE AVX F16C
    if ((c & leaf1) != leaf1) return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 6u) != 6u) return 0; // XMM and YMM state
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    const unsigned leaf7 = (1u << 3) | (1u << 5) | (1u << 8); // BMI1 AVX2 BMI2
    if ((b & leaf7) != leaf7) return 0;
    if (!__get_cpuid(0x80000001u, &a, &b, &c, &d)) return 0;
    return (c >> 5) & 1u; // LZCNT
}
#else
/// Other architectures build the kernels for their baseline, which every CPU runs.
static inline int vigil_cpu_supports_haswell(void) { return 1; }
#endif

#endif
