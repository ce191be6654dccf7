/*
 * w_regs STATE_DIR
 *
 * Loads known values into registers that no C code between set-up and check
 * may touch, then waits for the trigger inside the same asm block with raw
 * `syscall` pause instructions, and stores the registers back for checking:
 *
 *   %r12..%r15                       64-bit values
 *   %xmm8..%xmm15                    128-bit values (SSE), or
 *   %ymm8..%ymm15                    256-bit values when the CPU has AVX
 *   %zmm16..%zmm31, %k1..%k7         512-bit values and opmasks with AVX-512F
 *   MXCSR, x87 control word          non-default rounding modes
 *   GS base                          set with arch_prctl
 *
 * The trigger's handler runs in between; the kernel saves and restores user
 * registers around it, so the values survive a control run. After a restore
 * they survive only if cr restored the general and extended register state.
 *
 * Writes regs_level ("sse", "avx" or "avx512") and syscall_nr (pause).
 */
#include "wl.h"

#include <asm/prctl.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MXCSR_VALUE 0x7f80u	/* all exceptions masked, round toward zero */
#define X87_CW_VALUE 0x0f7fu	/* all exceptions masked, truncate, extended precision */
#define GS_BASE_VALUE 0x1234567000UL

/* Everything the asm blocks read and write, reached through one pointer
 * (there are not enough free registers for one operand per array). */
static struct regs_area {
	unsigned char zmm_in[16][64];
	unsigned char zmm_out[16][64];
	unsigned char vec_in[8][32];
	unsigned char vec_out[8][32];
	uint64_t gpr_in[4], gpr_out[4];
	uint16_t k_in[8], k_out[8];
	uint32_t mxcsr_in, mxcsr_out;
	uint16_t cw_in, cw_out;
} ra __attribute__((aligned(64)));

#define OFF(field) [field] "i"(offsetof(struct regs_area, field))

/* Shared pieces of the asm blocks. */
#define LOAD_GPRS                                   \
	"movq %c[gpr_in]+0(%[a]), %%r12\n\t"         \
	"movq %c[gpr_in]+8(%[a]), %%r13\n\t"         \
	"movq %c[gpr_in]+16(%[a]), %%r14\n\t"        \
	"movq %c[gpr_in]+24(%[a]), %%r15\n\t"        \
	"ldmxcsr %c[mxcsr_in](%[a])\n\t"             \
	"fldcw %c[cw_in](%[a])\n\t"
#define STORE_GPRS                                  \
	"movq %%r12, %c[gpr_out]+0(%[a])\n\t"        \
	"movq %%r13, %c[gpr_out]+8(%[a])\n\t"        \
	"movq %%r14, %c[gpr_out]+16(%[a])\n\t"       \
	"movq %%r15, %c[gpr_out]+24(%[a])\n\t"       \
	"stmxcsr %c[mxcsr_out](%[a])\n\t"            \
	"fnstcw %c[cw_out](%[a])\n\t"
#define WAIT_LOOP                                   \
	"1: cmpl $0, (%[flag])\n\t"                 \
	"jne 2f\n\t"                                \
	"movl $34, %%eax\n\t" /* SYS_pause */       \
	"syscall\n\t"                               \
	"jmp 1b\n"                                  \
	"2:\n\t"
#define COMMON_OPERANDS                                                          \
	[a] "r"(&ra), [flag] "r"(&wl_triggered),                                   \
	OFF(gpr_in), OFF(gpr_out), OFF(mxcsr_in), OFF(mxcsr_out), OFF(cw_in), OFF(cw_out), \
	OFF(vec_in), OFF(vec_out), OFF(zmm_in), OFF(zmm_out), OFF(k_in), OFF(k_out)
#define COMMON_CLOBBERS "rax", "rcx", "r11", "r12", "r13", "r14", "r15", "memory", "cc"

static void wait_sse(void)
{
	__asm__ volatile(
		LOAD_GPRS
		"movdqu %c[vec_in]+0(%[a]), %%xmm8\n\t"
		"movdqu %c[vec_in]+32(%[a]), %%xmm9\n\t"
		"movdqu %c[vec_in]+64(%[a]), %%xmm10\n\t"
		"movdqu %c[vec_in]+96(%[a]), %%xmm11\n\t"
		"movdqu %c[vec_in]+128(%[a]), %%xmm12\n\t"
		"movdqu %c[vec_in]+160(%[a]), %%xmm13\n\t"
		"movdqu %c[vec_in]+192(%[a]), %%xmm14\n\t"
		"movdqu %c[vec_in]+224(%[a]), %%xmm15\n\t"
		WAIT_LOOP
		STORE_GPRS
		"movdqu %%xmm8, %c[vec_out]+0(%[a])\n\t"
		"movdqu %%xmm9, %c[vec_out]+32(%[a])\n\t"
		"movdqu %%xmm10, %c[vec_out]+64(%[a])\n\t"
		"movdqu %%xmm11, %c[vec_out]+96(%[a])\n\t"
		"movdqu %%xmm12, %c[vec_out]+128(%[a])\n\t"
		"movdqu %%xmm13, %c[vec_out]+160(%[a])\n\t"
		"movdqu %%xmm14, %c[vec_out]+192(%[a])\n\t"
		"movdqu %%xmm15, %c[vec_out]+224(%[a])\n\t"
		:
		: COMMON_OPERANDS
		: COMMON_CLOBBERS, "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
}

#define LOAD_YMM                                    \
	"vmovdqu %c[vec_in]+0(%[a]), %%ymm8\n\t"              \
	"vmovdqu %c[vec_in]+32(%[a]), %%ymm9\n\t"             \
	"vmovdqu %c[vec_in]+64(%[a]), %%ymm10\n\t"            \
	"vmovdqu %c[vec_in]+96(%[a]), %%ymm11\n\t"            \
	"vmovdqu %c[vec_in]+128(%[a]), %%ymm12\n\t"           \
	"vmovdqu %c[vec_in]+160(%[a]), %%ymm13\n\t"           \
	"vmovdqu %c[vec_in]+192(%[a]), %%ymm14\n\t"           \
	"vmovdqu %c[vec_in]+224(%[a]), %%ymm15\n\t"
#define STORE_YMM                                   \
	"vmovdqu %%ymm8, %c[vec_out]+0(%[a])\n\t"              \
	"vmovdqu %%ymm9, %c[vec_out]+32(%[a])\n\t"             \
	"vmovdqu %%ymm10, %c[vec_out]+64(%[a])\n\t"            \
	"vmovdqu %%ymm11, %c[vec_out]+96(%[a])\n\t"            \
	"vmovdqu %%ymm12, %c[vec_out]+128(%[a])\n\t"           \
	"vmovdqu %%ymm13, %c[vec_out]+160(%[a])\n\t"           \
	"vmovdqu %%ymm14, %c[vec_out]+192(%[a])\n\t"           \
	"vmovdqu %%ymm15, %c[vec_out]+224(%[a])\n\t"           \
	"vzeroupper\n\t"
#define YMM_CLOBBERS "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"

__attribute__((target("avx"))) static void wait_avx(void)
{
	__asm__ volatile(
		LOAD_GPRS
		LOAD_YMM
		WAIT_LOOP
		STORE_GPRS
		STORE_YMM
		:
		: COMMON_OPERANDS
		: COMMON_CLOBBERS, YMM_CLOBBERS);
}

#define ZMM_PAIR(n, off) \
	"vmovdqu64 %c[zmm_in]+" #off "(%[a]), %%zmm" #n "\n\t"
#define ZMM_STORE(n, off) \
	"vmovdqu64 %%zmm" #n ", %c[zmm_out]+" #off "(%[a])\n\t"

__attribute__((target("avx512f"))) static void wait_avx512(void)
{
	__asm__ volatile(
		LOAD_GPRS
		LOAD_YMM
		ZMM_PAIR(16, 0) ZMM_PAIR(17, 64) ZMM_PAIR(18, 128) ZMM_PAIR(19, 192)
		ZMM_PAIR(20, 256) ZMM_PAIR(21, 320) ZMM_PAIR(22, 384) ZMM_PAIR(23, 448)
		ZMM_PAIR(24, 512) ZMM_PAIR(25, 576) ZMM_PAIR(26, 640) ZMM_PAIR(27, 704)
		ZMM_PAIR(28, 768) ZMM_PAIR(29, 832) ZMM_PAIR(30, 896) ZMM_PAIR(31, 960)
		"kmovw %c[k_in]+2(%[a]), %%k1\n\t"
		"kmovw %c[k_in]+4(%[a]), %%k2\n\t"
		"kmovw %c[k_in]+6(%[a]), %%k3\n\t"
		"kmovw %c[k_in]+8(%[a]), %%k4\n\t"
		"kmovw %c[k_in]+10(%[a]), %%k5\n\t"
		"kmovw %c[k_in]+12(%[a]), %%k6\n\t"
		"kmovw %c[k_in]+14(%[a]), %%k7\n\t"
		WAIT_LOOP
		STORE_GPRS
		ZMM_STORE(16, 0) ZMM_STORE(17, 64) ZMM_STORE(18, 128) ZMM_STORE(19, 192)
		ZMM_STORE(20, 256) ZMM_STORE(21, 320) ZMM_STORE(22, 384) ZMM_STORE(23, 448)
		ZMM_STORE(24, 512) ZMM_STORE(25, 576) ZMM_STORE(26, 640) ZMM_STORE(27, 704)
		ZMM_STORE(28, 768) ZMM_STORE(29, 832) ZMM_STORE(30, 896) ZMM_STORE(31, 960)
		"kmovw %%k1, %c[k_out]+2(%[a])\n\t"
		"kmovw %%k2, %c[k_out]+4(%[a])\n\t"
		"kmovw %%k3, %c[k_out]+6(%[a])\n\t"
		"kmovw %%k4, %c[k_out]+8(%[a])\n\t"
		"kmovw %%k5, %c[k_out]+10(%[a])\n\t"
		"kmovw %%k6, %c[k_out]+12(%[a])\n\t"
		"kmovw %%k7, %c[k_out]+14(%[a])\n\t"
		STORE_YMM
		:
		: COMMON_OPERANDS
		: COMMON_CLOBBERS, YMM_CLOBBERS,
		  "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23",
		  "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31",
		  "k1", "k2", "k3", "k4", "k5", "k6", "k7");
}

static void fill(void *p, size_t len, uint64_t *rng)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = wl_xorshift(rng);
		memcpy((char *)p + i, &v, 8);
	}
}

int main(int argc, char **argv)
{
	uint64_t rng;
	const char *level;
	unsigned long gs = 0;
	size_t vec_bytes;

	wl_init(argc, argv);
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f"))
		level = "avx512";
	else if (__builtin_cpu_supports("avx"))
		level = "avx";
	else
		level = "sse";
	vec_bytes = strcmp(level, "sse") ? 32 : 16;

	rng = wl_seed(0x5e6);
	ra.mxcsr_in = MXCSR_VALUE;
	ra.cw_in = X87_CW_VALUE;
	fill(ra.gpr_in, sizeof(ra.gpr_in), &rng);
	fill(ra.vec_in, sizeof(ra.vec_in), &rng);
	fill(ra.zmm_in, sizeof(ra.zmm_in), &rng);
	fill(ra.k_in, sizeof(ra.k_in), &rng);

	if (syscall(SYS_arch_prctl, ARCH_SET_GS, GS_BASE_VALUE) < 0)
		wl_fatal("ARCH_SET_GS: %s", strerror(errno));
	wl_write_file("regs_level", "%s\n", level);
	wl_write_file("syscall_nr", "%d\n", SYS_pause);
	wl_write_file("syscall_nr_restored", "%d\n", SYS_pause);
	wl_ready();

	if (!strcmp(level, "avx512"))
		wait_avx512();
	else if (!strcmp(level, "avx"))
		wait_avx();
	else
		wait_sse();

	/* Back to defaults before any C code might use floating point. */
	__asm__ volatile("ldmxcsr %0" : : "m"((uint32_t){ 0x1f80 }));
	__asm__ volatile("fldcw %0" : : "m"((uint16_t){ 0x037f }));

	for (int i = 0; i < 4; i++)
		wl_check(ra.gpr_out[i] == ra.gpr_in[i], "%%r%d is %#" PRIx64 ", want %#" PRIx64, 12 + i,
			 ra.gpr_out[i], ra.gpr_in[i]);
	for (int i = 0; i < 8; i++)
		wl_check(memcmp(ra.vec_out[i], ra.vec_in[i], vec_bytes) == 0, "%%%s%d lost its value",
			 vec_bytes == 32 ? "ymm" : "xmm", 8 + i);
	if (!strcmp(level, "avx512")) {
		for (int i = 0; i < 16; i++)
			wl_check(memcmp(ra.zmm_out[i], ra.zmm_in[i], 64) == 0, "%%zmm%d lost its value", 16 + i);
		for (int i = 1; i < 8; i++)
			wl_check(ra.k_out[i] == ra.k_in[i], "%%k%d is %#x, want %#x", i, ra.k_out[i], ra.k_in[i]);
	}
	wl_check(ra.mxcsr_out == MXCSR_VALUE, "MXCSR is %#x, want %#x", ra.mxcsr_out, MXCSR_VALUE);
	wl_check(ra.cw_out == X87_CW_VALUE, "x87 control word is %#x, want %#x", ra.cw_out, X87_CW_VALUE);
	if (wl_check(syscall(SYS_arch_prctl, ARCH_GET_GS, &gs) == 0, "ARCH_GET_GS: %s", strerror(errno)))
		wl_check(gs == GS_BASE_VALUE, "GS base %#lx, want %#lx", gs, GS_BASE_VALUE);
	wl_check(getpid() == wl_pid(), "pid changed");
	wl_finish();
}
