/* frame.c — length-prefixed frames; see frame.h. */
#include "wire/frame.h"

#include <string.h>

#include "base/endian.h"

void mu_frame_rd_init(struct mu_frame_rd *r, uint8_t *buf, size_t max)
{
	memset(r, 0, sizeof *r);
	r->buf = buf;
	r->max = max;
}

enum mu_frame_state mu_frame_rd_space(struct mu_frame_rd *r, uint8_t **p, size_t *n)
{
	if (r->done || r->failed) {
		*p = NULL;
		*n = 0;
		return r->done ? MU_FRAME_DONE : MU_FRAME_MORE;
	}
	if (r->have < MU_FRAME_HDR) {
		*p = r->hdr + r->have;
		*n = MU_FRAME_HDR - r->have;
	} else {
		size_t got = r->have - MU_FRAME_HDR;
		*p = r->buf + got;
		*n = r->len - got;
	}
	return MU_FRAME_MORE;
}

enum mu_err mu_frame_rd_commit(struct mu_frame_rd *r, size_t n, enum mu_frame_state *st, struct mu_error *err)
{
	uint8_t *p;
	size_t want;
	*st = MU_FRAME_MORE;
	if (r->failed)
		return mu_errf(err, r->failed, "frame stream already failed");
	if (mu_frame_rd_space(r, &p, &want) == MU_FRAME_DONE || n > want)
		return mu_errf(err, MU_ERR_ARG, "frame reader: %zu bytes committed, %zu expected", n, want);
	int in_header = r->have < MU_FRAME_HDR;
	r->have += n;
	if (in_header && r->have == MU_FRAME_HDR) {
		uint32_t len = be32_load(r->hdr);
		if (len == 0) {
			r->failed = MU_ERR_FORMAT;
			return mu_errf(err, MU_ERR_FORMAT, "frame of length 0 (a frame holds one JSON object)");
		}
		if (len > r->max) {
			r->failed = MU_ERR_RANGE;
			return mu_errf(err, MU_ERR_RANGE, "frame of %u bytes is over the limit of %zu", len, r->max);
		}
		r->len = len;
	}
	if (r->have >= MU_FRAME_HDR && r->have - MU_FRAME_HDR == r->len && r->len > 0) {
		r->done = 1;
		*st = MU_FRAME_DONE;
	}
	return MU_OK;
}

enum mu_err mu_frame_rd_feed(struct mu_frame_rd *r, const uint8_t *data, size_t n, size_t *used,
			     enum mu_frame_state *st, struct mu_error *err)
{
	*used = 0;
	*st = r->done ? MU_FRAME_DONE : MU_FRAME_MORE;
	while (*st == MU_FRAME_MORE && *used < n) {
		uint8_t *p;
		size_t want;
		if (r->failed)
			return mu_errf(err, r->failed, "frame stream already failed");
		mu_frame_rd_space(r, &p, &want);
		size_t take = n - *used < want ? n - *used : want;
		/* p is NULL only when done, and then commit has set *st to DONE and the loop has
		 * ended; the analyzer loses that when it does not follow commit.
		 * NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker) */
		memcpy(p, data + *used, take);
		*used += take;
		enum mu_err rc = mu_frame_rd_commit(r, take, st, err);
		if (rc)
			return rc;
	}
	return MU_OK;
}

size_t mu_frame_rd_len(const struct mu_frame_rd *r) { return r->done ? r->len : 0; }

size_t mu_frame_rd_pending(const struct mu_frame_rd *r) { return r->done ? 0 : r->have; }

void mu_frame_rd_next(struct mu_frame_rd *r)
{
	if (r->failed)
		return;
	r->have = 0;
	r->len = 0;
	r->done = 0;
}

enum mu_err mu_frame_header(uint8_t hdr[static MU_FRAME_HDR], size_t len, size_t max, struct mu_error *err)
{
	if (len == 0 || len > max || len > UINT32_MAX)
		return mu_errf(err, MU_ERR_RANGE, "frame body of %zu bytes (must be 1..%zu)", len, max);
	be32_store(hdr, (uint32_t)len);
	return MU_OK;
}
