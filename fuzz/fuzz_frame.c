/* fuzz_frame.c — libFuzzer harness for the wire's byte stream: the frame reader at the wire's
 * frame size, feeding the message decoder.
 *
 * Input layout:
 *   byte 0          k = byte 0 & 15: how many piece sizes follow (0: the stream in one piece)
 *   bytes 1..k      piece sizes, each byte b meaning b + 1 bytes
 *   the rest        the byte stream: frames (4-byte big-endian length, body), possibly broken
 * The stream is fed to mu_frame_rd_feed in pieces whose sizes cycle through the list, as a
 * socket would deliver it. Every complete body is decoded with mu_msg_decode.
 *
 * Checked (a broken invariant traps): every feed consumes at least one byte and at most what
 * it was given, or fails; a failure is sticky and names a zero length or an oversized one,
 * and only ever happens while a header is being read; a complete body has the length its
 * header said (1..MU_WIRE_MAX_FRAME); the bytes consumed add up to the frames seen; the
 * decoder answers each body with the same code twice. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/limits.h"
#include "wire/frame.h"
#include "wire/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(int cond)
{
	if (!cond)
		__builtin_trap();
}

static uint8_t *frame_buf, *mem;
static size_t mem_len;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mu_frame_rd rd;
	struct mu_error err;
	struct mu_msg m;
	if (size < 1)
		return 0;
	if (!frame_buf) {
		frame_buf = malloc(MU_WIRE_MAX_FRAME);
		mem_len = mu_msg_mem_size(MU_WIRE_MAX_FRAME);
		mem = malloc(mem_len);
		require(frame_buf && mem);
	}
	size_t k = data[0] & 15u;
	if (size < 1 + k)
		return 0;
	const uint8_t *sizes = data + 1;
	const uint8_t *p = data + 1 + k;
	size_t n = size - 1 - k, piece = 0, in_frame = 0, frames_bytes = 0, consumed = 0;

	mu_frame_rd_init(&rd, frame_buf, MU_WIRE_MAX_FRAME);
	while (n > 0) {
		size_t want = k ? (size_t)sizes[piece++ % k] + 1 : n;
		if (want > n)
			want = n;
		/* the piece itself is copied, so ASan sees reads past what was delivered */
		uint8_t *chunk = malloc(want);
		require(chunk != NULL);
		memcpy(chunk, p, want);
		size_t off = 0;
		while (off < want) {
			size_t used = 0;
			enum mu_frame_state st;
			size_t pending = mu_frame_rd_pending(&rd);
			enum mu_err rc = mu_frame_rd_feed(&rd, chunk + off, want - off, &used, &st, &err);
			if (rc != MU_OK) {
				/* only a length prefix can be wrong, and it stays wrong */
				require(rc == MU_ERR_FORMAT || rc == MU_ERR_RANGE);
				require(pending < MU_FRAME_HDR);
				require(mu_frame_rd_feed(&rd, chunk, want, &used, &st, NULL) != MU_OK);
				free(chunk);
				return 0;
			}
			require(used >= 1 && used <= want - off);
			off += used;
			consumed += used;
			in_frame += used;
			if (st == MU_FRAME_DONE) {
				size_t len = mu_frame_rd_len(&rd);
				require(len >= 1 && len <= MU_WIRE_MAX_FRAME && in_frame == len + MU_FRAME_HDR);
				frames_bytes += in_frame;
				in_frame = 0;
				enum mu_wire_code c = mu_msg_decode(&m, frame_buf, len, mem, mem_len, &err);
				require(c == mu_msg_decode(&m, frame_buf, len, mem, mem_len, NULL));
				require(c != MU_WIRE_INTERNAL);
				require((c == MU_WIRE_OK) == (m.type != MU_MSG_NONE));
				mu_frame_rd_next(&rd);
				require(mu_frame_rd_pending(&rd) == 0 && mu_frame_rd_len(&rd) == 0);
			}
		}
		free(chunk);
		p += want;
		n -= want;
	}
	require(consumed == frames_bytes + in_frame && mu_frame_rd_pending(&rd) == in_frame);
	return 0;
}
