/* frame.h — the frame layer of the byte streams this project speaks.
 *
 *     frame  = length (4 bytes, big-endian) || body (length bytes)
 *     body   = one UTF-8 JSON object (checked by the layer above)
 *
 * A length of 0 or above the stream's maximum is a framing error: the stream cannot be
 * resynchronised, so the reader becomes sticky-failed and the connection must close.
 *
 * The reader owns no memory: the caller grants a body buffer of `max` bytes. It is fed in one
 * of two ways, both bounded and copying at most what the current frame still needs:
 *   - from a socket: mu_frame_rd_space() says where the next bytes go and how many the current
 *     frame still lacks (never more, so pipelined frames are not over-read); after reading n
 *     bytes there, mu_frame_rd_commit(n);
 *   - from memory: mu_frame_rd_feed() consumes what it can from a buffer.
 * Once a frame is complete (MU_FRAME_DONE) its body is buf[0..mu_frame_rd_len()); consume it,
 * then call mu_frame_rd_next() to start on the following frame.
 */
#ifndef MU_WIRE_FRAME_H
#define MU_WIRE_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define MU_FRAME_HDR 4

enum mu_frame_state {
	MU_FRAME_MORE = 0, /* the current frame is not complete yet */
	MU_FRAME_DONE = 1, /* a whole body is in the buffer */
};

struct mu_frame_rd {
	uint8_t *buf;
	size_t max;
	uint8_t hdr[MU_FRAME_HDR];
	size_t have;  /* bytes of the current frame received, header included */
	uint32_t len; /* body length, once the header is complete */
	int done;
	enum mu_err failed; /* sticky */
};

void mu_frame_rd_init(struct mu_frame_rd *r, uint8_t *buf, size_t max);
/* Where the next received bytes go and how many the current frame still needs (n >= 1).
 * Returns MU_FRAME_DONE (and n = 0) when a body is waiting to be consumed. */
enum mu_frame_state mu_frame_rd_space(struct mu_frame_rd *r, uint8_t **p, size_t *n);
/* Accounts n bytes written at the place mu_frame_rd_space gave. Fails (sticky) with
 * MU_ERR_FORMAT for a zero length and MU_ERR_RANGE for a length above max. */
enum mu_err mu_frame_rd_commit(struct mu_frame_rd *r, size_t n, enum mu_frame_state *st, struct mu_error *err);
/* Copies bytes from data[0..n) until the current frame is complete or data runs out; *used is
 * how many were consumed. Same errors as mu_frame_rd_commit. */
enum mu_err mu_frame_rd_feed(struct mu_frame_rd *r, const uint8_t *data, size_t n, size_t *used,
			     enum mu_frame_state *st, struct mu_error *err);
/* Length of the complete body (0 while none is complete). */
size_t mu_frame_rd_len(const struct mu_frame_rd *r);
/* Bytes of the current frame received so far (0 between frames). */
size_t mu_frame_rd_pending(const struct mu_frame_rd *r);
/* Forgets the consumed body and waits for the next frame's header. */
void mu_frame_rd_next(struct mu_frame_rd *r);

/* Writes the 4-byte header of a body of len bytes; MU_ERR_RANGE when len is 0 or above max. */
enum mu_err mu_frame_header(uint8_t hdr[static MU_FRAME_HDR], size_t len, size_t max, struct mu_error *err);

#endif
