/* proto.h — wire protocol v1 between the proxy and the enclave (and between clients and the
 * proxy's local socket): typed messages, their strict decoding and their encoding.
 * docs/protocol.md is the normative description; the limits are in base/limits.h.
 *
 *   frame   4-byte big-endian length (1..MU_WIRE_MAX_FRAME), then one UTF-8 JSON object
 *
 *   proxy  -> enclave   hello{version, nonce}            start (or restart) attestation
 *   enclave-> proxy     evidence{...}                     the key broker's evidence message, as is
 *   proxy  -> enclave   unlock{key_id, kbs_pub, wrapped_key}
 *   enclave-> proxy     ready{model, n_ctx, max_tokens, egress_bytes_per_s, egress_burst_bytes}
 *   client/proxy -> ... generate{id, prompt | messages, max_tokens, temperature?, top_p?, top_k?,
 *                                seed?, stream?}
 *   ...                 cancel{id}
 *   ... -> client/proxy token{id, text}*  then  done{id, finish_reason, usage{prompt_tokens,
 *                                completion_tokens}, elapsed_ms}
 *   either way          error{id?, code, message}
 *
 * Decoding is strict: the frame body must be valid UTF-8 (else MU_WIRE_INVALID_UTF8), strict
 * JSON within MU_WIRE_MAX_DEPTH / MU_WIRE_MAX_TOKENS (else MU_WIRE_BAD_JSON), an object whose
 * "type" is a known message (else MU_WIRE_UNKNOWN_TYPE), with exactly the documented members,
 * each of the documented JSON type and range (else MU_WIRE_BAD_MESSAGE, or MU_WIRE_BAD_REQUEST
 * for a generate parameter out of range). The decoder classifies in that order, so one input
 * always gets the same code.
 *
 * Decoded strings (prompt, message contents, token text) point into the caller's scratch:
 * mu_msg_decode needs mu_msg_mem_size(len) bytes and the message lives as long as that memory.
 * Nothing here allocates or touches the OS; it builds freestanding and links into the enclave.
 */
#ifndef MU_WIRE_PROTO_H
#define MU_WIRE_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "attest/kbs_proto.h"
#include "base/err.h"
#include "base/limits.h"

#define MU_WIRE_VERSION 1

/* Stable error codes; the names (mu_wire_code_name) are the protocol's. Append at the end. */
enum mu_wire_code {
	MU_WIRE_OK = 0,
	MU_WIRE_BAD_FRAME,           /* "bad_frame": length prefix 0; the connection closes */
	MU_WIRE_FRAME_TOO_LARGE,     /* "frame_too_large": length over the maximum; closes */
	MU_WIRE_TIMEOUT,             /* "timeout": a frame begun but not finished in time; closes */
	MU_WIRE_INVALID_UTF8,        /* "invalid_utf8": the body is not valid UTF-8 */
	MU_WIRE_BAD_JSON,            /* "bad_json": not one strict JSON object within the limits */
	MU_WIRE_BAD_MESSAGE,         /* "bad_message": missing, unknown or wrongly typed member */
	MU_WIRE_UNKNOWN_TYPE,        /* "unknown_type": "type" names no message */
	MU_WIRE_BAD_STATE,           /* "bad_state": not allowed now (generate before ready ...) */
	MU_WIRE_BAD_REQUEST,         /* "bad_request": a generate parameter out of range */
	MU_WIRE_PROMPT_TOO_LONG,     /* "prompt_too_long": the prompt does not fit the context */
	MU_WIRE_BUSY,                /* "busy": a request is already running on this connection */
	MU_WIRE_UNSUPPORTED_VERSION, /* "unsupported_version": hello with another version */
	MU_WIRE_UNLOCK_FAILED,       /* "unlock_failed": the key did not unwrap or the model did
				        not unseal */
	MU_WIRE_INTERNAL,            /* "internal": a failure of the sender, not of the request */
	/* proxy -> client only */
	MU_WIRE_ENCLAVE_UNAVAILABLE, /* "enclave_unavailable": no attested enclave right now */
	MU_WIRE_ENCLAVE_LOST,        /* "enclave_lost": the enclave went away mid-request */
	MU_WIRE_BUDGET_EXHAUSTED,    /* "budget_exhausted": the daily or total egress budget is spent */
	MU_WIRE_FILTERED,            /* "filtered": the output filter blocked the response */
	MU_WIRE_OVER_CAPACITY,       /* "over_capacity": too many clients or queued requests */
	/* proxy HTTP API only (docs/http.md): never in a frame, named in the audit log */
	MU_WIRE_UNAUTHORIZED,        /* "unauthorized": no API key, or not a known one */
	MU_WIRE_RATE_LIMITED,        /* "rate_limited": the key's request rate is spent for now */
	MU_WIRE_QUOTA_EXHAUSTED,     /* "quota_exhausted": the key's output quota is spent */
	MU_WIRE_CODE_COUNT
};

const char *mu_wire_code_name(enum mu_wire_code c);                /* "unknown" out of range */
enum mu_wire_code mu_wire_code_from_name(const char *s, size_t n); /* MU_WIRE_CODE_COUNT if none */

enum mu_msg_type {
	MU_MSG_NONE = 0,
	MU_MSG_HELLO,
	MU_MSG_EVIDENCE,
	MU_MSG_UNLOCK,
	MU_MSG_READY,
	MU_MSG_GENERATE,
	MU_MSG_CANCEL,
	MU_MSG_TOKEN,
	MU_MSG_DONE,
	MU_MSG_ERROR,
	MU_MSG_TYPE_COUNT
};
const char *mu_msg_type_name(enum mu_msg_type t); /* "hello" ... */

enum mu_role { MU_WIRE_ROLE_SYSTEM = 0, MU_WIRE_ROLE_USER = 1, MU_WIRE_ROLE_ASSISTANT = 2 };
const char *mu_wire_role_name(enum mu_role r); /* "system", "user", "assistant" */

struct mu_wire_text { /* decoded UTF-8 (may contain NUL only where noted), not NUL-terminated */
	const char *p;
	size_t n;
};

enum mu_finish { MU_FINISH_STOP = 0, MU_FINISH_LENGTH = 1, MU_FINISH_CANCELLED = 2 };
const char *mu_finish_name(enum mu_finish f); /* "stop", "length", "cancelled" */

struct mu_msg {
	enum mu_msg_type type;
	/* request id (generate, cancel, token, done; error when has_id): 1..MU_WIRE_MAX_ID bytes of
	 * [A-Za-z0-9._:-], NUL-terminated */
	char id[MU_WIRE_MAX_ID + 1];
	int has_id;
	union {
		struct { /* hello */
			int64_t version;
			uint8_t nonce[MU_KBS_NONCE_LEN];
		} hello;
		struct { /* evidence: only the common members are decoded; the body is relayed as is */
			char format[32];
			uint8_t nonce[MU_KBS_NONCE_LEN];
			uint8_t pubkey[32];
			uint8_t measurement[32];
			uint8_t key_id[MU_KBS_KEY_ID_LEN];
		} evidence;
		struct { /* unlock */
			uint8_t key_id[MU_KBS_KEY_ID_LEN];
			uint8_t kbs_pub[32];               /* the broker's ephemeral public key */
			uint8_t wrapped_key[32 + 16];      /* ciphertext || tag */
		} unlock;
		struct { /* ready */
			char model[MU_WIRE_MAX_MODEL_NAME + 1]; /* printable ASCII */
			int64_t n_ctx, max_tokens, egress_bytes_per_s, egress_burst_bytes;
		} ready;
		struct { /* generate: exactly one of prompt / messages */
			int has_prompt;
			struct mu_wire_text prompt;
			uint32_t n_messages; /* 1..MU_WIRE_MAX_MESSAGES when !has_prompt */
			enum mu_role role[MU_WIRE_MAX_MESSAGES];
			struct mu_wire_text content[MU_WIRE_MAX_MESSAGES];
			int64_t max_tokens;  /* 1..MU_WIRE_MAX_GEN_TOKENS */
			double temperature;  /* 0 (greedy, the default) .. 100 */
			double top_p;        /* (0, 1], default 1 */
			int64_t top_k;       /* 0 (off, the default) .. MU_MAX_VOCAB */
			uint64_t seed;       /* 0 .. 2^53 - 1, default 0 */
			int stream;          /* default 1 */
		} generate;
		struct { /* token */
			struct mu_wire_text text; /* 0..MU_WIRE_MAX_TOKEN_TEXT bytes, no NUL */
		} token;
		struct { /* done */
			enum mu_finish finish;
			int64_t prompt_tokens, completion_tokens, elapsed_ms;
		} done;
		struct { /* error */
			enum mu_wire_code code;  /* MU_WIRE_CODE_COUNT for a name this build does not know */
			char code_name[40];      /* as sent (printable ASCII, else '?') */
			char message[MU_WIRE_MAX_ERROR_MESSAGE + 1]; /* printable text, NUL-terminated */
		} error;
	};
};

/* Scratch mu_msg_decode needs for a body of len bytes (JSON tokens plus decoded strings). */
size_t mu_msg_mem_size(size_t len);

/* Decodes one frame body. Returns MU_WIRE_OK, or the code the sender must be answered with;
 * err says what was wrong (field names and offsets, never content). On success m->type is set
 * and the strings point into mem. */
enum mu_wire_code mu_msg_decode(struct mu_msg *m, const uint8_t *body, size_t len, void *mem, size_t mem_len,
				struct mu_error *err);

/* ---- encoding: each writes one JSON object (no frame header) into buf[0..cap) and returns
 * its length, or 0 when it does not fit or an argument is invalid (text that is not valid
 * UTF-8, an id outside the alphabet). ---- */
size_t mu_msg_hello(char *buf, size_t cap, const uint8_t nonce[static MU_KBS_NONCE_LEN]);
size_t mu_msg_unlock(char *buf, size_t cap, const uint8_t key_id[static MU_KBS_KEY_ID_LEN],
		     const uint8_t kbs_pub[static 32], const uint8_t wrapped_key[static 48]);
size_t mu_msg_ready(char *buf, size_t cap, const char *model, int64_t n_ctx, int64_t max_tokens,
		    int64_t egress_bytes_per_s, int64_t egress_burst_bytes);
/* A generate message from a decoded one (the fields of m->generate and m->id); the proxy
 * re-encodes what clients send instead of relaying their bytes. */
size_t mu_msg_generate(char *buf, size_t cap, const struct mu_msg *m);
size_t mu_msg_cancel(char *buf, size_t cap, const char *id);
size_t mu_msg_token(char *buf, size_t cap, const char *id, const void *text, size_t n);
size_t mu_msg_done(char *buf, size_t cap, const char *id, enum mu_finish finish, int64_t prompt_tokens,
		   int64_t completion_tokens, int64_t elapsed_ms);
/* id may be NULL (no "id" member). message must be printable text without secrets. */
size_t mu_msg_error(char *buf, size_t cap, const char *id, enum mu_wire_code code, const char *message);

/* 1 when a and b are the same message field by field (strings by content, numbers by bits). */
int mu_msg_equal(const struct mu_msg *a, const struct mu_msg *b);

/* 1 when s[0..n) is a valid request id. */
int mu_wire_id_ok(const char *s, size_t n);

#endif
