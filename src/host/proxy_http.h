/* proxy_http.h — internal to the HTTP API (proxy_http.c: requests and the loop's side;
 * proxy_http_out.c: the response bodies the egress path makes, and the content reader that hands
 * them to libmicrohttpd as the token bucket allows). */
#ifndef MU_HOST_PROXY_HTTP_H
#define MU_HOST_PROXY_HTTP_H

#include <stdarg.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <microhttpd.h> /* after the headers it expects */

#include "host/oai.h"
#include "host/proxy.h"
#include "pal/net.h"

#define HTTP_CTL_MAX 2048          /* the proxy's own bytes for one response body */
#define HTTP_SCRATCH ((size_t)64 << 10) /* bodies built on the spot: errors, models, metrics */
#define HTTP_PIECE_MAX ((size_t)256 << 10) /* escaped text per piece of a whole response */
#define EG_CAP (MU_FRAME_HDR + MU_WIRE_MAX_FRAME + 1)
#define HTTP_MIN_ANSWER 512u /* bytes: about the smallest whole answer, head and end without text */

enum http_route { R_NONE = 0, R_CHAT, R_COMPLETIONS, R_OLLAMA, R_MODELS, R_HEALTH, R_METRICS };

struct http_conn { /* one TCP connection: libmicrohttpd's socket context */
	int fd;
	uint64_t t0_ms; /* the request being received began (or the connection's last answer ended) */
	int busy;       /* a request of it is admitted or answered: no arrival deadline */
	int cut;        /* shut down for missing the deadline */
	struct http_conn *prev, *next;
};

struct http_req {
	struct proxy *p;
	struct MHD_Connection *conn;
	struct http_conn *hc;
	enum http_route route;
	enum oai_api api;
	uint8_t *body;
	size_t body_len, body_cap;
	int too_large;
	int key;        /* API key index, -1: none */
	int ci;         /* client slot once admitted, -1 */
	int admitted;   /* waiting for its first output or error (suspended until then) */
	int suspended;
	int queued;     /* a response is queued with libmicrohttpd */
	int gone;       /* the client hung up: the next callback ends the connection */
	int ended;      /* nothing more will be added: end of stream once out */
	/* a status decided after admission but before the response was queued */
	unsigned err_status;
	char *err_body;
	size_t err_len;
	const char *err_ctype;
	uint32_t err_retry;
	/* the proxy's own bytes in a body under way (an error event, a content_filter end) */
	char ctl[HTTP_CTL_MAX];
	size_t ctl_len, ctl_off;
	int mid; /* 1: ctl partly out, 2: an egress piece partly out */
	/* the response */
	char id[24];
	char model[MU_WIRE_MAX_MODEL_NAME + 1];
	struct oai_resp resp;
	int stream;
	int first;        /* the next text piece is the first */
	int head_sent;    /* stream false: the head is out, text follows as it comes */
	int stop_flushed; /* stream false: the held stop bytes were taken at the end */
	uint64_t prepaid; /* stream false: bytes of the whole body charged at once, not yet sent */
	struct oai_stop stop;
};

struct proxy_http {
	struct MHD_Daemon *d;
	int epfd;
	uint64_t serial;
	struct http_conn *conns;
	uint32_t n_conns;
	void *parse_mem;
	size_t parse_mem_len;
	char *scratch;
	uint8_t stop_out[MU_WIRE_MAX_TOKEN_TEXT + OAI_MAX_STOP_BYTES];
	int stopping;
	int resumed;  /* a connection was resumed: libmicrohttpd must run before the next poll */
	int activity; /* a callback ran: the egress path may have work (proxy_http_run returns it) */
	char addr[PAL_NET_ADDR_MAX];
};

static inline uint64_t http_today(void) { return mu_ledger_day(proxy_wall_ms() / 1000u); }

/* proxy_http_out.c */
/* OpenAI's names for what the proxy refuses or fails with, and the HTTP status. */
void http_code_error(struct oai_error *e, enum mu_wire_code code, const char *message);
/* Seconds a client should wait before asking again, 0 when waiting will not help. */
uint32_t http_retry_after(struct proxy *p, enum mu_wire_code code, int key);
const char *http_body_ctype(const struct http_req *r);
/* libmicrohttpd's content reader of an admitted request's 200 response. */
ssize_t http_reader(void *cls, uint64_t pos, char *buf, size_t max);

#endif
