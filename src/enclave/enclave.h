/* enclave.h — mu-enclave's process state and the pieces its sessions share.
 *
 * One process serves one channel, one connection at a time. Everything a session needs is
 * granted at startup (frame buffers, decode scratch, the output frame, the secrets area) or
 * when the model is first unlocked (infer.h); the request path allocates nothing.
 *
 *   startup   mu_enclave_init: config (its exact bytes), SHA-256 of /proc/self/exe, the
 *             sealed model mapped read-only (a file, or the VM's disk less its sector
 *             padding), its header's hash and key id, the measurement.
 *             mu_enclave_start: buffers, secrets, egress bucket, thread pool, channel.
 *   serving   mu_enclave_serve: accept (or take the device), run a v1 (session.c) or v0
 *             (v0.c) session, close, repeat.
 *   unlock    mu_enclave_unlock: the first successful unlock unseals, loads and then enters
 *             the sandbox; later ones only check that the key is the same model key.
 */
#ifndef MU_ENCLAVE_ENCLAVE_H
#define MU_ENCLAVE_ENCLAVE_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "enclave/channel.h"
#include "enclave/config.h"
#include "enclave/egress.h"
#include "enclave/infer.h"
#include "pal/pal.h"
#include "seal/crypto.h"
#include "wire/proto.h"

/* Key material, in one area of secret memory (locked, not dumpable, wiped on free). */
struct mu_enclave_secrets {
	uint8_t priv[32];   /* the current attestation's X25519 private key */
	uint8_t key[32];    /* an unwrapped model key, only for as long as it takes to use it */
	uint8_t psk[32];    /* v0: the pre-shared unlock key */
	struct mu_gcm gcm;  /* v0: its key schedule, while it decrypts */
};

#define MU_ENCLAVE_OUT_CAP ((size_t)MU_FRAME_HDR + MU_WIRE_MAX_FRAME)

struct mu_enclave {
	struct mu_enclave_cfg cfg;
	int v0;
	uint8_t *config;    /* the config file's exact bytes (pal_read_file) */
	size_t config_len;
	uint8_t binary_sha256[32], header_sha256[32], measurement[32];
	uint8_t key_id[MU_KBS_KEY_ID_LEN];
	struct pal_map sealed;
	size_t sealed_len; /* the sealed model's bytes: sealed.len less a disk's sector padding */
	struct mu_pool *pool;
	struct mu_infer inf;
	struct pal_secret sec_mem;
	struct mu_enclave_secrets *sec;
	struct mu_chan ch;
	struct mu_egress eg;
	uint8_t *in;        /* MU_WIRE_MAX_FRAME: the frame being read */
	void *msg_mem;      /* decode scratch for one frame */
	size_t msg_mem_len;
	uint8_t *out;       /* MU_ENCLAVE_OUT_CAP: 4-byte header room, then the body */
	char *text;         /* MU_WIRE_MAX_FRAME + 1: v0 prompt and completion, test scripts */
	uint64_t n_conn;
};

/* model_path, when not NULL, replaces the config's "model" (mu-enclave --measure --model). */
enum mu_err mu_enclave_init(struct mu_enclave *e, const char *config_path, const char *model_path, int v0,
			    struct mu_error *err);
enum mu_err mu_enclave_start(struct mu_enclave *e, struct mu_error *err);
/* Releases everything init and start granted (secrets wiped); safe after a failed init. */
void mu_enclave_free(struct mu_enclave *e);
/* Serves connections until a fatal error; returns the process exit code. */
int mu_enclave_serve(struct mu_enclave *e);

enum mu_unlock_rc {
	MU_UNLOCK_OK = 0,
	MU_UNLOCK_REFUSED,  /* wrong key, or the model did not unseal: unlock_failed */
	MU_UNLOCK_INTERNAL, /* the model unsealed but could not be loaded: internal */
	MU_UNLOCK_FATAL,    /* the sandbox could not be entered: the process must end */
};
/* Uses the model key in e->sec->key and wipes it, whatever the outcome. */
enum mu_unlock_rc mu_enclave_unlock(struct mu_enclave *e, struct mu_error *err);

/* Sends the body at e->out + 4 (len bytes) as one frame through the egress limiter. */
enum mu_err mu_enclave_send(struct mu_enclave *e, size_t len, struct mu_error *err);
/* An error frame; id may be NULL, message is shortened to fit. */
enum mu_err mu_enclave_send_error(struct mu_enclave *e, const char *id, enum mu_wire_code code, const char *message,
				  struct mu_error *err);
/* "mu-enclave: ..." on stderr. Never give it secrets, prompts or generated text. */
void mu_enclave_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

enum mu_session_rc { MU_SESSION_END = 0, MU_SESSION_FATAL = 1 };
enum mu_session_rc mu_session_v1(struct mu_enclave *e);
enum mu_session_rc mu_session_v0(struct mu_enclave *e);

/* ---- a request in progress (session.c), shared with the test scripts ---- */
struct mu_req {
	struct mu_enclave *e;
	char id[MU_WIRE_MAX_ID + 1];
	uint64_t t0_ns;
#ifdef MU_ENCLAVE_TEST
	uint32_t prefill_pause_ms; /* "@prefill:MS:TEXT": MS between prompt chunks (script.c) */
#endif
};
enum mu_poll_rc {
	MU_POLL_GO = 0,   /* carry on */
	MU_POLL_CANCEL,   /* a cancel for this request arrived */
	MU_POLL_CLOSE,    /* the connection is gone or must close */
};
/* Handles frames that arrive while the request runs, waiting up to wait_ms (0: only what is
 * there): cancel for this id ends it; cancel for another id is ignored; generate is busy; the
 * rest is bad_state; a decode failure gets its code. */
enum mu_poll_rc mu_req_poll(struct mu_req *r, int wait_ms);
/* A token frame with text[0..n) (valid UTF-8; NUL bytes are dropped); nothing for n = 0. */
enum mu_err mu_req_token(struct mu_req *r, const uint8_t *text, size_t n, struct mu_error *err);
enum mu_err mu_req_done(struct mu_req *r, enum mu_finish f, int64_t prompt_tokens, int64_t completion_tokens,
			struct mu_error *err);

#ifdef MU_ENCLAVE_TEST
/* Scripted misbehaviour (script.c): when g's prompt is "@flood", "@emit:..." or "@slow:...",
 * runs the script, answers it completely and returns 1 (MU_POLL_CLOSE in *close when the
 * connection must end); a malformed "@prefill:..." is answered with bad_request and returns 1
 * too; otherwise returns 0. */
int mu_script_run(struct mu_req *r, const struct mu_msg *g, int *close_conn);
/* When g's prompt is "@prefill:MS:TEXT" (checked by mu_script_run first): sets
 * r->prefill_pause_ms to MS, points (*text, *n) at TEXT (in g's strings) and returns 1: the
 * model then runs on TEXT as on a plain prompt, pausing MS ms between prompt chunks. Else 0. */
int mu_script_prefill(struct mu_req *r, const struct mu_msg *g, const char **text, size_t *n);
#endif

#endif
