/* fortify_shim.c — the three glibc fortify entry points, for the static musl enclave only.
 *
 * Debian builds its static libbearssl.a with _FORTIFY_SOURCE, so its objects call
 * __memcpy_chk, __memmove_chk and __memset_chk, which glibc has and musl does not. These do
 * what glibc's do: the operation, or abort when the length exceeds the destination size the
 * compiler knew. Linked only into build/musl/mu-enclave (Makefile); the glibc builds use
 * glibc's own.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

void *__memcpy_chk(void *dst, const void *src, size_t n, size_t dst_len);
void *__memmove_chk(void *dst, const void *src, size_t n, size_t dst_len);
void *__memset_chk(void *dst, int c, size_t n, size_t dst_len);

void *__memcpy_chk(void *dst, const void *src, size_t n, size_t dst_len)
{
	if (n > dst_len)
		abort();
	return memcpy(dst, src, n);
}

void *__memmove_chk(void *dst, const void *src, size_t n, size_t dst_len)
{
	if (n > dst_len)
		abort();
	return memmove(dst, src, n);
}

void *__memset_chk(void *dst, int c, size_t n, size_t dst_len)
{
	if (n > dst_len)
		abort();
	return memset(dst, c, n);
}
