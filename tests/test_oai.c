/* test_oai.c — the HTTP API's bodies (src/host/oai_parse.c, oai_write.c).
 *
 * - Requests: every accepted member of each API with its value checked, the defaults, and
 *   beside each a refusal (wrong JSON type, out of range, unknown member, missing member, too
 *   many, too long) with its status, code and param; no error message or param carries text
 *   of the request (every refused body hides the word SECRET in its texts). Every accepted
 *   request is re-encoded with mu_msg_generate (with a 64-byte id), decoded and compared.
 * - Writers: each output parsed back with the strict JSON parser and its members checked;
 *   escaping byte for byte; every cap from 0 to the needed size (0 below it, never a byte
 *   past cap); invalid arguments.
 * - created_at against gmtime_r; oai_escape's partial fits.
 * - Stop sequences: hand cases, then a seeded random comparison with a reference (the first
 *   stop sequence to complete wins; on a tie, the one that starts first), for random splits.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/limits.h"
#include "host/oai.h"
#include "test.h"
#include "wire/json.h"
#include "wire/proto.h"

static uint8_t *MEM;
static size_t MEM_LEN;
static struct oai_request R;
static struct oai_error E;
static uint8_t *BODY; /* the last body parsed: R's strings may point into it */
static char *ENC;
static uint8_t *DEC_MEM;
static size_t DEC_LEN;

#define DEFAULT_MAX 256

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint32_t rnd(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return n ? (uint32_t)(rng_state % n) : 0;
}

static int parse_n(enum oai_api api, const void *body, size_t len)
{
	free(BODY);
	BODY = malloc(len ? len : 1); /* exactly sized, so ASan sees a read past the end */
	memcpy(BODY, body, len);
	return oai_parse_request(&R, api, BODY, len, DEFAULT_MAX, MEM, MEM_LEN, &E);
}

static int parse(enum oai_api api, const char *body) { return parse_n(api, body, strlen(body)); }

/* The generate must carry no id, encode with one and decode back equal. */
static void roundtrip(int line)
{
	struct mu_msg m = R.gen, b;
	struct mu_error err;
	CHECK(m.type == MU_MSG_GENERATE && !m.has_id && m.id[0] == '\0', "line %d: type/id", line);
	CHECK(R.stream == m.generate.stream, "line %d: stream %d vs %d", line, R.stream, m.generate.stream);
	memset(m.id, 'i', MU_WIRE_MAX_ID);
	m.id[MU_WIRE_MAX_ID] = '\0';
	m.has_id = 1;
	size_t n = mu_msg_generate(ENC, MU_WIRE_MAX_FRAME + 1, &m);
	CHECK(n > 0 && n <= MU_WIRE_MAX_FRAME, "line %d: encoded %zu bytes", line, n);
	if (n == 0 || n > MU_WIRE_MAX_FRAME)
		return;
	enum mu_wire_code c = mu_msg_decode(&b, (const uint8_t *)ENC, n, DEC_MEM, DEC_LEN, &err);
	CHECK(c == MU_WIRE_OK, "line %d: decode %s: %s", line, mu_wire_code_name(c), err.msg);
	CHECK(c == MU_WIRE_OK && mu_msg_equal(&m, &b), "line %d: round trip differs", line);
}

static int ok_(int line, enum oai_api api, const char *body)
{
	int rc = parse(api, body);
	CHECK(rc == 0, "line %d: refused %d %s param=%s: %s", line, E.status, E.code ? E.code : "null", E.param,
	      E.message);
	if (rc == 0) {
		CHECK(R.api == api, "line %d: api", line);
		roundtrip(line);
	}
	return rc == 0;
}
#define OK(api, body) ok_(__LINE__, api, body)

static int printable_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return 0;
	return 1;
}

static void refused_(int line, int rc, int status, const char *code, const char *param)
{
	static const struct oai_request zero;
	CHECK(rc == -1, "line %d: accepted", line);
	if (rc != -1)
		return;
	CHECK(E.status == status, "line %d: status %d, want %d (%s)", line, E.status, status, E.message);
	CHECK(code ? E.code && !strcmp(E.code, code) : E.code == NULL, "line %d: code %s, want %s (%s)", line,
	      E.code ? E.code : "null", code ? code : "null", E.message);
	CHECK(!strcmp(E.param, param), "line %d: param '%s', want '%s' (%s)", line, E.param, param, E.message);
	CHECK(E.type && !strcmp(E.type, status >= 500 ? "server_error" : "invalid_request_error"), "line %d: type",
	      line);
	CHECK(E.message[0] && printable_ascii(E.message) && printable_ascii(E.param), "line %d: message '%s'", line,
	      E.message);
	CHECK(!strstr(E.message, "SECRET") && !strstr(E.param, "SECRET"), "line %d: request text in '%s' / '%s'",
	      line, E.message, E.param);
	CHECK(!memcmp(&R, &zero, sizeof R), "line %d: request not cleared", line);
}
#define BAD(api, body, status, code, param) refused_(__LINE__, parse(api, body), status, code, param)

static int text_is(struct mu_wire_text t, const char *s) { return t.n == strlen(s) && !memcmp(t.p, s, t.n); }

static int dbl_is(double a, double b) { return !memcmp(&a, &b, sizeof a); }

#define CHAT_HEAD "{\"model\":\"SECRET-model\",\"messages\":[{\"role\":\"user\",\"content\":\"SECRET\"}]"
#define COMP_HEAD "{\"model\":\"SECRET-model\",\"prompt\":\"SECRET\""
#define OLL_HEAD "{\"model\":\"SECRET-model\",\"prompt\":\"SECRET\""

/* ---- chat ---- */

static void test_chat_accept(void)
{
	const struct mu_msg *g = &R.gen;
	if (OK(OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}")) {
		CHECK(!strcmp(R.model, "m"), "model");
		CHECK(!g->generate.has_prompt && g->generate.n_messages == 1, "one message");
		CHECK(g->generate.role[0] == MU_WIRE_ROLE_USER && text_is(g->generate.content[0], "hi"), "message");
		CHECK_EQ_INT(g->generate.max_tokens, DEFAULT_MAX);
		CHECK(dbl_is(g->generate.temperature, 1.0) && dbl_is(g->generate.top_p, 1.0), "defaults");
		CHECK(g->generate.top_k == 0 && g->generate.seed == 0, "top_k, seed");
		CHECK(R.stream == 0 && g->generate.stream == 0 && R.include_usage == 0 && R.n_stop == 0, "stream");
	}
	if (OK(OAI_CHAT, "{\"model\":\"llama-3.2-1b\",\"messages\":["
			 "{\"role\":\"system\",\"content\":\"be brief\"},"
			 "{\"role\":\"developer\",\"content\":\"dev\",\"name\":\"d\"},"
			 "{\"role\":\"user\",\"content\":\"q\",\"name\":\"alice\"},"
			 "{\"role\":\"assistant\",\"content\":\"a\",\"name\":null}],"
			 "\"max_tokens\":100,\"temperature\":0.5,\"top_p\":0.9,\"seed\":42,\"stop\":\"END\","
			 "\"stream\":true,\"stream_options\":{\"include_usage\":true},\"n\":1,\"user\":\"u1\","
			 "\"presence_penalty\":0,\"frequency_penalty\":0.0,\"logprobs\":false}")) {
		CHECK(!strcmp(R.model, "llama-3.2-1b"), "model");
		CHECK_EQ_INT(g->generate.n_messages, 4);
		CHECK(g->generate.role[0] == MU_WIRE_ROLE_SYSTEM && g->generate.role[1] == MU_WIRE_ROLE_SYSTEM &&
			      g->generate.role[2] == MU_WIRE_ROLE_USER && g->generate.role[3] == MU_WIRE_ROLE_ASSISTANT,
		      "roles (developer is system)");
		CHECK(text_is(g->generate.content[1], "dev") && text_is(g->generate.content[3], "a"), "contents");
		CHECK_EQ_INT(g->generate.max_tokens, 100);
		CHECK(dbl_is(g->generate.temperature, 0.5) && dbl_is(g->generate.top_p, 0.9), "numbers");
		CHECK(g->generate.seed == 42, "seed");
		CHECK(R.n_stop == 1 && R.stop_len[0] == 3 && !memcmp(R.stop[0], "END", 3), "stop");
		CHECK(R.stream == 1 && R.include_usage == 1 && g->generate.stream == 1, "stream");
	}
	/* nulls are "not given" */
	if (OK(OAI_CHAT, CHAT_HEAD ",\"max_tokens\":null,\"temperature\":null,\"top_p\":null,\"seed\":null,"
			 "\"stop\":null,\"stream\":null,\"stream_options\":null,\"n\":null,\"user\":null,"
			 "\"presence_penalty\":null,\"frequency_penalty\":null,\"logprobs\":null,"
			 "\"max_completion_tokens\":null}")) {
		CHECK_EQ_INT(g->generate.max_tokens, DEFAULT_MAX);
		CHECK(dbl_is(g->generate.temperature, 1.0) && dbl_is(g->generate.top_p, 1.0), "defaults");
		CHECK(R.n_stop == 0 && R.stream == 0, "null stop, stream");
	}
	if (OK(OAI_CHAT, CHAT_HEAD ",\"stream\":false,\"stream_options\":null}"))
		CHECK(R.stream == 0 && R.include_usage == 0, "stream_options null with stream false");
	if (OK(OAI_CHAT, CHAT_HEAD ",\"stream\":true,\"stream_options\":{}}"))
		CHECK(R.stream == 1 && R.include_usage == 0, "empty stream_options");
	if (OK(OAI_CHAT, CHAT_HEAD ",\"stream\":true,\"stream_options\":{\"include_usage\":false}}"))
		CHECK(R.include_usage == 0, "include_usage false");
	if (OK(OAI_CHAT, CHAT_HEAD ",\"max_completion_tokens\":7}"))
		CHECK_EQ_INT(g->generate.max_tokens, 7);
	if (OK(OAI_CHAT, CHAT_HEAD ",\"max_tokens\":9,\"max_completion_tokens\":9}"))
		CHECK_EQ_INT(g->generate.max_tokens, 9);
	if (OK(OAI_CHAT, CHAT_HEAD ",\"max_tokens\":1.0e0}"))
		CHECK_EQ_INT(g->generate.max_tokens, 1);
	if (OK(OAI_CHAT, CHAT_HEAD ",\"max_tokens\":65536}"))
		CHECK_EQ_INT(g->generate.max_tokens, 65536);
	if (OK(OAI_CHAT, CHAT_HEAD ",\"temperature\":0}"))
		CHECK(dbl_is(g->generate.temperature, 0.0), "temperature 0");
	if (OK(OAI_CHAT, CHAT_HEAD ",\"temperature\":-0}"))
		CHECK(dbl_is(g->generate.temperature, 0.0), "temperature -0 is +0");
	if (OK(OAI_CHAT, CHAT_HEAD ",\"temperature\":2}"))
		CHECK(dbl_is(g->generate.temperature, 2.0), "temperature 2");
	if (OK(OAI_CHAT, CHAT_HEAD ",\"temperature\":0.7000000000000001}"))
		CHECK(dbl_is(g->generate.temperature, 0.7000000000000001), "temperature 17 digits");
	if (OK(OAI_CHAT, CHAT_HEAD ",\"temperature\":1e-22}"))
		CHECK(dbl_is(g->generate.temperature, 1e-22), "tiny temperature");
	if (OK(OAI_CHAT, CHAT_HEAD ",\"top_p\":1}"))
		CHECK(dbl_is(g->generate.top_p, 1.0), "top_p 1");
	if (OK(OAI_CHAT, CHAT_HEAD ",\"top_p\":0.00001}"))
		CHECK(dbl_is(g->generate.top_p, 0.00001), "top_p small");
	if (OK(OAI_CHAT, CHAT_HEAD ",\"seed\":9007199254740991}"))
		CHECK(g->generate.seed == 9007199254740991u, "seed max");
	if (OK(OAI_CHAT, CHAT_HEAD ",\"seed\":0}"))
		CHECK(g->generate.seed == 0, "seed 0");
	if (OK(OAI_CHAT, CHAT_HEAD ",\"n\":1.0}"))
		CHECK(R.n_stop == 0, "n 1.0");
	OK(OAI_CHAT, CHAT_HEAD ",\"presence_penalty\":-0.0,\"frequency_penalty\":0e5}");
	/* stop sequences */
	if (OK(OAI_CHAT, CHAT_HEAD ",\"stop\":[\"a\",\"\\u00e9t\\u00e9\",\"\\n\\nUser:\","
			 "\"0123456789012345678901234567890123456789012345678901234567890123\"]}")) {
		CHECK_EQ_INT(R.n_stop, 4);
		CHECK(R.stop_len[0] == 1 && R.stop[0][0] == 'a', "stop 0");
		CHECK(R.stop_len[1] == 5 && !memcmp(R.stop[1], "\xc3\xa9t\xc3\xa9", 5), "stop 1 (multi-byte)");
		CHECK(R.stop_len[2] == 7 && !memcmp(R.stop[2], "\n\nUser:", 7), "stop 2 (escapes)");
		CHECK(R.stop_len[3] == 64, "stop 3 (64 bytes)");
	}
	if (OK(OAI_CHAT, CHAT_HEAD ",\"stop\":[\"x\"]}"))
		CHECK(R.n_stop == 1 && R.stop_len[0] == 1, "one stop in an array");
	/* content parts, escapes, empty texts */
	if (OK(OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
			 "\"text\":\"ab\"},{\"text\":\"\\u00e9\\n\",\"type\":\"text\"},{\"type\":\"text\",\"text\":\"\"},"
			 "{\"type\":\"text\",\"text\":\"z\"}]},{\"role\":\"user\",\"content\":[]},"
			 "{\"role\":\"assistant\",\"content\":\"\"}]}")) {
		CHECK(text_is(g->generate.content[0], "ab\xc3\xa9\nz"), "joined parts");
		CHECK(text_is(g->generate.content[1], ""), "empty parts array");
		CHECK(text_is(g->generate.content[2], ""), "empty content");
	}
	if (OK(OAI_CHAT, "{\"model\":\"\\u0041b\",\"messages\":[{\"role\":\"\\u0075ser\",\"content\":"
			 "\"q\\\"\\\\\\/\\b\\f\\r\\t\\u0001\\u001f\\u007f\\ud83d\\ude00\xe2\x82\xac\"}]}")) {
		CHECK(!strcmp(R.model, "Ab"), "escaped model");
		CHECK(g->generate.role[0] == MU_WIRE_ROLE_USER, "escaped role");
		CHECK(text_is(g->generate.content[0], "q\"\\/\b\f\r\t\x01\x1f\x7f\xf0\x9f\x98\x80\xe2\x82\xac"),
		      "escaped content");
	}
	if (OK(OAI_CHAT, "{\"model\":\"0123456789012345678901234567890123456789012345678901234567890123\","
			 "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"))
		CHECK(strlen(R.model) == 64, "64-byte model");
	if (OK(OAI_CHAT, "{\"model\":\" ~!\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"))
		CHECK(!strcmp(R.model, " ~!"), "printable model");
	/* whitespace around the body */
	OK(OAI_CHAT, " \r\n\t{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]} \n");
}

static char *chat_with_messages(unsigned n)
{
	size_t cap = 64 + 48 * (size_t)n;
	char *b = malloc(cap);
	size_t o = (size_t)snprintf(b, cap, "{\"model\":\"m\",\"messages\":[");
	for (unsigned i = 0; i < n; i++)
		o += (size_t)snprintf(b + o, cap - o, "%s{\"role\":\"%s\",\"content\":\"m%u\"}", i ? "," : "",
				      i % 2 ? "assistant" : "user", i);
	snprintf(b + o, cap - o, "]}");
	return b;
}

static void test_chat_refuse(void)
{
	/* JSON and the body's shape */
	BAD(OAI_CHAT, "", 400, NULL, "");
	BAD(OAI_CHAT, "{", 400, NULL, "");
	BAD(OAI_CHAT, CHAT_HEAD "} x", 400, NULL, "");
	BAD(OAI_CHAT, CHAT_HEAD "}}", 400, NULL, "");
	BAD(OAI_CHAT, CHAT_HEAD ",}", 400, NULL, "");
	BAD(OAI_CHAT, CHAT_HEAD ",\"model\":\"SECRET2\"}", 400, NULL, "");
	BAD(OAI_CHAT, CHAT_HEAD ",\"stop\":\"SECRET\",\"st\\u006fp\":\"SECRET\"}", 400, NULL, "");
	BAD(OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"SECRET\xff\"}]}", 400, NULL, "");
	BAD(OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"SECRET\xc0\xaf\"}]}", 400, NULL,
	    "");
	BAD(OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"SECRET\\ud800\"}]}", 400, NULL,
	    "");
	BAD(OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"SECRET\n\"}]}", 400, NULL, "");
	BAD(OAI_CHAT, "\xef\xbb\xbf" CHAT_HEAD "}", 400, NULL, "");
	BAD(OAI_CHAT, CHAT_HEAD ",\"temperature\":01}", 400, NULL, "");
	BAD(OAI_CHAT, CHAT_HEAD ",\"deep\":[[[[[[[1]]]]]]]}", 400, NULL, "");
	BAD(OAI_CHAT, "[" CHAT_HEAD "}]", 400, "invalid_type", "");
	BAD(OAI_CHAT, "\"SECRET\"", 400, "invalid_type", "");
	BAD(OAI_CHAT, "null", 400, "invalid_type", "");
	/* unknown members */
	BAD(OAI_CHAT, CHAT_HEAD ",\"tools\":[]}", 400, "unknown_parameter", "tools");
	BAD(OAI_CHAT, CHAT_HEAD ",\"max_tokenz\":1}", 400, "unknown_parameter", "max_tokenz");
	BAD(OAI_CHAT, CHAT_HEAD ",\"echo\":false}", 400, "unknown_parameter", "echo");
	BAD(OAI_CHAT, CHAT_HEAD ",\"prompt\":\"SECRET\"}", 400, "unknown_parameter", "prompt");
	BAD(OAI_CHAT, CHAT_HEAD ",\"top_k\":1}", 400, "unknown_parameter", "top_k");
	BAD(OAI_CHAT, CHAT_HEAD ",\"a234567890123456789012345678901234567890\":1}", 400, "unknown_parameter",
	    "a234567890123456789012345678901234567890");
	BAD(OAI_CHAT, CHAT_HEAD ",\"SECRET67890123456789012345678901234567890\":1}", 400, "unknown_parameter", "");
	BAD(OAI_CHAT, CHAT_HEAD ",\"SECRET\\u00e9\":1}", 400, "unknown_parameter", "");
	BAD(OAI_CHAT, CHAT_HEAD ",\"SECRET\\n\":1}", 400, "unknown_parameter", "");
	BAD(OAI_CHAT, CHAT_HEAD ",\"SECRET\\u0000\":1}", 400, "unknown_parameter", "");
	BAD(OAI_CHAT, CHAT_HEAD ",\"\":1}", 400, "unknown_parameter", "");
	BAD(OAI_CHAT, "{\"tools\":1,\"model\":5}", 400, "unknown_parameter", "tools"); /* unknown comes first */
	BAD(OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"tool_calls\":[]}]}", 400,
	    "unknown_parameter", "messages[0].tool_calls");
	BAD(OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"user\","
		      "\"content\":[{\"type\":\"text\",\"text\":\"x\",\"cache\":1}]}]}",
	    400, "unknown_parameter", "messages[1].content[0].cache");
	BAD(OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"SECRET\\u00ff\":1}]}", 400,
	    "unknown_parameter", "messages[0]");
	BAD(OAI_CHAT, CHAT_HEAD ",\"stream\":true,\"stream_options\":{\"include_obfuscation\":true}}", 400,
	    "unknown_parameter", "stream_options.include_obfuscation");
	/* model */
	BAD(OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"SECRET\"}]}", 400, "missing_required_parameter",
	    "model");
	BAD(OAI_CHAT, "{\"model\":null,\"messages\":[{\"role\":\"user\",\"content\":\"SECRET\"}]}", 400,
	    "missing_required_parameter", "model");
	BAD(OAI_CHAT, "{\"model\":5,\"messages\":[{\"role\":\"user\",\"content\":\"SECRET\"}]}", 400, "invalid_type",
	    "model");
	BAD(OAI_CHAT, "{\"model\":[\"SECRET\"],\"messages\":[]}", 400, "invalid_type", "model");
	BAD(OAI_CHAT, "{\"model\":\"\",\"messages\":[{\"role\":\"user\",\"content\":\"SECRET\"}]}", 400,
	    "invalid_value", "model");
	BAD(OAI_CHAT, "{\"model\":\"SECRET6789012345678901234567890123456789012345678901234567890123X\","
		      "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
	    400, "invalid_value", "model");
	BAD(OAI_CHAT, "{\"model\":\"SECRET\\n\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 400,
	    "invalid_value", "model");
	BAD(OAI_CHAT, "{\"model\":\"SECRET\\u007f\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 400,
	    "invalid_value", "model");
	BAD(OAI_CHAT, "{\"model\":\"SECRET\xc3\xa9\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 400,
	    "invalid_value", "model");
	BAD(OAI_CHAT, "{\"model\":\"SECRET\\u0000\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 400,
	    "invalid_value", "model");
	/* messages */
	BAD(OAI_CHAT, "{\"model\":\"SECRET\"}", 400, "missing_required_parameter", "messages");
	BAD(OAI_CHAT, "{\"model\":\"SECRET\",\"messages\":null}", 400, "missing_required_parameter", "messages");
	BAD(OAI_CHAT, "{\"model\":\"m\",\"messages\":\"SECRET\"}", 400, "invalid_type", "messages");
	BAD(OAI_CHAT, "{\"model\":\"m\",\"messages\":{\"role\":\"user\",\"content\":\"SECRET\"}}", 400, "invalid_type",
	    "messages");
	BAD(OAI_CHAT, "{\"model\":\"m\",\"messages\":[]}", 400, "invalid_value", "messages");
	BAD(OAI_CHAT, "{\"model\":\"m\",\"messages\":[\"SECRET\"]}", 400, "invalid_type", "messages[0]");
	BAD(OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"},null]}", 400, "invalid_type",
	    "messages[1]");
	BAD(OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"content\":\"SECRET\"}]}", 400, "missing_required_parameter",
	    "messages[0].role");
	BAD(OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":1,\"content\":\"SECRET\"}]}", 400, "invalid_type",
	    "messages[0].role");
	BAD(OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"tool\",\"content\":\"SECRET\"}]}", 400,
	    "invalid_value", "messages[0].role");
	BAD(OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"SECRET\",\"content\":\"SECRET\"}]}", 400,
	    "invalid_value", "messages[0].role");
	BAD(OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"User\",\"content\":\"SECRET\"}]}", 400,
	    "invalid_value", "messages[0].role");
	BAD(OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\"}]}", 400, "missing_required_parameter",
	    "messages[0].content");
	BAD(OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"content\":null}]}", 400,
	    "missing_required_parameter", "messages[0].content");
	BAD(OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":5}]}", 400, "invalid_type",
	    "messages[0].content");
	BAD(OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":{\"text\":\"SECRET\"}}]}", 400,
	    "invalid_type", "messages[0].content");
	BAD(OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"SECRET\\u0000\"}]}", 400,
	    "invalid_value", "messages[0].content");
	BAD(OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[\"SECRET\"]}]}", 400,
	    "invalid_type", "messages[0].content[0]");
	BAD(OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
		      "{\"type\":\"image_url\",\"image_url\":{\"url\":\"SECRET\"}}]}]}",
	    400, "unknown_parameter", "messages[0].content[1].image_url");
	BAD(OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}", 400,
	    "invalid_value", "messages[0].content[0].type");
	BAD(OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"SECRET\"}]}]}", 400,
	    "missing_required_parameter", "messages[0].content[0].type");
	BAD(OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":1,\"text\":\"SECRET\"}]}]}",
	    400, "invalid_type", "messages[0].content[0].type");
	BAD(OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\"}]}]}", 400,
	    "missing_required_parameter", "messages[0].content[0].text");
	BAD(OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":7}]}]}",
	    400, "invalid_type", "messages[0].content[0].text");
	BAD(OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
		      "{\"type\":\"text\",\"text\":\"SECRET\\u0000\"}]}]}",
	    400, "invalid_value", "messages[0].content[1].text");
	BAD(OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"SECRET\",\"name\":5}]}", 400,
	    "invalid_type", "messages[0].name");
	/* numbers */
	BAD(OAI_CHAT, CHAT_HEAD ",\"max_tokens\":0}", 400, "invalid_value", "max_tokens");
	BAD(OAI_CHAT, CHAT_HEAD ",\"max_tokens\":-5}", 400, "invalid_value", "max_tokens");
	BAD(OAI_CHAT, CHAT_HEAD ",\"max_tokens\":65537}", 400, "invalid_value", "max_tokens");
	BAD(OAI_CHAT, CHAT_HEAD ",\"max_tokens\":1.5}", 400, "invalid_value", "max_tokens");
	BAD(OAI_CHAT, CHAT_HEAD ",\"max_tokens\":1e400}", 400, "invalid_value", "max_tokens");
	BAD(OAI_CHAT, CHAT_HEAD ",\"max_tokens\":\"10\"}", 400, "invalid_type", "max_tokens");
	BAD(OAI_CHAT, CHAT_HEAD ",\"max_tokens\":true}", 400, "invalid_type", "max_tokens");
	BAD(OAI_CHAT, CHAT_HEAD ",\"max_completion_tokens\":0}", 400, "invalid_value", "max_completion_tokens");
	BAD(OAI_CHAT, CHAT_HEAD ",\"max_completion_tokens\":[]}", 400, "invalid_type", "max_completion_tokens");
	BAD(OAI_CHAT, CHAT_HEAD ",\"max_tokens\":8,\"max_completion_tokens\":9}", 400, "invalid_value",
	    "max_completion_tokens");
	BAD(OAI_CHAT, CHAT_HEAD ",\"max_tokens\":0,\"max_completion_tokens\":9}", 400, "invalid_value", "max_tokens");
	BAD(OAI_CHAT, CHAT_HEAD ",\"temperature\":2.0000001}", 400, "invalid_value", "temperature");
	BAD(OAI_CHAT, CHAT_HEAD ",\"temperature\":-0.1}", 400, "invalid_value", "temperature");
	BAD(OAI_CHAT, CHAT_HEAD ",\"temperature\":1e-23}", 400, "invalid_value", "temperature");
	BAD(OAI_CHAT, CHAT_HEAD ",\"temperature\":0.12345678901234567890}", 400, "invalid_value", "temperature");
	BAD(OAI_CHAT, CHAT_HEAD ",\"temperature\":\"1\"}", 400, "invalid_type", "temperature");
	BAD(OAI_CHAT, CHAT_HEAD ",\"temperature\":false}", 400, "invalid_type", "temperature");
	BAD(OAI_CHAT, CHAT_HEAD ",\"top_p\":0}", 400, "invalid_value", "top_p");
	BAD(OAI_CHAT, CHAT_HEAD ",\"top_p\":-0}", 400, "invalid_value", "top_p");
	BAD(OAI_CHAT, CHAT_HEAD ",\"top_p\":1.01}", 400, "invalid_value", "top_p");
	BAD(OAI_CHAT, CHAT_HEAD ",\"top_p\":{}}", 400, "invalid_type", "top_p");
	BAD(OAI_CHAT, CHAT_HEAD ",\"seed\":9007199254740992}", 400, "invalid_value", "seed");
	BAD(OAI_CHAT, CHAT_HEAD ",\"seed\":-1}", 400, "invalid_value", "seed");
	BAD(OAI_CHAT, CHAT_HEAD ",\"seed\":0.5}", 400, "invalid_value", "seed");
	BAD(OAI_CHAT, CHAT_HEAD ",\"seed\":\"1\"}", 400, "invalid_type", "seed");
	BAD(OAI_CHAT, CHAT_HEAD ",\"n\":2}", 400, "invalid_value", "n");
	BAD(OAI_CHAT, CHAT_HEAD ",\"n\":0}", 400, "invalid_value", "n");
	BAD(OAI_CHAT, CHAT_HEAD ",\"n\":\"1\"}", 400, "invalid_type", "n");
	BAD(OAI_CHAT, CHAT_HEAD ",\"presence_penalty\":0.5}", 400, "invalid_value", "presence_penalty");
	BAD(OAI_CHAT, CHAT_HEAD ",\"frequency_penalty\":-1}", 400, "invalid_value", "frequency_penalty");
	BAD(OAI_CHAT, CHAT_HEAD ",\"frequency_penalty\":\"0\"}", 400, "invalid_type", "frequency_penalty");
	BAD(OAI_CHAT, CHAT_HEAD ",\"logprobs\":true}", 400, "invalid_value", "logprobs");
	BAD(OAI_CHAT, CHAT_HEAD ",\"logprobs\":0}", 400, "invalid_type", "logprobs");
	BAD(OAI_CHAT, CHAT_HEAD ",\"user\":5}", 400, "invalid_type", "user");
	/* stream */
	BAD(OAI_CHAT, CHAT_HEAD ",\"stream\":\"true\"}", 400, "invalid_type", "stream");
	BAD(OAI_CHAT, CHAT_HEAD ",\"stream\":1}", 400, "invalid_type", "stream");
	BAD(OAI_CHAT, CHAT_HEAD ",\"stream_options\":{\"include_usage\":true}}", 400, "invalid_value",
	    "stream_options");
	BAD(OAI_CHAT, CHAT_HEAD ",\"stream\":false,\"stream_options\":{\"include_usage\":true}}", 400,
	    "invalid_value", "stream_options");
	BAD(OAI_CHAT, CHAT_HEAD ",\"stream\":true,\"stream_options\":[]}", 400, "invalid_type", "stream_options");
	BAD(OAI_CHAT, CHAT_HEAD ",\"stream\":true,\"stream_options\":{\"include_usage\":\"yes\"}}", 400,
	    "invalid_type", "stream_options.include_usage");
	/* stop */
	BAD(OAI_CHAT, CHAT_HEAD ",\"stop\":\"\"}", 400, "invalid_value", "stop");
	BAD(OAI_CHAT, CHAT_HEAD ",\"stop\":[]}", 400, "invalid_value", "stop");
	BAD(OAI_CHAT, CHAT_HEAD ",\"stop\":[\"SECRET\",\"b\",\"c\",\"d\",\"e\"]}", 400, "invalid_value", "stop");
	BAD(OAI_CHAT, CHAT_HEAD ",\"stop\":[\"SECRET\",\"\"]}", 400, "invalid_value", "stop[1]");
	BAD(OAI_CHAT, CHAT_HEAD ",\"stop\":[\"SECRET\",\"SECRET789012345678901234567890123456789012345678901234567890"
				"12345\"]}",
	    400, "invalid_value", "stop[1]");
	BAD(OAI_CHAT, CHAT_HEAD ",\"stop\":\"SECRET7890123456789012345678901234567890123456789012345678901234\\u00e9\"}",
	    400, "invalid_value", "stop");
	BAD(OAI_CHAT, CHAT_HEAD ",\"stop\":[5]}", 400, "invalid_type", "stop[0]");
	BAD(OAI_CHAT, CHAT_HEAD ",\"stop\":[\"SECRET\",null]}", 400, "invalid_type", "stop[1]");
	BAD(OAI_CHAT, CHAT_HEAD ",\"stop\":5}", 400, "invalid_type", "stop");
	BAD(OAI_CHAT, CHAT_HEAD ",\"stop\":{\"a\":\"SECRET\"}}", 400, "invalid_type", "stop");
	/* counts */
	char *b = chat_with_messages(MU_WIRE_MAX_MESSAGES);
	if (OK(OAI_CHAT, b))
		CHECK(R.gen.generate.n_messages == MU_WIRE_MAX_MESSAGES &&
			      text_is(R.gen.generate.content[63], "m63") && R.gen.generate.role[63] == MU_WIRE_ROLE_ASSISTANT,
		      "64 messages");
	free(b);
	b = chat_with_messages(MU_WIRE_MAX_MESSAGES + 1);
	BAD(OAI_CHAT, b, 400, "invalid_value", "messages");
	free(b);
}

/* ---- completions ---- */

static void test_completions(void)
{
	const struct mu_msg *g = &R.gen;
	if (OK(OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"Once upon\"}")) {
		CHECK(g->generate.has_prompt && text_is(g->generate.prompt, "Once upon"), "prompt");
		CHECK(g->generate.n_messages == 0, "no messages");
		CHECK_EQ_INT(g->generate.max_tokens, DEFAULT_MAX);
		CHECK(dbl_is(g->generate.temperature, 1.0) && dbl_is(g->generate.top_p, 1.0), "defaults");
		CHECK(R.stream == 0 && R.include_usage == 0 && R.n_stop == 0, "stream default");
	}
	if (OK(OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":[\"a\\tb\"],\"max_tokens\":5,\"temperature\":0,"
				"\"top_p\":0.25,\"seed\":3,\"stop\":[\"\\n\",\"x\"],\"stream\":true,"
				"\"stream_options\":{\"include_usage\":true},\"n\":1,\"user\":\"u\","
				"\"presence_penalty\":0,\"frequency_penalty\":0,\"echo\":false,\"logprobs\":null,"
				"\"suffix\":null}")) {
		CHECK(g->generate.has_prompt && text_is(g->generate.prompt, "a\tb"), "prompt array");
		CHECK_EQ_INT(g->generate.max_tokens, 5);
		CHECK(dbl_is(g->generate.temperature, 0.0) && dbl_is(g->generate.top_p, 0.25), "numbers");
		CHECK(g->generate.seed == 3 && R.n_stop == 2 && R.stream && R.include_usage, "seed, stop, stream");
	}
	if (OK(OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"\"}"))
		CHECK(g->generate.has_prompt && g->generate.prompt.n == 0, "empty prompt");
	OK(OAI_COMPLETIONS, COMP_HEAD ",\"echo\":null}");
	BAD(OAI_COMPLETIONS, "{\"model\":\"m\"}", 400, "missing_required_parameter", "prompt");
	BAD(OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":null}", 400, "missing_required_parameter", "prompt");
	BAD(OAI_COMPLETIONS, "{\"prompt\":\"SECRET\"}", 400, "missing_required_parameter", "model");
	BAD(OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":5}", 400, "invalid_type", "prompt");
	BAD(OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":[]}", 400, "invalid_value", "prompt");
	BAD(OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":[\"SECRET\",\"SECRET\"]}", 400, "invalid_value", "prompt");
	BAD(OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":[1,2,3]}", 400, "invalid_value", "prompt");
	BAD(OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":[17]}", 400, "invalid_type", "prompt");
	BAD(OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":[[\"SECRET\"]]}", 400, "invalid_type", "prompt");
	BAD(OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"SECRET\\u0000\"}", 400, "invalid_value", "prompt");
	BAD(OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":[\"SECRET\\u0000\"]}", 400, "invalid_value", "prompt");
	BAD(OAI_COMPLETIONS, COMP_HEAD ",\"messages\":[]}", 400, "unknown_parameter", "messages");
	BAD(OAI_COMPLETIONS, COMP_HEAD ",\"max_completion_tokens\":5}", 400, "unknown_parameter",
	    "max_completion_tokens");
	BAD(OAI_COMPLETIONS, COMP_HEAD ",\"best_of\":2}", 400, "unknown_parameter", "best_of");
	BAD(OAI_COMPLETIONS, COMP_HEAD ",\"echo\":true}", 400, "invalid_value", "echo");
	BAD(OAI_COMPLETIONS, COMP_HEAD ",\"echo\":\"no\"}", 400, "invalid_type", "echo");
	BAD(OAI_COMPLETIONS, COMP_HEAD ",\"logprobs\":0}", 400, "invalid_value", "logprobs");
	BAD(OAI_COMPLETIONS, COMP_HEAD ",\"logprobs\":false}", 400, "invalid_value", "logprobs");
	BAD(OAI_COMPLETIONS, COMP_HEAD ",\"suffix\":\"SECRET\"}", 400, "invalid_value", "suffix");
	BAD(OAI_COMPLETIONS, COMP_HEAD ",\"suffix\":\"\"}", 400, "invalid_value", "suffix");
	BAD(OAI_COMPLETIONS, COMP_HEAD ",\"max_tokens\":0}", 400, "invalid_value", "max_tokens");
	BAD(OAI_COMPLETIONS, COMP_HEAD ",\"temperature\":3}", 400, "invalid_value", "temperature");
	BAD(OAI_COMPLETIONS, COMP_HEAD ",\"top_p\":2}", 400, "invalid_value", "top_p");
	BAD(OAI_COMPLETIONS, COMP_HEAD ",\"seed\":-3}", 400, "invalid_value", "seed");
	BAD(OAI_COMPLETIONS, COMP_HEAD ",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}", 400, "invalid_value", "stop");
	BAD(OAI_COMPLETIONS, COMP_HEAD ",\"stream_options\":{\"include_usage\":true}}", 400, "invalid_value",
	    "stream_options");
	BAD(OAI_COMPLETIONS, COMP_HEAD ",\"n\":3}", 400, "invalid_value", "n");
	BAD(OAI_COMPLETIONS, COMP_HEAD ",\"presence_penalty\":1}", 400, "invalid_value", "presence_penalty");
}

/* ---- Ollama ---- */

static void test_ollama(void)
{
	const struct mu_msg *g = &R.gen;
	if (OK(OAI_OLLAMA, "{\"model\":\"llama3.2:1b\",\"prompt\":\"Why is the sky blue?\"}")) {
		CHECK(!strcmp(R.model, "llama3.2:1b"), "model");
		CHECK(g->generate.has_prompt && text_is(g->generate.prompt, "Why is the sky blue?"), "prompt");
		CHECK(R.stream == 1 && g->generate.stream == 1, "stream defaults to true");
		CHECK(dbl_is(g->generate.temperature, 0.8), "temperature defaults to 0.8");
		CHECK(dbl_is(g->generate.top_p, 1.0) && g->generate.top_k == 0 && g->generate.seed == 0, "defaults");
		CHECK_EQ_INT(g->generate.max_tokens, DEFAULT_MAX);
		CHECK(R.n_stop == 0 && R.include_usage == 0, "no stops");
	}
	if (OK(OAI_OLLAMA, "{\"model\":\"m\",\"prompt\":\"P\\u00e9\",\"system\":\"S\\n\",\"stream\":false,"
			   "\"raw\":true,\"keep_alive\":\"5m\",\"options\":{\"temperature\":0.2,\"top_p\":0.5,"
			   "\"top_k\":40,\"seed\":7,\"num_predict\":100,\"stop\":[\"\\n\\n\",\"User:\"]}}")) {
		CHECK(!g->generate.has_prompt && g->generate.n_messages == 2, "system makes a chat");
		CHECK(g->generate.role[0] == MU_WIRE_ROLE_SYSTEM && text_is(g->generate.content[0], "S\n"), "system");
		CHECK(g->generate.role[1] == MU_WIRE_ROLE_USER && text_is(g->generate.content[1], "P\xc3\xa9"), "user");
		CHECK(g->generate.prompt.n == 0, "no prompt");
		CHECK(R.stream == 0 && g->generate.stream == 0, "stream false");
		CHECK(dbl_is(g->generate.temperature, 0.2) && dbl_is(g->generate.top_p, 0.5), "numbers");
		CHECK(g->generate.top_k == 40 && g->generate.seed == 7, "top_k, seed");
		CHECK_EQ_INT(g->generate.max_tokens, 100);
		CHECK(R.n_stop == 2 && R.stop_len[0] == 2 && !memcmp(R.stop[1], "User:", 5), "stops");
	}
	if (OK(OAI_OLLAMA, "{\"model\":\"m\",\"prompt\":\"\",\"system\":\"\"}"))
		CHECK(g->generate.n_messages == 2 && g->generate.content[0].n == 0 && g->generate.content[1].n == 0,
		      "empty system and prompt");
	if (OK(OAI_OLLAMA, "{\"model\":\"m\",\"prompt\":\"x\",\"system\":null,\"options\":null,\"stream\":null,"
			   "\"raw\":null,\"keep_alive\":null}"))
		CHECK(g->generate.has_prompt && R.stream == 1, "nulls");
	if (OK(OAI_OLLAMA, OLL_HEAD ",\"keep_alive\":0,\"options\":{\"num_predict\":-1,\"stop\":[],\"top_k\":1048576,"
			   "\"temperature\":null}}")) {
		CHECK_EQ_INT(g->generate.max_tokens, DEFAULT_MAX);
		CHECK(R.n_stop == 0 && g->generate.top_k == MU_MAX_VOCAB, "empty stop list, top_k max");
		CHECK(dbl_is(g->generate.temperature, 0.8), "null temperature");
	}
	if (OK(OAI_OLLAMA, OLL_HEAD ",\"options\":{\"num_predict\":65536,\"temperature\":0}}"))
		CHECK(g->generate.max_tokens == 65536 && dbl_is(g->generate.temperature, 0.0), "num_predict max");
	OK(OAI_OLLAMA, OLL_HEAD ",\"keep_alive\":{\"x\":[1]},\"options\":{}}");
	BAD(OAI_OLLAMA, "{\"model\":\"m\"}", 400, "missing_required_parameter", "prompt");
	BAD(OAI_OLLAMA, "{\"prompt\":\"SECRET\"}", 400, "missing_required_parameter", "model");
	BAD(OAI_OLLAMA, "{\"model\":\"m\",\"prompt\":[\"SECRET\"]}", 400, "invalid_type", "prompt");
	BAD(OAI_OLLAMA, "{\"model\":\"m\",\"prompt\":\"SECRET\\u0000\"}", 400, "invalid_value", "prompt");
	BAD(OAI_OLLAMA, OLL_HEAD ",\"system\":5}", 400, "invalid_type", "system");
	BAD(OAI_OLLAMA, OLL_HEAD ",\"system\":\"SECRET\\u0000\"}", 400, "invalid_value", "system");
	BAD(OAI_OLLAMA, OLL_HEAD ",\"stream\":\"no\"}", 400, "invalid_type", "stream");
	BAD(OAI_OLLAMA, OLL_HEAD ",\"raw\":1}", 400, "invalid_type", "raw");
	BAD(OAI_OLLAMA, OLL_HEAD ",\"format\":\"json\"}", 400, "unknown_parameter", "format");
	BAD(OAI_OLLAMA, OLL_HEAD ",\"images\":[]}", 400, "unknown_parameter", "images");
	BAD(OAI_OLLAMA, OLL_HEAD ",\"messages\":[]}", 400, "unknown_parameter", "messages");
	BAD(OAI_OLLAMA, OLL_HEAD ",\"temperature\":1}", 400, "unknown_parameter", "temperature");
	BAD(OAI_OLLAMA, OLL_HEAD ",\"options\":[]}", 400, "invalid_type", "options");
	BAD(OAI_OLLAMA, OLL_HEAD ",\"options\":{\"num_ctx\":4096}}", 400, "unknown_parameter", "options.num_ctx");
	BAD(OAI_OLLAMA, OLL_HEAD ",\"options\":{\"SECRET\\u00e9\":1}}", 400, "unknown_parameter", "options");
	BAD(OAI_OLLAMA, OLL_HEAD ",\"options\":{\"temperature\":2.5}}", 400, "invalid_value", "options.temperature");
	BAD(OAI_OLLAMA, OLL_HEAD ",\"options\":{\"temperature\":\"0\"}}", 400, "invalid_type", "options.temperature");
	BAD(OAI_OLLAMA, OLL_HEAD ",\"options\":{\"top_p\":0}}", 400, "invalid_value", "options.top_p");
	BAD(OAI_OLLAMA, OLL_HEAD ",\"options\":{\"top_k\":-1}}", 400, "invalid_value", "options.top_k");
	BAD(OAI_OLLAMA, OLL_HEAD ",\"options\":{\"top_k\":1048577}}", 400, "invalid_value", "options.top_k");
	BAD(OAI_OLLAMA, OLL_HEAD ",\"options\":{\"top_k\":1.5}}", 400, "invalid_value", "options.top_k");
	BAD(OAI_OLLAMA, OLL_HEAD ",\"options\":{\"seed\":-1}}", 400, "invalid_value", "options.seed");
	BAD(OAI_OLLAMA, OLL_HEAD ",\"options\":{\"num_predict\":0}}", 400, "invalid_value", "options.num_predict");
	BAD(OAI_OLLAMA, OLL_HEAD ",\"options\":{\"num_predict\":-2}}", 400, "invalid_value", "options.num_predict");
	BAD(OAI_OLLAMA, OLL_HEAD ",\"options\":{\"num_predict\":65537}}", 400, "invalid_value",
	    "options.num_predict");
	BAD(OAI_OLLAMA, OLL_HEAD ",\"options\":{\"num_predict\":\"5\"}}", 400, "invalid_type", "options.num_predict");
	BAD(OAI_OLLAMA, OLL_HEAD ",\"options\":{\"stop\":\"SECRET\"}}", 400, "invalid_type", "options.stop");
	BAD(OAI_OLLAMA, OLL_HEAD ",\"options\":{\"stop\":[\"a\",\"b\",\"c\",\"d\",\"SECRET\"]}}", 400, "invalid_value",
	    "options.stop");
	BAD(OAI_OLLAMA, OLL_HEAD ",\"options\":{\"stop\":[\"\"]}}", 400, "invalid_value", "options.stop[0]");
	BAD(OAI_OLLAMA, OLL_HEAD ",\"options\":{\"stop\":[1]}}", 400, "invalid_type", "options.stop[0]");
	BAD(OAI_OLLAMA, OLL_HEAD ",\"stream\":true,\"stream_options\":{}}", 400, "unknown_parameter",
	    "stream_options");
}

/* ---- sizes, memory, arguments ---- */

static void test_limits(void)
{
	/* a prompt of \b escapes: 2 body bytes each, 6 on the wire (jsonw writes \u0008) */
	size_t n = 170000, cap = 64 + 2 * 200000;
	char *b = malloc(cap);
	size_t o = (size_t)snprintf(b, cap, "{\"model\":\"m\",\"prompt\":\"");
	for (size_t i = 0; i < n; i++, o += 2)
		memcpy(b + o, "\\b", 2);
	o += (size_t)snprintf(b + o, cap - o, "\"}");
	CHECK(parse_n(OAI_COMPLETIONS, b, o) == 0, "170000 escapes fit: %s", E.message);
	if (E.status == 0) {
		CHECK(R.gen.generate.prompt.n == n, "decoded");
		roundtrip(__LINE__);
	}
	n = 180000;
	o = (size_t)snprintf(b, cap, "{\"model\":\"m\",\"prompt\":\"");
	for (size_t i = 0; i < n; i++, o += 2)
		memcpy(b + o, "\\b", 2);
	o += (size_t)snprintf(b + o, cap - o, "\"}");
	refused_(__LINE__, parse_n(OAI_COMPLETIONS, b, o), 400, "context_length_exceeded", "prompt");
	/* as a chat: the Ollama system and prompt add up */
	for (int big = 0; big < 2; big++) {
		n = big ? 90000 : 85000;
		o = (size_t)snprintf(b, cap, "{\"model\":\"m\",\"system\":\"");
		for (size_t i = 0; i < n; i++, o += 2)
			memcpy(b + o, "\\f", 2);
		o += (size_t)snprintf(b + o, cap - o, "\",\"prompt\":\"");
		for (size_t i = 0; i < n; i++, o += 2)
			memcpy(b + o, "\\b", 2);
		o += (size_t)snprintf(b + o, cap - o, "\"}");
		if (big)
			refused_(__LINE__, parse_n(OAI_OLLAMA, b, o), 400, "context_length_exceeded", "messages");
		else if (parse_n(OAI_OLLAMA, b, o) == 0)
			roundtrip(__LINE__);
		else
			CHECK(0, "2 x 85000 escapes refused: %s", E.message);
	}
	free(b);

	/* a body of exactly OAI_MAX_BODY bytes parses; one more byte is 413 */
	b = malloc(OAI_MAX_BODY + 1);
	o = (size_t)snprintf(b, OAI_MAX_BODY, "{\"model\":\"m\",\"prompt\":\"abc\"}");
	memset(b + o, ' ', OAI_MAX_BODY + 1 - o);
	if (parse_n(OAI_COMPLETIONS, b, OAI_MAX_BODY) == 0)
		CHECK(text_is(R.gen.generate.prompt, "abc"), "1 MiB body");
	else
		CHECK(0, "1 MiB body refused: %s", E.message);
	refused_(__LINE__, parse_n(OAI_COMPLETIONS, b, OAI_MAX_BODY + 1), 413, "request_too_large", "");
	/* a prompt of all but 23 bytes of the body does not fit a frame with the generate around it */
	o = (size_t)snprintf(b, OAI_MAX_BODY, "{\"model\":\"m\",\"prompt\":\"");
	memset(b + o, 'a', OAI_MAX_BODY - o - 2);
	memcpy(b + OAI_MAX_BODY - 2, "\"}", 2);
	refused_(__LINE__, parse_n(OAI_COMPLETIONS, b, OAI_MAX_BODY), 400, "context_length_exceeded", "prompt");
	memset(b + o, 'a', OAI_MAX_BODY - 1000);
	memcpy(b + o + OAI_MAX_BODY - 1000, "\"}", 2);
	if (parse_n(OAI_COMPLETIONS, b, o + OAI_MAX_BODY - 998) == 0)
		roundtrip(__LINE__);
	else
		CHECK(0, "prompt of 1 MiB - 1000 refused: %s", E.message);
	/* an escaped 1 MiB body: the scratch holds every decoded string */
	o = (size_t)snprintf(b, OAI_MAX_BODY, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"");
	while (o + 200 < OAI_MAX_BODY) {
		memcpy(b + o, "\\u00e9\\\"", 8);
		o += 8;
	}
	o += (size_t)snprintf(b + o, 100, "\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"\\\\\"}]}]}");
	if (parse_n(OAI_CHAT, b, o) == 0)
		roundtrip(__LINE__);
	else
		CHECK(0, "escaped 1 MiB chat refused: %s", E.message);
	free(b);

	/* memory and arguments */
	const char *body = "{\"model\":\"m\",\"prompt\":\"SECRET\"}";
	size_t len = strlen(body), need = oai_mem_size(len);
	CHECK(need > len && oai_mem_size(OAI_MAX_BODY) == MEM_LEN && oai_mem_size(OAI_MAX_BODY + 5) == MEM_LEN,
	      "oai_mem_size");
	uint8_t *m = malloc(need);
	CHECK(oai_parse_request(&R, OAI_COMPLETIONS, (const uint8_t *)body, len, 1, m, need, &E) == 0, "exact memory");
	refused_(__LINE__, oai_parse_request(&R, OAI_COMPLETIONS, (const uint8_t *)body, len, 1, m, need - 1, &E), 500,
		 NULL, "");
	refused_(__LINE__, oai_parse_request(&R, OAI_COMPLETIONS, (const uint8_t *)body, len, 1, NULL, 0, &E), 500,
		 NULL, "");
	refused_(__LINE__, oai_parse_request(&R, OAI_COMPLETIONS, (const uint8_t *)body, len, 0, m, need, &E), 500,
		 NULL, "");
	refused_(__LINE__,
		 oai_parse_request(&R, OAI_COMPLETIONS, (const uint8_t *)body, len, MU_WIRE_MAX_GEN_TOKENS + 1, m, need,
				   &E),
		 500, NULL, "");
	refused_(__LINE__, oai_parse_request(&R, (enum oai_api)3, (const uint8_t *)body, len, 1, m, need, &E), 500,
		 NULL, "");
	refused_(__LINE__, oai_parse_request(&R, OAI_COMPLETIONS, NULL, 5, 1, m, need, &E), 500, NULL, "");
	CHECK(oai_parse_request(&R, OAI_COMPLETIONS, (const uint8_t *)body, len, MU_WIRE_MAX_GEN_TOKENS, m, need, NULL) ==
		      0 && R.gen.generate.max_tokens == MU_WIRE_MAX_GEN_TOKENS,
	      "no error struct needed");
	CHECK(oai_parse_request(&R, OAI_COMPLETIONS, (const uint8_t *)"{}", 2, 1, m, need, NULL) == -1, "e NULL");
	free(m);
	/* a body near the token limit: 64 messages of 20 parts each */
	cap = 64 * (40 + 20 * 40) + 64;
	b = malloc(cap);
	o = (size_t)snprintf(b, cap, "{\"model\":\"m\",\"messages\":[");
	for (unsigned i = 0; i < 64; i++) {
		o += (size_t)snprintf(b + o, cap - o, "%s{\"role\":\"user\",\"content\":[", i ? "," : "");
		for (unsigned j = 0; j < 20; j++)
			o += (size_t)snprintf(b + o, cap - o, "%s{\"type\":\"text\",\"text\":\"%u\"}", j ? "," : "", j % 10);
		o += (size_t)snprintf(b + o, cap - o, "]}");
	}
	o += (size_t)snprintf(b + o, cap - o, "]}");
	if (parse_n(OAI_CHAT, b, o) == 0) {
		CHECK(text_is(R.gen.generate.content[63], "01234567890123456789"), "joined 20 parts");
		roundtrip(__LINE__);
	} else {
		CHECK(0, "64 x 20 parts refused: %s", E.message);
	}
	free(b);
}

/* ---- oai_error_set ---- */

static void test_error_set(void)
{
	struct oai_error e;
	char longp[100];
	memset(longp, 'p', sizeof longp - 1);
	longp[sizeof longp - 1] = '\0';
	oai_error_set(&e, 404, "not_found_error", "model_not_found", longp, "model %s not \x01" "found %d", "x", 7);
	CHECK(e.status == 404 && !strcmp(e.type, "not_found_error") && !strcmp(e.code, "model_not_found"), "fields");
	CHECK(strlen(e.param) == sizeof e.param - 1, "param truncated");
	CHECK(!strcmp(e.message, "model x not ?found 7"), "message '%s'", e.message);
	oai_error_set(&e, 500, "server_error", NULL, NULL, "%s", "\xc3\xa9\n");
	CHECK(!strcmp(e.message, "???") && e.param[0] == '\0' && e.code == NULL, "tamed '%s'", e.message);
	memset(longp, 'm', sizeof longp - 1);
	oai_error_set(&e, 400, "invalid_request_error", NULL, "", "%s%s%s", longp, longp, longp);
	CHECK(strlen(e.message) == sizeof e.message - 1, "message truncated");
	oai_error_set(NULL, 400, "x", NULL, NULL, "y"); /* no crash */
}

/* ---- writers ---- */

static struct json_doc D;
static uint8_t *DMEM;
static size_t DMEM_LEN;

static int jparse(const char *s, size_t n)
{
	struct json_limits lim = JSON_LIMITS_TOOL;
	struct mu_error err;
	if (json_parse(&D, s, n, &lim, DMEM, DMEM_LEN, &err) != MU_OK) {
		CHECK(0, "writer output does not parse: %s: %.*s", err.msg, (int)n, s);
		return 0;
	}
	return 1;
}

static uint32_t jget(uint32_t obj, const char *key) { return json_obj_get(&D, obj, key); }

static int jstr(uint32_t obj, const char *key, const char *want)
{
	return json_str_eq(&D, jget(obj, key), want);
}

static int jint(uint32_t obj, const char *key, int64_t want)
{
	int64_t v;
	return json_get_i64(&D, jget(obj, key), &v, NULL) == MU_OK && v == want;
}

static int jnull(uint32_t obj, const char *key) { return json_is_null(&D, jget(obj, key)); }

static int jcount(uint32_t t) { return json_type(&D, t) >= JSON_ARRAY ? (int)D.tok[t].count : -1; }

/* "data: <json>\n\n" -> parses the JSON */
static int sse(const char *s, size_t n)
{
	CHECK(n > 8 && !memcmp(s, "data: ", 6) && !memcmp(s + n - 2, "\n\n", 2), "SSE framing");
	return n > 8 && jparse(s + 6, n - 8);
}

static const struct oai_resp RESP_CHAT = {OAI_CHAT, "h42", "mo\"del\\\xc3\xa9", 1700000000, 1700000000123, 0};

static void check_openai_head(uint32_t root, const struct oai_resp *x, const char *object)
{
	char id[96];
	snprintf(id, sizeof id, "%s%s", x->api == OAI_CHAT ? "chatcmpl-" : "cmpl-", x->id);
	CHECK(jstr(root, "id", id), "id");
	CHECK(jstr(root, "object", object), "object %s", object);
	CHECK(jint(root, "created", x->created), "created");
	CHECK(jstr(root, "model", x->model), "model");
}

static void test_stream_writers(void)
{
	char buf[4096];
	size_t n;
	uint32_t c, d;
	struct oai_resp x = RESP_CHAT;
	const char text[] = "Hi \"you\"\\\n\t\x01\x7f\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";

	/* chat chunks */
	n = oai_stream_text(buf, sizeof buf, &x, 1, text, sizeof text - 1);
	CHECK(n == strlen(buf), "NUL written");
	if (sse(buf, n)) {
		CHECK(jcount(0) == 5, "five members");
		check_openai_head(0, &x, "chat.completion.chunk");
		c = json_arr_get(&D, jget(0, "choices"), 0);
		CHECK(jcount(jget(0, "choices")) == 1 && jcount(c) == 4, "one choice of four members");
		CHECK(jint(c, "index", 0) && jnull(c, "logprobs") && jnull(c, "finish_reason"), "choice");
		d = jget(c, "delta");
		CHECK(jcount(d) == 2 && jstr(d, "role", "assistant"), "first delta has the role");
		CHECK(json_str_eqn(&D, jget(d, "content"), text, sizeof text - 1), "content");
	}
	CHECK(strstr(buf, "\"content\":\"Hi \\\"you\\\"\\\\\\n\\t\\u0001\\u007f\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"") !=
		      NULL,
	      "escaped byte for byte: %s", buf);
	n = oai_stream_text(buf, sizeof buf, &x, 0, "x", 1);
	if (sse(buf, n)) {
		d = jget(json_arr_get(&D, jget(0, "choices"), 0), "delta");
		CHECK(jcount(d) == 1 && jstr(d, "content", "x"), "later delta has only content");
		CHECK(jget(0, "usage") == JSON_NONE, "no usage member without include_usage");
	}
	n = oai_stream_text(buf, sizeof buf, &x, 0, "", 0);
	CHECK(n > 0, "empty text");
	CHECK(oai_stream_text(buf, sizeof buf, &x, 0, "a\xff", 2) == 0 && buf[0] == '\0', "invalid UTF-8 refused");
	CHECK(oai_stream_text(buf, sizeof buf, &x, 0, "\xe2\x82", 2) == 0, "truncated UTF-8 refused");
	CHECK(oai_stream_text(buf, sizeof buf, &x, 0, "\xed\xa0\x80", 3) == 0, "surrogate refused");
	CHECK(oai_stream_text(buf, sizeof buf, &x, 0, "\xc0\x80", 2) == 0, "overlong refused");
	CHECK(oai_stream_text(buf, sizeof buf, &x, 0, NULL, 1) == 0, "NULL text refused");
	CHECK(oai_stream_text(buf, sizeof buf, &x, 0, NULL, 0) > 0, "NULL empty text");
	x.include_usage = 1;
	n = oai_stream_text(buf, sizeof buf, &x, 0, "x", 1);
	if (sse(buf, n))
		CHECK(jnull(0, "usage"), "usage null with include_usage");

	/* completions chunks */
	x = RESP_CHAT;
	x.api = OAI_COMPLETIONS;
	n = oai_stream_text(buf, sizeof buf, &x, 1, "a\"b", 3);
	if (sse(buf, n)) {
		CHECK(jcount(0) == 5, "five members");
		check_openai_head(0, &x, "text_completion");
		c = json_arr_get(&D, jget(0, "choices"), 0);
		CHECK(jcount(c) == 4 && jint(c, "index", 0) && jstr(c, "text", "a\"b") && jnull(c, "logprobs") &&
			      jnull(c, "finish_reason"),
		      "text choice");
	}

	/* Ollama lines */
	x.api = OAI_OLLAMA;
	n = oai_stream_text(buf, sizeof buf, &x, 1, text, sizeof text - 1);
	CHECK(n > 1 && buf[n - 1] == '\n' && buf[0] == '{', "NDJSON framing");
	if (n > 1 && jparse(buf, n - 1)) {
		CHECK(jcount(0) == 4, "four members");
		CHECK(jstr(0, "model", x.model) && jstr(0, "created_at", "2023-11-14T22:13:20.123Z"), "model, created_at");
		CHECK(json_str_eqn(&D, jget(0, "response"), text, sizeof text - 1), "response");
		CHECK(json_type(&D, jget(0, "done")) == JSON_BOOL && !memcmp(buf + n - 14, "\"done\":false}\n", 14),
		      "done false");
	}

	/* ends */
	struct oai_usage u = {.prompt_tokens = 12, .completion_tokens = 30, .total_ns = 1500000000};
	x = RESP_CHAT;
	n = oai_stream_end(buf, sizeof buf, &x, "stop", &u);
	CHECK(n > 0 && strstr(buf, "\n\ndata: [DONE]\n\n") == buf + n - 16, "chat end, [DONE] last");
	if (n > 16 && sse(buf, n - 14)) {
		check_openai_head(0, &x, "chat.completion.chunk");
		c = json_arr_get(&D, jget(0, "choices"), 0);
		CHECK(jcount(jget(c, "delta")) == 0 && jstr(c, "finish_reason", "stop") && jnull(c, "logprobs"),
		      "empty delta and finish_reason");
		CHECK(jget(0, "usage") == JSON_NONE, "no usage");
	}
	CHECK(oai_stream_end(buf, sizeof buf, &x, "length", NULL) > 0, "usage may be NULL without include_usage");
	x.include_usage = 1;
	n = oai_stream_end(buf, sizeof buf, &x, "length", &u);
	{
		const char *e1 = strstr(buf, "\n\n");
		const char *e2 = e1 ? strstr(e1 + 2, "\n\n") : NULL;
		CHECK(e1 && e2 && !strcmp(e2 + 2, "data: [DONE]\n\n") && (size_t)(e2 + 16 - buf) == n, "three events");
		if (e1 && e2 && sse(buf, (size_t)(e1 + 2 - buf))) {
			c = json_arr_get(&D, jget(0, "choices"), 0);
			CHECK(jstr(c, "finish_reason", "length") && jnull(0, "usage"), "finish chunk");
		}
		if (e1 && e2 && sse(e1 + 2, (size_t)(e2 + 2 - (e1 + 2)))) {
			check_openai_head(0, &x, "chat.completion.chunk");
			CHECK(jcount(jget(0, "choices")) == 0, "usage chunk has no choices");
			uint32_t us = jget(0, "usage");
			CHECK(jcount(us) == 3 && jint(us, "prompt_tokens", 12) && jint(us, "completion_tokens", 30) &&
				      jint(us, "total_tokens", 42),
			      "usage");
		}
	}
	CHECK(oai_stream_end(buf, sizeof buf, &x, "stop", NULL) == 0, "include_usage needs usage");
	x.api = OAI_COMPLETIONS;
	n = oai_stream_end(buf, sizeof buf, &x, "content_filter", &u);
	{
		const char *e1 = strstr(buf, "\n\n");
		if (e1 && sse(buf, (size_t)(e1 + 2 - buf))) {
			check_openai_head(0, &x, "text_completion");
			c = json_arr_get(&D, jget(0, "choices"), 0);
			CHECK(jstr(c, "text", "") && jstr(c, "finish_reason", "content_filter"), "completions end");
		}
		CHECK(e1 && strstr(e1 + 2, "\"object\":\"text_completion\"") && strstr(e1 + 2, "\"total_tokens\":42"),
		      "completions usage chunk");
	}
	x.api = OAI_OLLAMA;
	x.include_usage = 0;
	n = oai_stream_end(buf, sizeof buf, &x, "stop", &u);
	if (n > 1 && buf[n - 1] == '\n' && jparse(buf, n - 1)) {
		CHECK(jcount(0) == 11, "Ollama end members: %d", jcount(0));
		CHECK(jstr(0, "model", x.model) && jstr(0, "created_at", "2023-11-14T22:13:20.123Z"), "head");
		CHECK(jstr(0, "response", "") && jstr(0, "done_reason", "stop"), "response, done_reason");
		CHECK(jint(0, "total_duration", 1500000000) && jint(0, "load_duration", 0) &&
			      jint(0, "prompt_eval_count", 12) && jint(0, "prompt_eval_duration", 0) &&
			      jint(0, "eval_count", 30) && jint(0, "eval_duration", 1500000000),
		      "counts and durations");
		CHECK(strstr(buf, "\"done\":true") != NULL, "done true");
	} else {
		CHECK(0, "Ollama end");
	}
	CHECK(oai_stream_end(buf, sizeof buf, &x, "stop", NULL) == 0, "Ollama needs usage");
	/* invalid arguments */
	x = RESP_CHAT;
	CHECK(oai_stream_end(buf, sizeof buf, &x, "cancelled", &u) == 0, "finish cancelled");
	CHECK(oai_stream_end(buf, sizeof buf, &x, NULL, &u) == 0, "finish NULL");
	u.prompt_tokens = -1;
	CHECK(oai_stream_end(buf, sizeof buf, &x, "stop", &u) == 0, "negative usage");
	u.prompt_tokens = INT64_MAX;
	u.completion_tokens = 1;
	CHECK(oai_stream_end(buf, sizeof buf, &x, "stop", &u) == 0, "total overflows");
	CHECK(oai_stream_text(buf, sizeof buf, NULL, 0, "x", 1) == 0, "NULL resp");
	x.id = NULL;
	CHECK(oai_stream_text(buf, sizeof buf, &x, 0, "x", 1) == 0, "NULL id");
	x = RESP_CHAT;
	x.model = NULL;
	CHECK(oai_whole_head(buf, sizeof buf, &x) == 0, "NULL model");
	x = RESP_CHAT;
	x.model = "bad\xff";
	CHECK(oai_whole_head(buf, sizeof buf, &x) == 0, "invalid UTF-8 model");
	x = RESP_CHAT;
	x.api = (enum oai_api)7;
	CHECK(oai_whole_head(buf, sizeof buf, &x) == 0, "bad api");
	x.api = OAI_OLLAMA;
	x.created_ms = 253402300800000; /* year 10000 */
	CHECK(oai_whole_head(buf, sizeof buf, &x) == 0, "year 10000");
	x.created_ms = -62167219200001; /* before year 0 */
	CHECK(oai_whole_head(buf, sizeof buf, &x) == 0, "year -1");
	x.created_ms = INT64_MIN;
	CHECK(oai_whole_head(buf, sizeof buf, &x) == 0, "INT64_MIN");
	x.created_ms = INT64_MAX;
	CHECK(oai_whole_head(buf, sizeof buf, &x) == 0, "INT64_MAX");
	x = RESP_CHAT;
	x.created = INT64_MIN;
	CHECK(oai_whole_head(buf, sizeof buf, &x) > 0 && strstr(buf, "\"created\":-9223372036854775808,"), "created min");
}

static void test_errors_and_models(void)
{
	char buf[2048];
	size_t n;
	struct oai_error e;
	struct oai_resp x = RESP_CHAT;
	oai_error_set(&e, 400, "invalid_request_error", "unknown_parameter", "a\"b", "say \"%s\"\\", "hi");
	n = oai_error_body(buf, sizeof buf, OAI_CHAT, &e);
	CHECK(n > 0 && buf[n - 1] == '\n', "error body");
	if (n && jparse(buf, n - 1)) {
		uint32_t o = jget(0, "error");
		CHECK(jcount(0) == 1 && jcount(o) == 4, "shape");
		CHECK(jstr(o, "message", "say \"hi\"\\") && jstr(o, "type", "invalid_request_error") &&
			      jstr(o, "param", "a\"b") && jstr(o, "code", "unknown_parameter"),
		      "members");
	}
	oai_error_set(&e, 503, "server_error", NULL, "", "busy");
	n = oai_error_body(buf, sizeof buf, OAI_COMPLETIONS, &e);
	CHECK(n > 0 && !strcmp(buf, "{\"error\":{\"message\":\"busy\",\"type\":\"server_error\",\"param\":null,"
				    "\"code\":null}}\n"),
	      "nulls: %s", buf);
	n = oai_error_body(buf, sizeof buf, OAI_OLLAMA, &e);
	CHECK(n > 0 && !strcmp(buf, "{\"error\":\"busy\"}\n"), "Ollama error: %s", buf);
	n = oai_stream_error(buf, sizeof buf, &x, &e);
	CHECK(n > 0 && !strcmp(buf, "data: {\"error\":{\"message\":\"busy\",\"type\":\"server_error\",\"param\":null,"
				    "\"code\":null}}\n\n"),
	      "stream error: %s", buf);
	x.api = OAI_OLLAMA;
	n = oai_stream_error(buf, sizeof buf, &x, &e);
	CHECK(n > 0 && !strcmp(buf, "{\"error\":\"busy\"}\n"), "Ollama stream error: %s", buf);
	CHECK(oai_error_body(buf, sizeof buf, OAI_CHAT, NULL) == 0, "NULL error");
	e.type = NULL;
	CHECK(oai_error_body(buf, sizeof buf, OAI_CHAT, &e) == 0, "NULL type");
	oai_error_set(&e, 500, "server_error", NULL, NULL, "x");
	memset(e.message, 'a', sizeof e.message); /* no NUL */
	CHECK(oai_error_body(buf, sizeof buf, OAI_CHAT, &e) == 0, "unterminated message");
	CHECK(oai_error_body(buf, sizeof buf, (enum oai_api)3, &e) == 0, "bad api");

	n = oai_models(buf, sizeof buf, "llama\"3\\", 1700000000);
	CHECK(n > 0 && buf[n - 1] == '\n', "models");
	if (n && jparse(buf, n - 1)) {
		uint32_t data = jget(0, "data"), m = json_arr_get(&D, data, 0);
		CHECK(jcount(0) == 2 && jstr(0, "object", "list") && jcount(data) == 1, "list");
		CHECK(jcount(m) == 4 && jstr(m, "id", "llama\"3\\") && jstr(m, "object", "model") &&
			      jint(m, "created", 1700000000) && jstr(m, "owned_by", "mu"),
		      "model entry");
	}
	n = oai_models(buf, sizeof buf, NULL, 0);
	CHECK(n > 0 && !strcmp(buf, "{\"object\":\"list\",\"data\":[]}\n"), "empty list: %s", buf);
	CHECK(oai_models(buf, sizeof buf, "\xc3", 0) == 0, "invalid model name");
}

/* head + escaped text + tail, for every API; the text is escaped in pieces through small caps */
static void test_whole(void)
{
	static const enum oai_api apis[] = {OAI_CHAT, OAI_COMPLETIONS, OAI_OLLAMA};
	const char text[] = "line 1\nline \"2\" \\ caf\xc3\xa9 \xf0\x9f\x98\x80\x1b[0m end";
	struct oai_usage u = {.prompt_tokens = 5, .completion_tokens = 7, .total_ns = 123456789};
	for (size_t a = 0; a < 3; a++) {
		char buf[4096];
		struct oai_resp x = RESP_CHAT;
		x.api = apis[a];
		size_t n = oai_whole_head(buf, sizeof buf, &x), used, off = 0;
		CHECK(n > 0 && buf[n - 1] == '"', "head ends with the opening quote");
		while (off < sizeof text - 1) {
			size_t k = oai_escape(buf + n, 6 + a, text + off, sizeof text - 1 - off, &used);
			CHECK(used > 0, "progress");
			if (used == 0)
				break;
			n += k;
			off += used;
		}
		size_t t = oai_whole_tail(buf + n, sizeof buf - n, &x, "length", &u);
		CHECK(t > 0 && buf[n] == '"' && buf[n + t - 1] == '\n', "tail");
		n += t;
		if (!jparse(buf, n - 1))
			continue;
		if (x.api == OAI_OLLAMA) {
			CHECK(jcount(0) == 11, "Ollama whole members");
			CHECK(jstr(0, "model", x.model) && jstr(0, "created_at", "2023-11-14T22:13:20.123Z"), "head");
			CHECK(jstr(0, "response", text) && json_type(&D, jget(0, "done")) == JSON_BOOL &&
				      jstr(0, "done_reason", "length"),
			      "response");
			CHECK(jint(0, "total_duration", 123456789) && jint(0, "eval_duration", 123456789) &&
				      jint(0, "prompt_eval_count", 5) && jint(0, "eval_count", 7) &&
				      jint(0, "load_duration", 0) && jint(0, "prompt_eval_duration", 0),
			      "counts");
			continue;
		}
		check_openai_head(0, &x, x.api == OAI_CHAT ? "chat.completion" : "text_completion");
		CHECK(jcount(0) == 6, "six members");
		uint32_t c = json_arr_get(&D, jget(0, "choices"), 0), us = jget(0, "usage");
		CHECK(jcount(jget(0, "choices")) == 1 && jcount(c) == 4 && jint(c, "index", 0) && jnull(c, "logprobs") &&
			      jstr(c, "finish_reason", "length"),
		      "choice");
		if (x.api == OAI_CHAT) {
			uint32_t m = jget(c, "message");
			CHECK(jcount(m) == 2 && jstr(m, "role", "assistant") && jstr(m, "content", text), "message");
		} else {
			CHECK(jstr(c, "text", text), "text");
		}
		CHECK(jcount(us) == 3 && jint(us, "prompt_tokens", 5) && jint(us, "completion_tokens", 7) &&
			      jint(us, "total_tokens", 12),
		      "usage");
	}
	char buf[64];
	struct oai_resp x = RESP_CHAT;
	CHECK(oai_whole_tail(buf, sizeof buf, &x, "stop", NULL) == 0, "tail needs usage");
	CHECK(oai_whole_tail(buf, sizeof buf, &x, "eos", &(struct oai_usage){0}) == 0, "unknown finish");
}

/* ---- every cap from 0 to the needed size ---- */

struct wcase {
	int kind; /* 0 text, 1 end, 2 stream error, 3 head, 4 tail, 5 error body, 6 models */
	struct oai_resp x;
	const char *text;
	const char *finish;
	struct oai_usage u;
	struct oai_error e;
	const char *model;
};

static size_t wcall(const struct wcase *w, char *buf, size_t cap)
{
	switch (w->kind) {
	case 0: return oai_stream_text(buf, cap, &w->x, 1, w->text, strlen(w->text));
	case 1: return oai_stream_end(buf, cap, &w->x, w->finish, &w->u);
	case 2: return oai_stream_error(buf, cap, &w->x, &w->e);
	case 3: return oai_whole_head(buf, cap, &w->x);
	case 4: return oai_whole_tail(buf, cap, &w->x, w->finish, &w->u);
	case 5: return oai_error_body(buf, cap, w->x.api, &w->e);
	default: return oai_models(buf, cap, w->model, 42);
	}
}

static void sweep(const struct wcase *w)
{
	char full[8192];
	size_t need = wcall(w, full, sizeof full);
	CHECK(need > 0 && need < sizeof full, "kind %d api %d: writes", w->kind, (int)w->x.api);
	if (need == 0 || need >= sizeof full)
		return;
	int bad = 0;
	for (size_t cap = 0; cap <= need + 1 && !bad; cap++) {
		char *b = malloc(cap + 8);
		memset(b, 0x5a, cap + 8);
		size_t got = wcall(w, b, cap);
		if (cap < need) {
			if (got != 0 || (cap && b[0] != '\0'))
				bad = 1;
		} else if (got != need || memcmp(b, full, need) || (cap > need && b[need] != '\0')) {
			bad = 1;
		}
		for (size_t i = cap; i < cap + 8; i++)
			if ((uint8_t)b[i] != 0x5a)
				bad = 1;
		if (bad)
			fprintf(stderr, "kind %d api %d: cap %zu of %zu gave %zu\n", w->kind, (int)w->x.api, cap, need, got);
		free(b);
	}
	CHECK(!bad, "kind %d api %d: every cap up to %zu", w->kind, (int)w->x.api, need + 1);
}

static void test_caps(void)
{
	struct wcase w;
	for (int api = 0; api < 3; api++) {
		for (int kind = 0; kind < 6; kind++) {
			memset(&w, 0, sizeof w);
			w.kind = kind;
			w.x = RESP_CHAT;
			w.x.api = (enum oai_api)api;
			w.x.include_usage = kind == 1;
			w.text = "t\"\n\xc3\xa9\x01";
			w.finish = "stop";
			w.u = (struct oai_usage){3, 4, 5};
			oai_error_set(&w.e, 400, "invalid_request_error", api ? NULL : "c", "p", "m\"");
			sweep(&w);
		}
	}
	memset(&w, 0, sizeof w);
	w.kind = 6;
	w.model = "m\xc3\xa9";
	sweep(&w);
	w.model = NULL;
	sweep(&w);

	/* oai_escape: whole characters only */
	char b[32];
	size_t used = 99;
	const char t[] = "a\xc3\xa9\n\x01";
	static const size_t want_n[] = {0, 1, 1, 3, 3, 5, 5, 5, 5, 5, 5, 11};
	static const size_t want_used[] = {0, 1, 1, 3, 3, 4, 4, 4, 4, 4, 4, 5};
	for (size_t cap = 0; cap < 12; cap++) {
		memset(b, 0x5a, sizeof b);
		size_t n = oai_escape(b, cap, t, 5, &used);
		CHECK(n == want_n[cap] && used == want_used[cap], "escape cap %zu: %zu used %zu", cap, n, used);
		CHECK(cap == 0 || n == cap || b[n] == '\0', "escape NUL at cap %zu", cap);
		size_t past = cap;
		while (past < sizeof b && (uint8_t)b[past] == 0x5a)
			past++;
		CHECK(past == sizeof b, "escape wrote past cap %zu", cap);
	}
	CHECK(oai_escape(b, sizeof b, t, 5, &used) == 11 && !memcmp(b, "a\xc3\xa9\\n\\u0001", 12), "escape: %s", b);
	CHECK(oai_escape(b, sizeof b, "\xff" "abc", 4, &used) == 0 && used == 0, "invalid at the start");
	CHECK(oai_escape(b, sizeof b, "ab\xff" "c", 4, &used) == 2 && used == 2, "stops before invalid");
	CHECK(oai_escape(b, sizeof b, "ab\xe2\x82", 4, &used) == 2 && used == 2, "stops before truncated");
	CHECK(oai_escape(b, sizeof b, "", 0, &used) == 0 && used == 0, "empty");
	CHECK(oai_escape(b, 16, "\b\f\r\t\x7f\x1f\"\\", 8, &used) == 14 && used == 5 &&
		      !memcmp(b, "\\b\\f\\r\\t\\u007f", 14),
	      "named escapes");
	CHECK(oai_escape(b, sizeof b, "\x7f\x1f\"\\/", 5, &used) == 17 && used == 5, "more escapes (%zu)", used);
	CHECK(oai_escape(b, 16, "\x7f\x1f\"\\/", 5, &used) == 16 && used == 4 &&
		      !memcmp(b, "\\u007f\\u001f\\\"\\\\", 16),
	      "escapes '%.16s'", b);
	CHECK(oai_escape(b, sizeof b, "\0", 1, &used) == 6 && !memcmp(b, "\\u0000", 6), "NUL escaped");
	CHECK(oai_escape(b, sizeof b, "\xf0\x9f\x98\x80", 4, &used) == 4 && used == 4, "4-byte character");
	CHECK(oai_escape(b, 3, "\xf0\x9f\x98\x80", 4, &used) == 0 && used == 0, "4-byte character needs 4");
	CHECK(oai_escape(NULL, 0, "a", 1, &used) == 0 && used == 0, "NULL buffer");

	/* random texts through random caps: whole characters, same bytes as one escape */
	static const char *const pieces[] = {"a", "\"", "\\", "\n", "\x01", "\xc3\xa9", "\xe2\x82\xac",
					     "\xf0\x9f\x98\x80", "\x7f", "z"};
	int bad = 0;
	for (int iter = 0; iter < 2000 && !bad; iter++) {
		char src[64], one[512], part[512];
		size_t sn = 0, on, pn = 0, off = 0;
		while (sn < 48)
			for (const char *p = pieces[rnd(10)]; *p; p++)
				src[sn++] = *p;
		src[sn] = '\0';
		on = oai_escape(one, sizeof one, src, sn, &used);
		if (used != sn)
			bad = 1;
		while (off < sn && !bad) {
			size_t cap = 1 + rnd(8), k = oai_escape(part + pn, cap, src + off, sn - off, &used);
			if (k > cap || (used && off + used < sn && (((uint8_t)src[off + used] & 0xc0) == 0x80)))
				bad = 1;
			pn += k;
			off += used;
			if (used == 0 && cap >= 6)
				bad = 1;
		}
		if (pn != on || memcmp(part, one, on))
			bad = 1;
	}
	CHECK(!bad, "piecewise escaping equals escaping at once");
}

/* created_at against gmtime_r */
static void test_created_at(void)
{
	static const struct {
		int64_t ms;
		const char *want;
	} cases[] = {
		{0, "1970-01-01T00:00:00.000Z"},
		{-1, "1969-12-31T23:59:59.999Z"},
		{951782400000, "2000-02-29T00:00:00.000Z"},
		{951868799999, "2000-02-29T23:59:59.999Z"},
		{4107542400000, "2100-03-01T00:00:00.000Z"},
		{1795341600123, "2026-11-22T10:00:00.123Z"},
		{253402300799999, "9999-12-31T23:59:59.999Z"},
		{-62167219200000, "0000-01-01T00:00:00.000Z"},
	};
	char buf[256];
	struct oai_resp x = RESP_CHAT;
	x.api = OAI_OLLAMA;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		x.created_ms = cases[i].ms;
		size_t n = oai_whole_head(buf, sizeof buf, &x);
		CHECK(n > 0 && strstr(buf, cases[i].want) != NULL, "created_at %lld: %s", (long long)cases[i].ms, buf);
	}
	int bad = 0;
	for (int i = 0; i < 20000 && !bad; i++) {
		int64_t ms = (int64_t)(((uint64_t)rnd(0xffffffffu) << 20 | rnd(1u << 20)) % 253402300800000ull);
		if (i & 1)
			ms = -(ms % 62167219200000);
		time_t s = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
		struct tm tm;
		char want[128];
		if (!gmtime_r(&s, &tm))
			continue;
		snprintf(want, sizeof want, "\"created_at\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\"", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms - (int64_t)s * 1000));
		x.created_ms = ms;
		if (oai_whole_head(buf, sizeof buf, &x) == 0 || !strstr(buf, want)) {
			bad = 1;
			CHECK(0, "created_at %lld: %s, want %s", (long long)ms, buf, want);
		}
	}
	CHECK(!bad, "created_at equals gmtime_r");
}

/* ---- stop sequences ---- */

static struct oai_request stop_req(const char *const *stops, size_t n)
{
	struct oai_request r;
	memset(&r, 0, sizeof r);
	for (size_t i = 0; i < n; i++) {
		r.stop_len[i] = (uint8_t)strlen(stops[i]);
		memcpy(r.stop[i], stops[i], r.stop_len[i]);
	}
	r.n_stop = (uint32_t)n;
	return r;
}

/* Feeds text in pieces cut at cuts[] (ascending), then flushes; returns the output length. */
static size_t run_stop(struct oai_stop *s, const char *text, size_t n, const size_t *cuts, size_t n_cuts,
		       uint8_t *out, int *matched)
{
	size_t o = 0, prev = 0;
	uint8_t tmp[1024 + OAI_MAX_STOP_BYTES];
	for (size_t i = 0; i <= n_cuts; i++) {
		size_t end = i < n_cuts ? cuts[i] : n;
		memset(tmp, 0xee, sizeof tmp);
		size_t k = oai_stop_push(s, text + prev, end - prev, tmp);
		if (k > end - prev + OAI_MAX_STOP_BYTES) {
			CHECK(0, "push released %zu bytes for %zu", k, end - prev);
			k = 0;
		}
		memcpy(out + o, tmp, k);
		o += k;
		prev = end;
	}
	o += oai_stop_flush(s, out + o);
	*matched = s->matched;
	return o;
}

static size_t run_bytes(const char *const *stops, size_t ns, const char *text, uint8_t *out, int *matched)
{
	struct oai_request r = stop_req(stops, ns);
	struct oai_stop s;
	size_t n = strlen(text), cuts[256];
	for (size_t i = 0; i + 1 < n; i++)
		cuts[i] = i + 1;
	oai_stop_init(&s, &r);
	return run_stop(&s, text, n, cuts, n ? n - 1 : 0, out, matched);
}

/* Reference: the first stop sequence to complete (smallest end); on a tie the longest. */
static size_t ref_stop(const char *const *stops, const size_t *lens, size_t ns, const char *text, size_t n,
		       int *matched)
{
	for (size_t end = 1; end <= n; end++) {
		size_t best = 0;
		for (size_t k = 0; k < ns; k++)
			if (lens[k] <= end && !memcmp(text + end - lens[k], stops[k], lens[k]) && lens[k] > best)
				best = lens[k];
		if (best) {
			*matched = 1;
			return end - best;
		}
	}
	*matched = 0;
	return n;
}

#define STOP_CASE(stops, text, want, want_matched)                                                          \
	do {                                                                                                \
		uint8_t o_[512];                                                                             \
		int m_;                                                                                     \
		size_t n_ = run_bytes(stops, sizeof(stops) / sizeof(stops[0]), text, o_, &m_);              \
		CHECK(n_ == strlen(want) && !memcmp(o_, want, n_) && m_ == (want_matched),                   \
		      "stop on \"%s\": got \"%.*s\" matched %d", text, (int)n_, (const char *)o_, m_);         \
	} while (0)

static void test_stop(void)
{
	static const char *const aab[] = {"aab"};
	static const char *const two[] = {"abcd", "bc"};
	static const char *const tie[] = {"bc", "abc"};
	static const char *const multi[] = {"\xc3\xa9!", "\xe2\x82\xac\xe2\x82\xac"};
	static const char *const nl[] = {"\n\n", "User:", "x", "###"};
	STOP_CASE(aab, "aaab", "a", 1);
	STOP_CASE(aab, "aaaab", "aa", 1);
	STOP_CASE(aab, "aabxyz", "", 1);
	STOP_CASE(aab, "aaa", "aaa", 0);
	STOP_CASE(aab, "aaxaab", "aax", 1);
	STOP_CASE(aab, "", "", 0);
	STOP_CASE(two, "xabcdy", "xa", 1); /* "bc" completes first */
	STOP_CASE(two, "xabdy", "xabdy", 0);
	STOP_CASE(tie, "xabc", "x", 1); /* both complete on 'c': the longer starts first */
	STOP_CASE(multi, "caf\xc3\xa9\xc3\xa9!", "caf\xc3\xa9", 1);
	STOP_CASE(multi, "\xe2\x82\xac \xe2\x82\xac\xe2\x82\xac", "\xe2\x82\xac ", 1);
	STOP_CASE(multi, "caf\xc3\xa9", "caf\xc3\xa9", 0);
	STOP_CASE(nl, "Hello\nthere\n\nUser: hi", "Hello\nthere", 1);
	STOP_CASE(nl, "## a #", "## a #", 0);
	STOP_CASE(nl, "## a ###", "## a ", 1);

	/* held bytes come out as soon as they cannot start a stop any more */
	struct oai_request r = stop_req(aab, 1);
	struct oai_stop s;
	uint8_t out[256];
	oai_stop_init(&s, &r);
	CHECK(oai_stop_push(&s, "xa", 2, out) == 1 && out[0] == 'x' && s.n_held == 1, "holds 'a'");
	CHECK(oai_stop_push(&s, "a", 1, out) == 0 && s.n_held == 2, "holds 'aa'");
	CHECK(oai_stop_push(&s, "a", 1, out) == 1 && out[0] == 'a' && s.n_held == 2, "releases one 'a'");
	CHECK(oai_stop_push(&s, "c", 1, out) == 3 && !memcmp(out, "aac", 3) && s.n_held == 0, "releases all");
	CHECK(oai_stop_push(&s, "aa", 2, out) == 0 && oai_stop_flush(&s, out) == 2 && !memcmp(out, "aa", 2),
	      "flush releases held bytes");
	CHECK(s.n_held == 0 && oai_stop_flush(&s, out) == 0, "flush empties");
	CHECK(oai_stop_push(&s, "zaab", 4, out) == 1 && out[0] == 'z' && s.matched, "match");
	CHECK(oai_stop_push(&s, "more", 4, out) == 0 && oai_stop_flush(&s, out) == 0, "nothing after a match");
	/* no stop sequences: everything passes at once */
	oai_stop_init(&s, NULL);
	CHECK(oai_stop_push(&s, "abc", 3, out) == 3 && oai_stop_flush(&s, out) == 0 && !s.matched, "no stops");
	r = stop_req(aab, 0);
	oai_stop_init(&s, &r);
	CHECK(oai_stop_push(&s, "aab", 3, out) == 3, "zero stops");
	/* init keeps only usable entries */
	r = stop_req(aab, 1);
	r.n_stop = 9;
	oai_stop_init(&s, &r);
	CHECK(s.n == 1, "bad entries dropped");
	/* a 64-byte stop held across pushes */
	static const char *const long_stop[] = {"0123456789012345678901234567890123456789012345678901234567890123"};
	STOP_CASE(long_stop, "--0123456789012345678901234567890123456789012345678901234567890123--", "--", 1);
	STOP_CASE(long_stop, "--012345678901234567890123456789012345678901234567890123456789012-", 
		  "--012345678901234567890123456789012345678901234567890123456789012-", 0);

	/* random: stops over a small alphabet, random cuts, against the reference */
	int bad = 0;
	for (int iter = 0; iter < 20000 && !bad; iter++) {
		char stops_buf[OAI_MAX_STOP][OAI_MAX_STOP_BYTES + 1];
		const char *stops[OAI_MAX_STOP];
		size_t lens[OAI_MAX_STOP], ns = 1 + rnd(OAI_MAX_STOP), alpha = 2 + rnd(3);
		char text[200];
		size_t n = rnd(120), cuts[200], nc = 0;
		for (size_t k = 0; k < ns; k++) {
			lens[k] = 1 + rnd(iter % 10 == 0 ? OAI_MAX_STOP_BYTES : 5);
			for (size_t i = 0; i < lens[k]; i++)
				stops_buf[k][i] = (char)('a' + rnd((uint32_t)alpha));
			stops_buf[k][lens[k]] = '\0';
			stops[k] = stops_buf[k];
		}
		for (size_t i = 0; i < n; i++)
			text[i] = (char)('a' + rnd((uint32_t)alpha));
		/* sometimes plant a stop */
		if (n > 70 && rnd(2)) {
			size_t k = rnd((uint32_t)ns), at = rnd((uint32_t)(n - lens[k]));
			if (at + lens[k] <= n)
				memcpy(text + at, stops[k], lens[k]);
		}
		for (size_t i = 1; i < n; i++)
			if (rnd(4) == 0)
				cuts[nc++] = i;
		struct oai_request rr = stop_req(stops, ns);
		struct oai_stop ss;
		uint8_t got[400];
		int gm, wm;
		oai_stop_init(&ss, &rr);
		size_t gn = run_stop(&ss, text, n, cuts, nc, got, &gm);
		size_t wn = ref_stop(stops, lens, ns, text, n, &wm);
		if (gn != wn || memcmp(got, text, gn) || gm != wm) {
			bad = 1;
			CHECK(0, "random stop %d: got %zu matched %d, want %zu matched %d", iter, gn, gm, wn, wm);
		}
	}
	CHECK(!bad, "stop sequences agree with the reference");
}

int main(void)
{
	MEM_LEN = oai_mem_size(OAI_MAX_BODY);
	MEM = malloc(MEM_LEN);
	ENC = malloc(MU_WIRE_MAX_FRAME + 1);
	DEC_LEN = mu_msg_mem_size(MU_WIRE_MAX_FRAME);
	DEC_MEM = malloc(DEC_LEN);
	struct json_limits lim = JSON_LIMITS_TOOL;
	if (json_mem_size(&lim, 65536, &DMEM_LEN, NULL) != MU_OK)
		return 1;
	DMEM = malloc(DMEM_LEN);
	if (!MEM || !ENC || !DEC_MEM || !DMEM)
		return 1;

	test_chat_accept();
	test_chat_refuse();
	test_completions();
	test_ollama();
	test_limits();
	test_error_set();
	test_stream_writers();
	test_errors_and_models();
	test_whole();
	test_caps();
	test_created_at();
	test_stop();

	free(BODY);
	free(MEM);
	free(ENC);
	free(DEC_MEM);
	free(DMEM);
	return test_done();
}
