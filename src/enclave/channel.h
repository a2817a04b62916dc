/* channel.h — the enclave's one channel, inbound side: opening it (a listening socket, or a
 * character device such as a virtio-serial port), accepting connections, and reading frames
 * under the read deadline of docs/protocol.md. Writing is egress.h's business alone.
 *
 * Reads take only what the current frame still lacks (wire/frame.h), so a pipelined frame is
 * never over-read and nothing is buffered between frames. Once the first byte of a frame has
 * arrived, the rest must come within read_timeout_ms; time between frames is not limited.
 */
#ifndef MU_ENCLAVE_CHANNEL_H
#define MU_ENCLAVE_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "enclave/config.h"
#include "pal/net.h"
#include "wire/frame.h"

struct mu_chan {
	enum mu_channel_kind kind;
	int lfd;                  /* listening socket (MU_CHANNEL_LISTEN), else -1 */
	int fd;                   /* the connection or the device, -1 when none */
	char addr[MU_ENCLAVE_PATH_MAX]; /* what the startup line prints */
	uint32_t read_timeout_ms;
	struct mu_frame_rd rd;
	uint64_t frame_start_ns;  /* when the current frame's first byte came (0: none pending) */
};

enum mu_chan_rc {
	MU_CHAN_FRAME = 0,  /* a whole body is in the reader: mu_chan_body, then mu_chan_next */
	MU_CHAN_NONE,       /* nothing complete within the wait (only with wait_ms >= 0) */
	MU_CHAN_CLOSED,     /* the peer closed, or a read failed: end the session */
	MU_CHAN_TIMEOUT,    /* a frame begun but not finished within read_timeout_ms */
	MU_CHAN_BAD_FRAME,  /* a length prefix of 0 */
	MU_CHAN_TOO_LARGE,  /* a length prefix above MU_WIRE_MAX_FRAME */
};

/* Opens the channel of the config: listens on unix:/tcp: (non-blocking), or opens dev:PATH
 * read/write. buf[0..MU_WIRE_MAX_FRAME) receives frame bodies. */
enum mu_err mu_chan_open(struct mu_chan *c, const struct mu_enclave_cfg *cfg, uint8_t *buf, struct mu_error *err);

/* Waits for the next connection (listening) and makes it the current one, non-blocking.
 * For a device, the device itself is the connection: returns at once. */
enum mu_err mu_chan_accept(struct mu_chan *c, struct mu_error *err);
/* Ends the current connection (closes a socket; a device stays open) and resets the reader. */
void mu_chan_close_conn(struct mu_chan *c);

/* Reads until a frame is complete. wait_ms < 0: wait as long as it takes for a frame to begin
 * (the read deadline still bounds a frame once begun); wait_ms >= 0: give up with MU_CHAN_NONE
 * after that long (0: only what is already there). */
enum mu_chan_rc mu_chan_read(struct mu_chan *c, int wait_ms);
const uint8_t *mu_chan_body(const struct mu_chan *c, size_t *len);
void mu_chan_next(struct mu_chan *c);

#endif
