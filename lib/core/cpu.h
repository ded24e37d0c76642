/* cpu.h — the vector instructions this machine can run, decided at run time.
 *
 * Machines of one kind differ (an AVX2-only EPYC, an AVX-512 Xeon with bf16
 * dot products, one with AMX tiles), and a binary built on one runs on the
 * others: kernels are compiled per function (__attribute__((target))) and
 * chosen from these flags, never from build flags. A flag is set only when
 * the CPU has the instructions (cpuid) AND the OS saves their registers on a
 * context switch (XCR0 via xgetbv): a CPU with AVX-512 under an OS or
 * hypervisor that does not enable the ZMM state must not run AVX-512 code.
 * AMX also needs Linux's per-process permission for its 8 KiB tile state
 * (arch_prctl ARCH_REQ_XCOMP_PERM), requested here once; without it the
 * first tile instruction would kill the process with SIGILL.
 *
 * The environment variable RL_CPU_MAX (none, avx2, avx512, avx512_bf16 or
 * amx_bf16) caps the flags at that level: a machine runs the kernels of a
 * lesser one (an AVX2-only EPYC's on an AMX Xeon), end to end, to measure or
 * test them. A value not in that list caps nothing; rl_cpu_describe says so.
 */
#ifndef RL_CPU_H
#define RL_CPU_H

typedef struct rl_cpu {
	int avx2;	 /* AVX2 + FMA + F16C, YMM state enabled */
	int avx512;	 /* AVX-512 F, BW, VL, DQ, ZMM state enabled */
	int avx512_bf16; /* avx512 and AVX512_BF16 (vdpbf16ps, vcvtneps2bf16) */
	int amx_bf16;	 /* AMX-TILE + AMX-BF16, tile state enabled and permitted */
} rl_cpu;

/* The flags of this machine (detected once, thread-safe). */
const rl_cpu *rl_cpu_get(void);

/* "avx2 avx512 avx512_bf16 amx_bf16" (the flags set), or "none"; then
 * " (RL_CPU_MAX=...)" when capped, or that it was ignored. */
const char *rl_cpu_describe(void);

#endif
