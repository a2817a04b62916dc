/* outfile.c — the last step of writing an output file safely: the data went to a temporary
 * file in the output's directory and was fsync'd; it is now renamed into place (without
 * replace, atomically refusing an existing output) and the directory is fsync'd, so the output
 * path holds either nothing or the old file or the complete new one, never a partial file. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "host/cli.h"

enum mu_err outfile_write_all(int fd, const void *buf, size_t len, const char *path, struct mu_error *err)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t w = write(fd, p, len > ((size_t)1 << 30) ? (size_t)1 << 30 : len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return mu_errf(err, MU_ERR_IO, "%s: write failed: %s", path, w < 0 ? strerror(errno) : "no progress");
		p += w;
		len -= (size_t)w;
	}
	return MU_OK;
}

enum mu_err outfile_commit(const char *tmp, const char *out, int replace, struct mu_error *err)
{
	if (replace) {
		if (rename(tmp, out) != 0)
			return mu_errf(err, MU_ERR_IO, "cannot rename %s to %s: %s", tmp, out, strerror(errno));
	} else if (renameat2(AT_FDCWD, tmp, AT_FDCWD, out, RENAME_NOREPLACE) != 0) {
		int e = errno;
		if (e == EINVAL || e == ENOSYS) { /* a filesystem without RENAME_NOREPLACE */
			if (link(tmp, out) == 0) {
				unlink(tmp);
				e = 0;
			} else {
				e = errno;
			}
		}
		if (e == EEXIST)
			return mu_errf(err, MU_ERR_IO, "%s exists (use --force to replace it)", out);
		if (e)
			return mu_errf(err, MU_ERR_IO, "cannot rename %s to %s: %s", tmp, out, strerror(e));
	}
	char dir[4096];
	const char *slash = strrchr(out, '/');
	snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - out) + (slash == out) : 1, slash ? out : ".");
	int dfd = open(dir, O_RDONLY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd); /* best effort: the file itself is complete either way */
		close(dfd);
	}
	return MU_OK;
}

enum mu_err outfile_write(const char *out, const void *buf, size_t len, int replace, struct mu_error *err)
{
	char tmp[4096];
	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%d", out, (int)getpid()) >= sizeof tmp)
		return mu_errf(err, MU_ERR_RANGE, "%s: path too long", out);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return mu_errf(err, MU_ERR_IO, "%s: cannot create: %s", out, strerror(errno));
	enum mu_err rc = outfile_write_all(fd, buf, len, out, err);
	if (rc == MU_OK && fsync(fd) != 0)
		rc = mu_errf(err, MU_ERR_IO, "%s: fsync failed: %s", out, strerror(errno));
	if (close(fd) != 0 && rc == MU_OK)
		rc = mu_errf(err, MU_ERR_IO, "%s: close failed: %s", out, strerror(errno));
	if (rc == MU_OK)
		rc = outfile_commit(tmp, out, replace, err);
	if (rc)
		unlink(tmp);
	return rc;
}
