/* surface.h — the parts of `mu surface` (docs/attack-surface.md) that read other programs'
 * output: the enclave's seccomp filter (mu-enclave --sandbox-filter) and a GNU ld link map.
 *
 * The filter is not taken on trust from its rule names: surface_filter_eval follows the classic
 * BPF program, as the kernel would run it, for every system call number, along every path the
 * unknown values (the arguments, the instruction pointer) could take, and reports each number
 * as refused, allowed whatever the arguments, or allowed for some arguments only. Actions
 * that let the call run (allow, log, trace, user-notif) count as allowing it.
 */
#ifndef MU_HOST_SURFACE_H
#define MU_HOST_SURFACE_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define SURFACE_NR_MAX 1024u /* system call numbers evaluated: 0 .. SURFACE_NR_MAX-1 */
#define SURFACE_INS_MAX 4096u /* BPF_MAXINSNS */
#define SURFACE_RULE_NAME_MAX 32u

struct surface_ins {
	uint16_t code;
	uint8_t jt, jf;
	uint32_t k;
};

struct surface_filter {
	char mode[16];    /* "vm" or "process" */
	char dflt[16];    /* "kill-process" or "errno" */
	struct surface_ins ins[SURFACE_INS_MAX];
	size_t n_ins;
	struct {
		uint32_t nr;
		char name[SURFACE_RULE_NAME_MAX];
	} rule[SURFACE_NR_MAX];
	size_t n_rules;
};

enum surface_verdict { SV_REFUSED = 0, SV_ALLOWED, SV_CHECKED };

struct surface_eval {
	uint8_t verdict[SURFACE_NR_MAX]; /* enum surface_verdict per x86-64 system call number */
	uint32_t foreign_arch_action;    /* the action for an i386 call (nr 0) */
	uint32_t x32_action;             /* the action for an x32 call (nr 0 | 0x40000000) */
	uint32_t default_action;         /* the action for an unlisted number */
	size_t allowed, checked;         /* numbers allowed (checked ones included), and checked */
	int truncated; /* the program has too many paths to follow all: some numbers were counted
	                  as checked without following every path (an over-count, never an under) */
};

/* Parses `mu-enclave --sandbox-filter` output (the format is in enclave/sandbox.h). */
enum mu_err surface_filter_parse(struct surface_filter *f, const char *text, size_t len, struct mu_error *err);
/* Runs the program; MU_ERR_FORMAT for a program the kernel would refuse (a jump out of range, an
 * instruction seccomp does not accept, no return at the end). */
enum mu_err surface_filter_eval(const struct surface_filter *f, struct surface_eval *out, struct mu_error *err);
/* The name the filter's rules give nr, or NULL. */
const char *surface_filter_name(const struct surface_filter *f, uint32_t nr);
/* "allow", "kill-process", "kill-thread", "errno N", "trap", "trace", "log", "user-notif". */
void surface_action_name(uint32_t action, char *buf, size_t cap);

/* One input section of a link map: size bytes at addr from file (an object, or
 * "ARCHIVE(MEMBER)"), placed in output section out; or, with file NULL, output section out
 * itself, at addr with size bytes (its size may be 0). */
struct surface_map_sec {
	const char *out, *file; /* NUL-terminated, inside the caller's copy of the map */
	uint64_t addr, size;
};
/* Parses the memory-map part of a GNU ld -Map file (text is modified: strings are cut out of
 * it in place). Calls fn for every output section and every input section with a size and a
 * file, in the map's order. */
enum mu_err surface_map_parse(char *text, size_t len, void (*fn)(void *ctx, const struct surface_map_sec *s),
			      void *ctx, struct mu_error *err);

#endif
