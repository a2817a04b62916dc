/* oai.h — the bodies of the HTTP API (docs/http.md): OpenAI-shaped chat and text completions,
 * Ollama's /api/generate, and their error objects. Requests are parsed with the strict JSON
 * parser into the wire protocol's generate message; responses are written into caller buffers
 * piece by piece, so that the proxy can charge and meter every piece before it leaves.
 *
 * Pure functions: no I/O, no allocation, no clock (times are passed in). Every writer returns
 * the bytes written (no NUL counted; the buffer always gets a NUL when there is room for it) or
 * 0 when the output does not fit in cap or an argument is invalid.
 *
 * Text written into JSON strings is escaped: '"' and '\\' with a backslash, \n \r \t \b \f by
 * name, other bytes below 0x20 and 0x7f as \u00XX; the rest (valid UTF-8) is copied. Text that
 * is not valid UTF-8 is refused (0), never written.
 */
#ifndef MU_HOST_OAI_H
#define MU_HOST_OAI_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/limits.h"
#include "wire/proto.h"

enum oai_api {
	OAI_CHAT = 0,        /* POST /v1/chat/completions */
	OAI_COMPLETIONS = 1, /* POST /v1/completions */
	OAI_OLLAMA = 2,      /* POST /api/generate */
};

#define OAI_MAX_STOP 4        /* stop sequences in one request (OpenAI's limit) */
#define OAI_MAX_STOP_BYTES 64 /* bytes of one stop sequence */
#define OAI_MAX_BODY ((size_t)1 << 20) /* request body bytes (larger: 413) */

/* An error for the client: HTTP status and OpenAI's error object members. */
struct oai_error {
	int status;        /* 400, 404, ... */
	const char *type;  /* "invalid_request_error", ... (a string literal) */
	const char *code;  /* "invalid_value", "missing_required_parameter", ... or NULL (JSON null) */
	char param[64];    /* the member at fault, e.g. "messages[2].role"; "" = null */
	char message[256]; /* printable ASCII; never contains request text (prompts, stop strings) */
};

struct oai_request {
	enum oai_api api;
	char model[MU_WIRE_MAX_MODEL_NAME + 1]; /* as sent: 1..64 bytes of printable ASCII */
	/* type MU_MSG_GENERATE with exactly one of prompt / messages, max_tokens, temperature,
	 * top_p, seed and stream set; id is left empty ("") for the caller. Strings point into the
	 * body or the scratch memory, which must outlive the request. */
	struct mu_msg gen;
	int stream;        /* as gen.generate.stream */
	int include_usage; /* stream_options.include_usage (OpenAI, stream only) */
	uint32_t n_stop;
	uint8_t stop[OAI_MAX_STOP][OAI_MAX_STOP_BYTES];
	uint8_t stop_len[OAI_MAX_STOP]; /* 1..OAI_MAX_STOP_BYTES, valid UTF-8 */
};

/* Scratch oai_parse_request needs for a body of len bytes (at most OAI_MAX_BODY). */
size_t oai_mem_size(size_t len);

/* Parses one request body for api. default_max_tokens (1..MU_WIRE_MAX_GEN_TOKENS) applies when
 * the body names no max_tokens. Returns 0 and fills r, or -1 and fills e (status 400 with
 * type "invalid_request_error", param naming the member).
 *
 * Accepted members (anything else is refused with code "unknown_parameter"):
 *   OAI_CHAT:        model (string, required), messages (required: 1..MU_WIRE_MAX_MESSAGES of
 *                    {role: "system"|"developer"|"user"|"assistant", content: string or an
 *                    array of {type:"text", text:string} parts, joined; name: string, ignored}),
 *                    max_tokens | max_completion_tokens (integer 1..MU_WIRE_MAX_GEN_TOKENS;
 *                    null = absent), temperature (number 0..2, default 1; null = default),
 *                    top_p (number in (0, 1], default 1), seed (integer 0..2^53-1, default 0),
 *                    stop (string or array of 1..4 strings of 1..64 bytes; null = none),
 *                    stream (bool, default false), stream_options ({include_usage: bool},
 *                    only with stream true), n (only 1), user (string, ignored),
 *                    presence_penalty / frequency_penalty (only 0), logprobs (only false).
 *                    "developer" is sent as "system".
 *   OAI_COMPLETIONS: model, prompt (string, or an array of exactly one string), max_tokens
 *                    (default as above), temperature, top_p, seed, stop, stream,
 *                    stream_options, n, user, presence_penalty, frequency_penalty, echo (only
 *                    false), logprobs (only null), suffix (only null).
 *   OAI_OLLAMA:      model, prompt (string), stream (bool, default TRUE), options ({
 *                    temperature 0..2 (default 0.8), top_p, top_k (integer 0..MU_MAX_VOCAB),
 *                    seed, num_predict (integer 1..MU_WIRE_MAX_GEN_TOKENS; -1 = default), stop
 *                    (array of strings)}), system (string: sent as a chat with a system
 *                    message and the prompt as the user message), raw (bool, ignored),
 *                    keep_alive (ignored).
 * Empty strings are allowed as content and prompt. The parsed generate must re-encode with
 * mu_msg_generate and decode back equal (the caller relies on that). */
int oai_parse_request(struct oai_request *r, enum oai_api api, const uint8_t *body, size_t len,
		      int64_t default_max_tokens, void *mem, size_t mem_len, struct oai_error *e);

/* What a response is about; id is the proxy's request id (e.g. "h42"), created the Unix time
 * of the request. The OpenAI ids are "chatcmpl-" / "cmpl-" followed by id. */
struct oai_resp {
	enum oai_api api;
	const char *id;
	const char *model;
	int64_t created;     /* Unix seconds */
	int64_t created_ms;  /* for Ollama's created_at (RFC 3339 UTC with milliseconds) */
	int include_usage;
};

/* finish: "stop", "length" or "content_filter". */
struct oai_usage {
	int64_t prompt_tokens, completion_tokens;
	int64_t total_ns; /* Ollama: total_duration and eval_duration */
};

/* ---- streaming (stream true) ----
 * OpenAI: Server-Sent Events, each "data: <json>\n\n"; Ollama: NDJSON, each "<json>\n". */

/* One piece of text: a chat.completion.chunk with delta {content} (first: delta also has
 * "role":"assistant"), a text_completion chunk with text, or an Ollama line with
 * "done":false. */
size_t oai_stream_text(char *buf, size_t cap, const struct oai_resp *x, int first, const void *text, size_t n);
/* The end: OpenAI: the chunk with an empty delta (chat) or "" text and finish_reason, then
 * (include_usage) a chunk with "choices":[] and usage, then "data: [DONE]\n\n". Ollama: the
 * line with "response":"", "done":true, done_reason, the counts and durations. */
size_t oai_stream_end(char *buf, size_t cap, const struct oai_resp *x, const char *finish,
		      const struct oai_usage *u);
/* An error after the stream began: OpenAI "data: {"error":{...}}\n\n" (no [DONE] follows);
 * Ollama {"error":"message"}\n. */
size_t oai_stream_error(char *buf, size_t cap, const struct oai_resp *x, const struct oai_error *e);

/* ---- whole responses (stream false), written as head + escaped text + tail ---- */

/* Everything up to and including the opening quote of the text: chat.completion up to
 * "content":" , text_completion up to "text":" , Ollama up to "response":" . */
size_t oai_whole_head(char *buf, size_t cap, const struct oai_resp *x);
/* The rest after the text's closing position: the closing quote, finish_reason, usage (OpenAI:
 * prompt_tokens, completion_tokens, total_tokens; Ollama: done true, done_reason, counts and
 * durations), the closing braces and a final "\n". */
size_t oai_whole_tail(char *buf, size_t cap, const struct oai_resp *x, const char *finish,
		      const struct oai_usage *u);
/* JSON-escapes whole characters of text[0..n) into buf while they fit; *used gets the input
 * bytes consumed (stops before a character whose escape does not fit). Returns bytes written;
 * 0 with *used 0 for invalid UTF-8 at the start or no room for one character. */
size_t oai_escape(char *buf, size_t cap, const void *text, size_t n, size_t *used);

/* ---- other bodies ---- */

/* {"error":{"message","type","param","code"}}\n ; Ollama (api OAI_OLLAMA): {"error":"message"}\n */
size_t oai_error_body(char *buf, size_t cap, enum oai_api api, const struct oai_error *e);
/* GET /v1/models: {"object":"list","data":[{"id":model,"object":"model","created":created,
 * "owned_by":"mu"}]}\n ; model NULL: an empty list. */
size_t oai_models(char *buf, size_t cap, const char *model, int64_t created);

/* Fills e (message formatted like printf, truncated to fit). */
void oai_error_set(struct oai_error *e, int status, const char *type, const char *code, const char *param,
		   const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* ---- stop sequences, matched on the released text stream ----
 * Bytes that could still be the start of a stop sequence are held back; once a stop sequence
 * is complete, the text before it is released and everything from it on is dropped. Stop
 * sequences are valid UTF-8, so held bytes always begin on a character boundary. */
struct oai_stop {
	uint32_t n;
	uint8_t s[OAI_MAX_STOP][OAI_MAX_STOP_BYTES];
	uint8_t len[OAI_MAX_STOP];
	uint8_t held[OAI_MAX_STOP_BYTES];
	size_t n_held;
	int matched; /* a stop sequence was found: push releases nothing more */
};
void oai_stop_init(struct oai_stop *s, const struct oai_request *r);
/* Feeds n bytes; writes to out the bytes that can no longer be part of a stop sequence and
 * returns how many (out needs n + OAI_MAX_STOP_BYTES bytes). Sets s->matched when a stop
 * sequence completed (out then ends just before it). */
size_t oai_stop_push(struct oai_stop *s, const void *in, size_t n, uint8_t *out);
/* End of the text: releases the held bytes (none once matched). out: OAI_MAX_STOP_BYTES. */
size_t oai_stop_flush(struct oai_stop *s, uint8_t *out);

#endif
