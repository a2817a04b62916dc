/* kernels.c — which kernel paths this CPU can run, and the choice of the active one.
 *
 * A path is offered only when the CPU has its instructions (CPUID) and the OS saves the
 * registers it uses (XGETBV: YMM state for AVX2, ZMM and opmask state for AVX-512). All
 * paths give the same bits (docs/determinism.md), so the choice changes speed only.
 */
#include "engine/kernels_impl.h"

#include <cpuid.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static const struct mu_kernel_path *const paths[MU_KPATH_COUNT] = {
	[MU_KPATH_REF] = &mu_path_ref,
	[MU_KPATH_AVX2] = &mu_path_avx2,
	[MU_KPATH_AVX512] = &mu_path_avx512,
};

static uint64_t xgetbv0(void)
{
	uint32_t lo, hi;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return ((uint64_t)hi << 32) | lo;
}

/* NULL when path p can run here, else the first missing feature. */
const char *mu_kpath_missing(enum mu_kpath p)
{
	unsigned a, b, c, d;
	if (p == MU_KPATH_REF)
		return NULL;
	if ((int)p < 0 || p >= MU_KPATH_COUNT)
		return "no such kernel path";
	if (!__get_cpuid(1, &a, &b, &c, &d))
		return "this CPU has no CPUID leaf 1";
	int osxsave = (c >> 27) & 1, f16c = (c >> 29) & 1, avx = (c >> 28) & 1;
	if (!osxsave || !avx)
		return "this CPU or OS lacks AVX";
	uint64_t xcr0 = xgetbv0();
	if ((xcr0 & 0x6) != 0x6)
		return "the OS does not save YMM registers";
	if (!f16c)
		return "this CPU lacks F16C";
	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
		return "this CPU has no CPUID leaf 7";
	if (!((b >> 5) & 1))
		return "this CPU lacks AVX2";
	if (p == MU_KPATH_AVX2)
		return NULL;
	if ((xcr0 & 0xe6) != 0xe6)
		return "the OS does not save AVX-512 registers";
	if (!((b >> 16) & 1))
		return "this CPU lacks AVX-512F";
	if (!((b >> 17) & 1))
		return "this CPU lacks AVX-512DQ";
	if (!((b >> 30) & 1))
		return "this CPU lacks AVX-512BW";
	if (!((b >> 31) & 1))
		return "this CPU lacks AVX-512VL";
	if (!((c >> 11) & 1))
		return "this CPU lacks AVX-512VNNI";
	return NULL;
}

const struct mu_kernel_path *mu_kpath_get(enum mu_kpath p)
{
	if ((int)p < 0 || p >= MU_KPATH_COUNT || mu_kpath_missing(p))
		return NULL;
	return paths[p];
}

int mu_kpath_from_name(const char *name)
{
	for (int p = 0; p < MU_KPATH_COUNT; p++)
		if (strcmp(name, paths[p]->name) == 0)
			return p;
	return -1;
}

static const struct mu_kernel_path *best(void)
{
	for (int p = MU_KPATH_COUNT - 1; p > 0; p--)
		if (mu_kpath_get((enum mu_kpath)p))
			return paths[p];
	return paths[MU_KPATH_REF];
}

static _Atomic(const struct mu_kernel_path *) active;

enum mu_err mu_kernels_init(const char *name, struct mu_error *err)
{
	if (!name)
		name = getenv("MU_KERNELS");
	if (!name || !*name || strcmp(name, "auto") == 0) {
		atomic_store(&active, best());
		return MU_OK;
	}
	int p = mu_kpath_from_name(name);
	if (p < 0)
		return mu_errf(err, MU_ERR_ARG, "unknown kernel path '%.16s' (ref, avx2, avx512 or auto)", name);
	const char *why = mu_kpath_missing((enum mu_kpath)p);
	if (why)
		return mu_errf(err, MU_ERR_UNSUPPORTED, "kernel path %s is unavailable: %s", name, why);
	atomic_store(&active, paths[p]);
	return MU_OK;
}

const struct mu_kernel_path *mu_kernels(void)
{
	const struct mu_kernel_path *p = atomic_load(&active);
	if (!p) {
		p = best();
		atomic_store(&active, p);
	}
	return p;
}
