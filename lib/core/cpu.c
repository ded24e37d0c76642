/* cpu.c — cpuid + xgetbv (+ AMX permission on Linux), see cpu.h. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

/* XCR0 (enabled XSAVE state components); the caller checked OSXSAVE. */
static uint64_t xcr0(void)
{
	uint32_t lo, hi;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return (uint64_t)hi << 32 | lo;
}

/* Linux 5.16+: tile data is off until the process asks for it. */
static int amx_permit(void)
{
#ifdef SYS_arch_prctl
	enum { ARCH_GET_XCOMP_PERM = 0x1022, ARCH_REQ_XCOMP_PERM = 0x1023, XTILEDATA = 18 };
	if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XTILEDATA) != 0)
		return 0;
	unsigned long perm = 0;
	return syscall(SYS_arch_prctl, ARCH_GET_XCOMP_PERM, &perm) == 0 && (perm >> XTILEDATA & 1);
#else
	return 0;
#endif
}

static void detect(rl_cpu *c)
{
	unsigned a, b, cx, d;
	if (!__get_cpuid(1, &a, &b, &cx, &d))
		return;
	int fma = cx >> 12 & 1, osxsave = cx >> 27 & 1, avx = cx >> 28 & 1, f16c = cx >> 29 & 1;
	if (!osxsave || !avx)
		return;
	uint64_t x = xcr0();
	int ymm = (x & 0x6) == 0x6, zmm = (x & 0xe6) == 0xe6, tiles = (x & 0x60000) == 0x60000;
	if (!__get_cpuid_count(7, 0, &a, &b, &cx, &d))
		return;
	int avx2 = b >> 5 & 1, f = b >> 16 & 1, dq = b >> 17 & 1, bw = b >> 30 & 1,
	    vl = b >> 31 & 1, amx_bf16 = d >> 22 & 1, amx_tile = d >> 24 & 1;
	unsigned max_sub = a;
	int bf16 = 0;
	if (max_sub >= 1 && __get_cpuid_count(7, 1, &a, &b, &cx, &d))
		bf16 = a >> 5 & 1;
	c->avx2 = ymm && avx2 && fma && f16c;
	c->avx512 = c->avx2 && zmm && f && dq && bw && vl;
	c->avx512_bf16 = c->avx512 && bf16;
	c->amx_bf16 = c->avx512 && tiles && amx_tile && amx_bf16 && amx_permit();
}
#else
static void detect(rl_cpu *c)
{
	(void)c;
}
#endif

static rl_cpu cpu;
static char text[128];
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* RL_CPU_MAX (cpu.h): clears the flags above the level named; 0, or -1 for a
 * value it does not know (then nothing is cleared). */
static int cap(rl_cpu *c, const char *v)
{
	static const char *const level[] = {"none", "avx2", "avx512", "avx512_bf16", "amx_bf16"};
	int n = -1;
	for (int i = 0; i < 5; i++)
		if (strcmp(v, level[i]) == 0)
			n = i;
	if (n < 0)
		return -1;
	int *flag[] = {&c->avx2, &c->avx512, &c->avx512_bf16, &c->amx_bf16};
	for (int i = n; i < 4; i++)
		*flag[i] = 0;
	return 0;
}

static void init(void)
{
	detect(&cpu);
	const char *max = getenv("RL_CPU_MAX");
	int capped = max && *max ? cap(&cpu, max) : 1;
	snprintf(text, sizeof text, "%s%s%s%s", cpu.avx2 ? " avx2" : "",
		 cpu.avx512 ? " avx512" : "", cpu.avx512_bf16 ? " avx512_bf16" : "",
		 cpu.amx_bf16 ? " amx_bf16" : "");
	if (!text[0])
		snprintf(text, sizeof text, " none");
	size_t len = strlen(text);
	if (capped == 0)
		snprintf(text + len, sizeof text - len, " (RL_CPU_MAX=%.16s)", max);
	else if (capped < 0)
		snprintf(text + len, sizeof text - len, " (RL_CPU_MAX=%.16s not known: ignored)",
			 max);
}

const rl_cpu *rl_cpu_get(void)
{
	pthread_once(&once, init);
	return &cpu;
}

const char *rl_cpu_describe(void)
{
	rl_cpu_get();
	return text + 1;
}
