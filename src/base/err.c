#define MU_ERR_IMPL /* defines mu_errf: no analyzer model of it (err.h) */
#include "base/err.h"

#include <stdio.h>
#include <string.h>

enum mu_err mu_verrf(struct mu_error *e, enum mu_err code, const char *fmt, va_list ap)
{
	if (e) {
		e->code = code;
		vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	}
	return code;
}

enum mu_err mu_errf(struct mu_error *e, enum mu_err code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	mu_verrf(e, code, fmt, ap);
	va_end(ap);
	return code;
}

enum mu_err mu_err_prefix(struct mu_error *e, const char *fmt, ...)
{
	char prefix[MU_ERROR_MSG_MAX];
	char old[MU_ERROR_MSG_MAX];
	va_list ap;

	if (!e) /* the code is not known here; never MU_OK, so `return mu_err_prefix(...)` fails closed */
		return MU_ERR_INTERNAL;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	memcpy(old, e->msg, sizeof old);
	old[sizeof old - 1] = '\0';
	/* prefix + ": " + old, truncated to fit */
	size_t n = strlen(prefix), m = strlen(old), cap = sizeof e->msg - 1, at = 0;
	if (n > cap)
		n = cap;
	memcpy(e->msg, prefix, n);
	at = n;
	for (const char *sep = ": "; *sep && at < cap; sep++)
		e->msg[at++] = *sep;
	if (m > cap - at)
		m = cap - at;
	memcpy(e->msg + at, old, m);
	e->msg[at + m] = '\0';
	return e->code;
}

const char *mu_err_name(enum mu_err code)
{
	switch (code) {
	case MU_OK: return "ok";
	case MU_ERR_ARG: return "argument";
	case MU_ERR_IO: return "io";
	case MU_ERR_NOMEM: return "memory";
	case MU_ERR_FORMAT: return "format";
	case MU_ERR_RANGE: return "range";
	case MU_ERR_UNSUPPORTED: return "unsupported";
	case MU_ERR_AUTH: return "auth";
	case MU_ERR_STATE: return "state";
	case MU_ERR_INTERNAL: return "internal";
	}
	return "unknown";
}
