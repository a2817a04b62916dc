/* kbs.h — the key broker: releases a sealed model's key only to an attested enclave.
 *
 * Two layers:
 *   - the core (kbs_core.c): policy, model keys, the nonce table and the message handler. It
 *     does no I/O and reads no clock: every call gets `now_ms` (a monotonic millisecond
 *     count), so tests drive it with tables of times, and the fuzz harness drives it directly.
 *   - the server (kbs.c): files (policy, keys, audit log), sockets and the poll loop.
 *
 * The protocol, the policy and the wrap are described in attest/kbs_proto.h, attest/policy.h,
 * attest/evidence.h and docs/key-release.md.
 *
 * Fail closed: a core without a policy refuses every message with "no_policy"; a refusal
 * carries no key-derived byte; every decision (release or refusal) yields an audit record,
 * and the server releases nothing it could not write to the audit log first.
 */
#ifndef MU_HOST_KBS_H
#define MU_HOST_KBS_H

#include <stddef.h>
#include <stdint.h>

#include "attest/kbs_proto.h"
#include "attest/policy.h"
#include "base/err.h"
#include "wire/json_write.h"

#define MU_KBS_REPLY_MAX 2048 /* bytes of one reply body */
#define MU_KBS_PEER_MAX 64

struct mu_kbs; /* opaque: holds the model keys; lives in memory the caller grants */

enum mu_kbs_conn_state {
	MU_KBS_CONN_NEW = 0,    /* waiting for hello */
	MU_KBS_CONN_CHALLENGED, /* a nonce was issued; waiting for evidence */
	MU_KBS_CONN_DONE,       /* a key or a refusal was sent: the connection must close */
};

/* One client connection, in the caller's memory. */
struct mu_kbs_conn {
	uint64_t id; /* unique for the life of the core, never 0 */
	enum mu_kbs_conn_state state;
	char peer[MU_KBS_PEER_MAX]; /* "unix:pid=..,uid=..", "tcp:1.2.3.4:5", ... for the log */
};

/* What was decided about one message, for the audit log. */
struct mu_kbs_decision {
	int made;                /* 1 for a release or a refusal; 0 for a challenge */
	enum mu_kbs_code code;   /* MU_KBS_OK: released */
	const char *format;      /* evidence format name when known, else NULL */
	int insecure;            /* the evidence format is signed by nothing */
	int have_nonce, have_measurement, have_key_id;
	uint8_t nonce[MU_KBS_NONCE_LEN];
	uint8_t measurement[32];
	uint8_t key_id[MU_KBS_KEY_ID_LEN];
};

struct mu_kbs_reply {
	uint8_t body[MU_KBS_REPLY_MAX]; /* one JSON object, without the frame header */
	size_t len;
	int close; /* close the connection once the reply is sent */
	struct mu_kbs_decision d;
	char message[MU_KBS_MESSAGE_MAX + 1]; /* the reply's human-readable message */
};

/* ---- core ---- */

enum mu_err mu_kbs_mem_size(size_t *size, struct mu_error *err);
/* Lays the broker out in mem (at least mu_kbs_mem_size bytes, any alignment). No policy, no
 * keys yet: every message is refused with no_policy until mu_kbs_set_policy. */
enum mu_err mu_kbs_init(struct mu_kbs **k, void *mem, size_t len, struct mu_error *err);
/* Wipes every byte of the broker's memory (keys included). */
void mu_kbs_wipe(struct mu_kbs *k);

void mu_kbs_set_policy(struct mu_kbs *k, const struct mu_policy *p);
const struct mu_policy *mu_kbs_policy(const struct mu_kbs *k); /* NULL when none */
/* Adds a 32-byte model key and reports its key id. Refuses a second key with the same id and
 * more than MU_KBS_MAX_KEYS keys. */
enum mu_err mu_kbs_add_key(struct mu_kbs *k, const uint8_t key[static 32], uint8_t key_id[static MU_KBS_KEY_ID_LEN],
			   struct mu_error *err);
int mu_kbs_has_key(const struct mu_kbs *k, const uint8_t key_id[static MU_KBS_KEY_ID_LEN]);

void mu_kbs_conn_open(struct mu_kbs *k, struct mu_kbs_conn *c, const char *peer);
/* Forgets the connection's unanswered nonce (a used nonce is remembered, to report reuse). */
void mu_kbs_conn_close(struct mu_kbs *k, struct mu_kbs_conn *c);

/* Handles one frame body from connection c at time now_ms and writes the reply. Any input
 * gives a reply; a refusal, or a key, sets r->close. */
void mu_kbs_handle(struct mu_kbs *k, struct mu_kbs_conn *c, const uint8_t *body, size_t len, uint64_t now_ms,
		   struct mu_kbs_reply *r);
/* A refusal the caller decides on (bad_frame from its frame reader, internal_error when the
 * audit log cannot be written); message is plain text without secrets. Replaces whatever r
 * held (a key reply is wiped), keeping r->d's evidence details. */
void mu_kbs_refuse(struct mu_kbs *k, struct mu_kbs_conn *c, enum mu_kbs_code code, const char *message,
		   struct mu_kbs_reply *r);

/* The members of decision d's audit record, written into the open object w (the server
 * writes them after mu_audit_begin's seq, ts_ms, prev and event "kbs_decision"):
 *   "conn":N,"peer":"..","decision":"release"|"refuse","code":"..","format":"dev"|null,
 *   "insecure":bool,"nonce":hex|null,"measurement":hex|null,"key_id":hex|null
 * At most MU_KBS_AUDIT_MAX bytes of JSON. */
#define MU_KBS_AUDIT_MAX 512
void mu_kbs_audit_members(struct jsonw *w, const struct mu_kbs_conn *c, const struct mu_kbs_decision *d);

/* ---- server ---- */

struct mu_kbs_server_opts {
	const char *listen;     /* "tcp:HOST:PORT" (PORT 0: any free port) or "unix:PATH" */
	const char *audit_path; /* NULL: no audit log (decisions still go to stderr); else a
				   hash-chained log (host/audit.h), verified at startup */
	uint32_t read_timeout_ms;
	uint32_t max_conns;
};

/* Reads and validates a policy file (MU_POLICY_MAX_BYTES at most). */
enum mu_err mu_kbs_load_policy(struct mu_policy *p, const char *path, struct mu_error *err);
/* Reads a raw 32-byte key file (as `mu keygen` writes it) into the broker. */
enum mu_err mu_kbs_load_key(struct mu_kbs *k, const char *path, uint8_t key_id[static MU_KBS_KEY_ID_LEN],
			    struct mu_error *err);
/* Serves until SIGTERM or SIGINT (then MU_OK). Prints "mu kbs: listening on ADDR" to stderr
 * once the socket is bound (with the chosen port for tcp port 0). */
enum mu_err mu_kbs_serve(struct mu_kbs *k, const struct mu_kbs_server_opts *o, struct mu_error *err);

#endif
