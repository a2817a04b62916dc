/* proxy.h — `mu proxy`: the host's only channel between clients and the enclave.
 *
 * One process, one thread, one poll loop. It holds one connection to the enclave (attested
 * through the key broker before anything is served) and many client connections on a local
 * socket, all non-blocking, each with its own preallocated frame buffers, so no peer can block
 * another and memory is bounded by the number of clients. docs/proxy.md describes the
 * behaviour; docs/protocol.md the messages.
 *
 *   enclave link   DOWN -> connect enclave, connect broker, broker hello -> CHALLENGE
 *                  -> challenge: enclave hello{nonce} -> EVIDENCE
 *                  -> evidence (nonce checked): relayed to the broker unchanged -> KEY
 *                  -> key: unlock to the enclave -> READY  | refused: audit, DOWN
 *                  -> ready: audit enclave_attested -> UP
 *                  Every step has a deadline; any failure closes both links, is audited and
 *                  retried after a backoff (reconnect_ms doubling up to 5 s, back to
 *                  reconnect_ms only once the link has stayed up for PROXY_LINK_STABLE_MS).
 *                  Nothing the enclave chooses as text (error code names, decoder messages,
 *                  the model name) reaches stderr or the audit log: only the proxy's own
 *                  names for what it saw.
 *   clients        generate / cancel only. A generate is checked (link up, budget left,
 *                  queue room), audited, re-encoded and queued; one request at a time goes
 *                  to the enclave.
 *   output         enclave token text -> filter -> ledger charge -> token bucket -> client.
 *                  While output is pending the enclave is not read, so backpressure reaches
 *                  it through the socket.
 *
 * The public interface is mu_proxy_run(); the rest of this header is shared by proxy*.c.
 */
#ifndef MU_HOST_PROXY_H
#define MU_HOST_PROXY_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#include "attest/kbs_proto.h"
#include "base/bucket.h"
#include "base/err.h"
#include "base/limits.h"
#include "host/apikeys.h"
#include "host/audit.h"
#include "host/filter.h"
#include "host/ledger.h"
#include "pal/net.h"
#include "wire/frame.h"
#include "wire/proto.h"

#define MU_PROXY_DEFAULT_EGRESS_BPS 4096u
#define MU_PROXY_DEFAULT_EGRESS_BURST 8192u
#define MU_PROXY_DEFAULT_DAILY_BYTES 10485760u
#define MU_PROXY_DEFAULT_RESERVE 4096u
#define MU_PROXY_DEFAULT_RECONNECT_MS 500u
#define MU_PROXY_MAX_BACKOFF_MS 5000u
#define MU_PROXY_DEFAULT_DRAIN_MS 180000u /* the enclave's done/error after a cancel (--drain-timeout-ms) */
#define MU_PROXY_DRAIN_MAX_MS 3600000u
#define MU_PROXY_CLIENTS_LIMIT 1024u /* largest --max-clients (each client holds 2 MiB of buffers) */
#define MU_PROXY_DEFAULT_HTTP_CONNS 128u    /* --http-max-connections */
#define MU_PROXY_HTTP_CONNS_LIMIT 1024u
#define MU_PROXY_DEFAULT_HTTP_TIMEOUT_MS 10000u /* --http-timeout-ms */
#define MU_PROXY_DEFAULT_HTTP_MAX_BODY (1u << 20) /* --http-max-body */
#define MU_PROXY_HTTP_HEADER_MEM (32u << 10) /* per connection: request line + headers must fit */

struct mu_proxy_opts {
	const char *enclave_addr; /* "unix:PATH" | "tcp:HOST:PORT" */
	const char *kbs_addr;
	const char *listen_addr;
	const char *ledger_path;
	const char *audit_path;
	const char *filter_path; /* NULL: the filter's defaults */
	const char *const *deny; /* n_deny extra deny patterns */
	uint32_t n_deny;
	uint64_t egress_bps, egress_burst;
	struct mu_ledger_limits ledger;
	uint32_t max_clients;
	uint32_t read_timeout_ms;
	uint32_t reconnect_ms;
	uint32_t drain_timeout_ms; /* a cancelled request must end within this, or the link is dropped */
	/* the HTTP API (proxy_http.c, docs/http.md); http_addr NULL: none */
	const char *http_addr;
	const char *keys_path;     /* API keys (host/apikeys.h); NULL only with http_no_auth */
	const char *key_state_dir; /* the keys' quota ledgers */
	int http_no_auth;          /* --no-auth: anyone may call the API (development only) */
	uint32_t http_max_conns;
	uint32_t http_timeout_ms; /* a request must arrive whole within this; idle connections close */
	uint32_t http_max_body;
	uint32_t http_per_ip;     /* connections per client address (0: no limit) */
};

void mu_proxy_opts_default(struct mu_proxy_opts *o);

/* Starts (filter, ledger, audit log, listening socket: any failure is returned with a message
 * before anything is served) and serves until SIGTERM or SIGINT, then returns MU_OK. Prints
 * "mu proxy: listening on ADDR" to stderr once the socket is bound. */
enum mu_err mu_proxy_run(const struct mu_proxy_opts *o, struct mu_error *err);

/* ======================= internal: shared by proxy.c, proxy_*.c ======================= */

#define PROXY_CTL_MAX 2048       /* per client: the proxy's own error frames waiting to be sent */
#define PROXY_CTL_READ_ROOM 1024 /* a client is read only while this much ctl room is left */
#define PROXY_NAME_MAX 160       /* "c17 unix:pid=1234,uid=1000", "h9 key=alice tcp:127.0.0.1:5000" */
#define PROXY_EOUT_CAP (MU_FRAME_HDR + MU_WIRE_MAX_FRAME + 1024)
#define PROXY_KOUT_CAP (MU_FRAME_HDR + MU_KBS_MAX_FRAME)
#define PROXY_CONNECT_MS 1000u   /* connecting to the enclave or the broker */
#define PROXY_EVIDENCE_MS 30000u /* the enclave's evidence after hello */
#define PROXY_KEY_MS 10000u      /* the broker's answer to the evidence */
#define PROXY_READY_MS 120000u   /* unsealing and loading the model after unlock */
#define PROXY_LINK_STABLE_MS 30000u /* up this long: the reconnect backoff starts over */
/* stream:false: the text is held until the end in max_response_bytes + one token frame's text
 * (so a response the max_size rule lets through never leaves before its end), at most this. */
#define PROXY_NS_MAX ((size_t)64 << 20)
#define PROXY_REFUSED_INTERVAL_MS 1000u /* at most one `refused` record per code this often */
#define PROXY_MAX_REFUSALS 8u           /* refusals one connection gets before it is closed */

/* A client's request: QUEUED (waiting; in p->queue), CANCELLED (cancelled while queued: owes
 * the client a done(cancelled), no closing record yet), ANSWERED (its closing record is
 * written; only its last frame is still to be written), ACTIVE (p->act is this request). */
enum proxy_req { PROXY_REQ_NONE = 0, PROXY_REQ_QUEUED, PROXY_REQ_CANCELLED, PROXY_REQ_ANSWERED, PROXY_REQ_ACTIVE };

struct proxy_client {
	int fd; /* -1: free slot */
	uint64_t serial;
	uint8_t *rd_mem;    /* MU_WIRE_MAX_FRAME bytes: the frame being read */
	char name[PROXY_NAME_MAX]; /* client id for the audit log: "cN PEER" */
	struct mu_frame_rd rd;
	uint64_t frame_t0_ms; /* when the current frame's first byte came (0: between frames) */
	uint8_t ctl[PROXY_CTL_MAX]; /* the proxy's own error frames (whole), not charged or metered */
	size_t ctl_len, ctl_off;
	int mid;              /* a frame is partly written: 0 none, 1 ctl, 2 egress */
	uint64_t stall_t0_ms; /* since when the socket has refused our writes (0: it has not) */
	int closing;          /* close once ctl is written (or at close_at_ms) */
	int draining;         /* our side is shut down: discard input until EOF or close_at_ms */
	uint64_t close_at_ms;
	/* its request (at most one) */
	enum proxy_req req;
	char req_id[MU_WIRE_MAX_ID + 1];
	int req_stream;
	int64_t req_max_tokens;
	uint32_t refusals;  /* requests refused on this connection (closed at PROXY_MAX_REFUSALS) */
	uint8_t *req_buf;   /* MU_WIRE_MAX_FRAME bytes: the re-encoded generate body */
	size_t req_len;
	uint64_t req_t0_ms;
	int req_key;        /* API key index (HTTP), -1: none */
	/* an HTTP request (proxy_http.c) rather than a frame connection: fd is then the HTTP
	 * connection's socket, owned by libmicrohttpd, only ever polled for a hangup */
	struct http_req *h;
};

enum proxy_link_state {
	PROXY_LINK_DOWN = 0,
	PROXY_LINK_CHALLENGE, /* broker hello sent; waiting for the challenge */
	PROXY_LINK_EVIDENCE,  /* enclave hello sent; waiting for evidence */
	PROXY_LINK_KEY,       /* evidence relayed; waiting for the broker's key or refusal */
	PROXY_LINK_READY,     /* unlock sent; waiting for ready */
	PROXY_LINK_UP,
};

struct proxy_link {
	enum proxy_link_state state;
	int efd, kfd; /* enclave, broker (-1: closed) */
	struct mu_frame_rd erd, krd;
	uint8_t *ebuf, *kbuf; /* frame bodies: MU_WIRE_MAX_FRAME, MU_KBS_MAX_FRAME */
	uint64_t e_frame_t0_ms; /* when the enclave's current frame began (0: between frames) */
	uint8_t *eout; /* frames for the enclave */
	size_t eout_len, eout_off;
	uint64_t eout_stall_ms;
	uint8_t *kout; /* frames for the broker */
	size_t kout_len, kout_off;
	uint64_t deadline_ms; /* of the current attestation step */
	uint64_t retry_at_ms;
	uint32_t backoff_ms;
	uint64_t up_since_ms; /* when the link came up */
	uint64_t stray_errors; /* error frames about no running request in this link session */
	char last_fail[400]; /* the last failure printed and audited (repeats are not) */
	int fail_pending;    /* proxy_link_fail_later was called */
	char fail_why[400];
	/* the attestation in progress / in force */
	uint8_t nonce[MU_KBS_NONCE_LEN];
	uint8_t measurement[32];
	uint8_t key_id[MU_KBS_KEY_ID_LEN];
	char format[32];
	int insecure;
	char model[MU_WIRE_MAX_MODEL_NAME + 1];
	char first_model[MU_WIRE_MAX_MODEL_NAME + 1]; /* the name at this process's first attestation */
	int64_t n_ctx, max_tokens, egress_bps, egress_burst;
	uint64_t attested; /* times attested */
};

enum { PROXY_EG_TOKEN = 0, PROXY_EG_DONE = 1, PROXY_EG_LOCAL_DONE = 2 };

enum proxy_phase {
	PROXY_ACT_NONE = 0,
	PROXY_ACT_STREAM, /* forwarded; enclave frames for it are read and filtered */
	PROXY_ACT_FINISH, /* the enclave said done (or nothing to ask it): release the rest, done */
	PROXY_ACT_DRAIN,  /* the client has its answer or is gone: ignore frames until done/error */
};

struct proxy_active {
	enum proxy_phase phase;
	int client; /* index of the client, -1 when it is gone or already answered */
	char id[MU_WIRE_MAX_ID + 1];
	char client_name[PROXY_NAME_MAX];
	int stream;
	int64_t max_tokens; /* the request's */
	int cancel_sent;
	int enclave_done;      /* the enclave ended the request (done or error) or cannot any more */
	int audited;           /* its closing record (response or blocked) is written */
	int pending_release;   /* the filter may have bytes to release */
	uint64_t t0_ms;        /* accepted */
	uint64_t fwd_ms;       /* forwarded to the enclave */
	uint64_t drain_deadline_ms;
	uint64_t text_released;  /* text bytes framed for the client */
	uint64_t bytes_released; /* frame bytes (token, done) charged and queued for the client */
	uint64_t frames;
	enum mu_finish finish;
	int64_t prompt_tokens, completion_tokens; /* the enclave's done, checked */
	int64_t elapsed_ms; /* the proxy's own measure: forwarded to the enclave's done */
	int key;            /* API key charged besides the ledger, -1: none */
	int stop_hit;       /* HTTP: a stop sequence ended the text; the enclave was cancelled */
	/* stream:false: text released by the filter, sent as token frames at the end */
	uint8_t *ns; /* ns_cap bytes */
	size_t ns_cap, ns_len, ns_off;
	int ns_flushing; /* the buffer filled up before the end: sending it now */
};

/* What GET /metrics reports (proxy_http.c). Rates are over the last PROXY_RATE_WINDOW seconds. */
#define PROXY_RATE_WINDOW 10
#define PROXY_HTTP_STATUSES 12 /* distinct statuses counted (200, 400, 401, ...) */
struct proxy_metrics {
	uint64_t egress_bytes;      /* enclave-derived bytes written to clients (frames and HTTP) */
	uint64_t completion_tokens; /* from the enclave's done of completed requests */
	uint64_t frame_requests;    /* generate requests admitted on the frame socket */
	uint64_t blocks[MU_RULE_COUNT];
	uint16_t status[PROXY_HTTP_STATUSES];
	uint64_t status_n[PROXY_HTTP_STATUSES];
	uint64_t last_attested_wall_ms;
	uint64_t win_s[PROXY_RATE_WINDOW], win_bytes[PROXY_RATE_WINDOW], win_tokens[PROXY_RATE_WINDOW];
};
void proxy_metrics_bytes(struct proxy_metrics *m, uint64_t n, uint64_t now_ms);
void proxy_metrics_tokens(struct proxy_metrics *m, uint64_t n, uint64_t now_ms);
/* per second, over the window ending at now_ms */
void proxy_metrics_rates(const struct proxy_metrics *m, uint64_t now_ms, double *bytes_s, double *tokens_s);

/* Refusals of one code folded into one `refused` record per PROXY_REFUSED_INTERVAL_MS. */
struct proxy_refusals {
	int recorded;      /* a record for this code was written (at last_ms) */
	uint64_t last_ms;
	uint64_t pending;  /* refusals since then, not yet in a record */
	char client[PROXY_NAME_MAX]; /* the latest of them */
	char id[MU_WIRE_MAX_ID + 1];
	int has_id;
};

struct proxy {
	const struct mu_proxy_opts *o;
	int lfd, sfd;
	char addr[PAL_NET_ADDR_MAX]; /* the bound listening address */
	uint64_t serial;
	struct proxy_client *clients;
	uint8_t *client_mem; /* 2 x MU_WIRE_MAX_FRAME per client */
	uint32_t n_clients;
	uint32_t queue[MU_PROXY_MAX_QUEUE]; /* client indices, oldest first */
	uint32_t n_queue;
	struct proxy_link link;
	struct proxy_active act;
	/* the one frame of enclave-derived output being written (token or done), its owner */
	uint8_t *eg;
	size_t eg_len, eg_off;
	int eg_client;   /* -1: none */
	int eg_kind;     /* PROXY_EG_TOKEN, PROXY_EG_DONE (the active request's), PROXY_EG_LOCAL_DONE */
	uint64_t eg_credit; /* bytes the bucket granted that are not written yet */
	uint64_t eg_wait_until_ns; /* the bucket is empty until then */
	uint32_t local_rr;
	struct mu_bucket bucket;
	struct mu_ledger ledger;
	struct mu_audit audit;
	struct mu_filter_config fcfg;
	struct mu_filter filter;
	void *scratch; /* mu_msg_decode's memory for one frame */
	size_t scratch_len;
	struct mu_msg msg;
	uint8_t rel[MU_WIRE_MAX_TOKEN_TEXT]; /* released filter bytes for one token frame */
	struct proxy_refusals refusals[MU_WIRE_CODE_COUNT];
	int failed_closed; /* the audit log or the ledger failed: say so once */
	int audit_open;
	int stop_signal;
	uint64_t accept_pause_until_ms;
	/* HTTP API: slots clients[max_clients .. max_clients + http_max_conns) are HTTP requests */
	struct proxy_http *http;
	struct mu_keys keys;
	struct proxy_metrics metrics;
};

/* proxy.c */
uint64_t proxy_now_ms(void);
uint64_t proxy_wall_ms(void);
/* Audit: begin returns NULL when the record cannot be started; commit returns 0 when the
 * record is durable, -1 otherwise (then the caller must not do what it records). */
struct jsonw *proxy_audit_begin(struct proxy *p, const char *event);
int proxy_audit_commit(struct proxy *p);

/* proxy_http.c: the HTTP API on libmicrohttpd, driven from the poll loop */
enum mu_err proxy_http_start(struct proxy *p, struct mu_error *err);
void proxy_http_stop(struct proxy *p);
/* Resumes the requests that have something to send, checks the request deadlines and runs
 * libmicrohttpd once (nothing in it blocks). Returns 1 when one of its callbacks ran, so the
 * egress path may have new work (a request queued, a piece taken, a client gone). */
int proxy_http_run(struct proxy *p, uint64_t now);
/* Poll entries: the daemon's epoll descriptor, and a hangup watch on each suspended request.
 * Adds at most proxy_http_poll_max(p) entries at pfd; returns how many. */
uint32_t proxy_http_poll_max(const struct proxy *p);
uint32_t proxy_http_poll_fill(struct proxy *p, struct pollfd *pfd, int *timeout);
void proxy_http_poll_done(struct proxy *p, const struct pollfd *pfd, uint32_t n, uint64_t now);
/* The egress path's hooks for a client slot that is an HTTP request. */
void proxy_http_error(struct proxy *p, struct proxy_client *c, const char *id, enum mu_wire_code code,
		      const char *message);
int proxy_http_produce(struct proxy *p, uint64_t now); /* the active request's next piece; 0: none now */
void proxy_http_release(struct proxy *p, struct proxy_client *c); /* the slot is given up */

/* proxy_client.c */
/* The checks every generate passes before it is queued (enclave up, budget left, queue room). */
enum mu_wire_code proxy_admit_check(struct proxy *p, const char *id);
/* Re-encodes m into c->req_buf, writes the request record (with api and c->req_key when api
 * is not NULL) and queues it; otherwise the code and *msg to answer with. */
enum mu_wire_code proxy_enqueue(struct proxy *p, struct proxy_client *c, const struct mu_msg *m, const char *api,
				uint64_t now, const char **msg);
void proxy_client_accept(struct proxy *p, uint64_t now);
void proxy_client_readable(struct proxy *p, struct proxy_client *c, short revents, uint64_t now);
void proxy_client_flush(struct proxy *p, struct proxy_client *c, uint64_t now);
void proxy_client_close(struct proxy *p, struct proxy_client *c, const char *why);
void proxy_client_error(struct proxy *p, struct proxy_client *c, const char *id, enum mu_wire_code code,
			const char *message);
const char *proxy_code_message(enum mu_wire_code code);
void proxy_client_timers(struct proxy *p, uint64_t now);
uint64_t proxy_client_next_ms(const struct proxy *p, const struct proxy_client *c); /* 0: none */
int proxy_client_wants_write(const struct proxy *p, const struct proxy_client *c, uint64_t now_ns);
/* Records a refusal: written at once when no `refused` record for this code was written in the
 * last PROXY_REFUSED_INTERVAL_MS, else counted and folded into the next one. */
void proxy_audit_refused(struct proxy *p, const char *client, const char *id, enum mu_wire_code code, uint64_t now);
/* Writes the folded refusals whose interval is over (all of them when force). */
void proxy_refused_flush(struct proxy *p, uint64_t now, int force);
uint64_t proxy_refused_next_ms(const struct proxy *p); /* 0: none */

/* proxy_egress.c */
void proxy_pump(struct proxy *p, uint64_t now);
void proxy_act_enclave_frame(struct proxy *p, const struct mu_msg *m, uint64_t now);
void proxy_act_link_lost(struct proxy *p);
void proxy_act_client_gone(struct proxy *p, struct proxy_client *c);
void proxy_act_client_cancel(struct proxy *p, struct proxy_client *c, const char *id, uint64_t now);
/* An enclave frame that did not decode (code): 0 when it is dealt with (blocked as invalid
 * UTF-8 in a response), -1 when it breaks the link. */
int proxy_act_enclave_bad_frame(struct proxy *p, enum mu_wire_code code, uint64_t now);
void proxy_act_timers(struct proxy *p, uint64_t now);
uint64_t proxy_act_next_ms(const struct proxy *p); /* 0: none */
int proxy_act_may_read(const struct proxy *p);
/* Charges n bytes about to be released for the active request (the ledger, and its API key's
 * quota); 0 when they may not go (the request has been failed). */
int proxy_charge(struct proxy *p, size_t n, uint64_t now);
/* p->eg[0..len) (raw bytes, no frame header) is the next output for client index ci. */
void proxy_eg_set(struct proxy *p, size_t len, int ci, int kind);
/* The active request's closing record; 0 when it is durable (or was written before). */
int proxy_act_audit(struct proxy *p, const char *finish, const char *error, uint64_t now);
void proxy_act_fail(struct proxy *p, enum mu_wire_code code, const char *message, uint64_t now);
void proxy_act_cancel(struct proxy *p, uint64_t now); /* asks the enclave to stop the active request */
/* The egress frame owned by client index ci was written completely. */
void proxy_egress_written(struct proxy *p, int ci, int kind);
void proxy_queue_remove(struct proxy *p, uint32_t idx);

/* proxy_enclave.c */
void proxy_link_init(struct proxy_link *l);
void proxy_link_tick(struct proxy *p, uint64_t now);
void proxy_link_enclave_io(struct proxy *p, short revents, uint64_t now);
void proxy_link_broker_io(struct proxy *p, short revents, uint64_t now);
void proxy_link_close(struct proxy *p);
int proxy_link_may_read(const struct proxy *p);
short proxy_link_enclave_events(const struct proxy *p);
short proxy_link_broker_events(const struct proxy *p);
uint64_t proxy_link_next_ms(const struct proxy *p, uint64_t now);
/* Queues a frame body for the enclave; -1 when it does not fit (the link is then failed). */
int proxy_link_send(struct proxy *p, const void *body, size_t len, uint64_t now);
void proxy_link_fail(struct proxy *p, const char *why, uint64_t now);
/* The same from code that runs inside the link's own handlers: takes effect at the next tick. */
void proxy_link_fail_later(struct proxy *p, const char *why);

#endif
