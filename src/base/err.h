/* err.h — the one project-wide error type.
 *
 * Every fallible function returns an enum mu_err and, when given a struct mu_error, fills in a
 * human-readable message that says what was wrong and what to do about it. Input errors are
 * returned, never abort()ed; assert() is for programmer errors only.
 *
 * Messages must never contain secrets, prompt text or weight bytes: name the field, the index
 * or the offset, never the content.
 */
#ifndef MU_BASE_ERR_H
#define MU_BASE_ERR_H

#include <stdarg.h>

enum mu_err {
	MU_OK = 0,
	MU_ERR_ARG,         /* bad argument from the caller (CLI flag, API misuse that is not a bug) */
	MU_ERR_IO,          /* open/read/write/mmap failed */
	MU_ERR_NOMEM,       /* allocation failed or caller-provided memory too small */
	MU_ERR_FORMAT,      /* malformed input bytes (GGUF, JSON, frame, sealed header ...) */
	MU_ERR_RANGE,       /* a value is outside its allowed range or a limit */
	MU_ERR_UNSUPPORTED, /* well-formed but not supported (tensor type, architecture ...) */
	MU_ERR_AUTH,        /* authentication/integrity failure */
	MU_ERR_STATE,       /* operation not allowed in the current state */
	MU_ERR_INTERNAL,    /* an invariant failed at run time; a bug, reported instead of crashing */
};

#define MU_ERROR_MSG_MAX 256

struct mu_error {
	enum mu_err code;
	char msg[MU_ERROR_MSG_MAX];
};

/* Sets e (when non-NULL) to code and the formatted message; returns code so callers can write
 * `return mu_errf(err, MU_ERR_FORMAT, "...", ...);`. */
enum mu_err mu_errf(struct mu_error *e, enum mu_err code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
enum mu_err mu_verrf(struct mu_error *e, enum mu_err code, const char *fmt, va_list ap);

#if defined(__clang_analyzer__) && !defined(MU_ERR_IMPL)
/* For clang-tidy's static analyzer only (make check-tidy, docs/analysis.md). It sees one file at
 * a time, so without this it assumes `return mu_errf(err, MU_ERR_FORMAT, ...)` may return MU_OK
 * and then reports every output the error path leaves unset as garbage. The call still happens;
 * the value is the code, as in err.c. */
static inline enum mu_err mu_err_code_(enum mu_err ret, enum mu_err code)
{
	(void)ret;
	return code;
}
#define mu_errf(e, code, ...) mu_err_code_(mu_errf((e), (code), __VA_ARGS__), (code))
#endif

/* Prepends "prefix: " to an existing message (e.g. the file name), keeping the code. With e
 * NULL the code is unknown and MU_ERR_INTERNAL is returned (never MU_OK). */
enum mu_err mu_err_prefix(struct mu_error *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Short stable name of a code, e.g. "format". */
const char *mu_err_name(enum mu_err code);

#endif
