/* test_proto.c — wire protocol v1 messages (src/wire/proto.c).
 *
 * - Round trips: every message type encoded, decoded and compared field by field; hand-written
 *   bodies in other spellings (escapes, 1e1, whitespace) decode and re-encode to the same message.
 * - Member tables: for every type, each required member dropped, an unknown member added and
 *   each member given every other JSON type must be bad_message.
 * - The bad-body table: every code with its reason (UTF-8, JSON limits, types, ranges, ids,
 *   messages, hex, texts), and the classification order (shape before range).
 * - Frames of the wire size: length 0, max + 1, exactly max (a 1 MiB prompt decodes).
 * - A seeded mutation loop over valid bodies: decoding never crashes, and every success
 *   re-encodes and re-decodes to the same message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/kbs_proto.h"
#include "base/limits.h"
#include "test.h"
#include "wire/frame.h"
#include "wire/json.h"
#include "wire/proto.h"

static uint8_t *MEM, *MEM2;
static size_t MEM_LEN;

static enum mu_wire_code decn(struct mu_msg *m, const void *body, size_t n, struct mu_error *err)
{
	return mu_msg_decode(m, body, n, MEM, MEM_LEN, err);
}

static enum mu_wire_code dec(struct mu_msg *m, const char *body, struct mu_error *err)
{
	return decn(m, body, strlen(body), err);
}

static const uint8_t NONCE[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
				  17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 0xff};

/* Encodes m with the matching encoder (evidence with fixed claims); 0 when it has none. */
static size_t encode(const struct mu_msg *m, char *buf, size_t cap)
{
	switch (m->type) {
	case MU_MSG_HELLO:
		return m->hello.version == MU_WIRE_VERSION ? mu_msg_hello(buf, cap, m->hello.nonce) : 0;
	case MU_MSG_EVIDENCE: {
		static const uint8_t cfg[] = "{\"egress_bytes_per_s\":1}";
		struct mu_dev_claims c = {.config = cfg, .config_len = sizeof cfg - 1};
		size_t n = 0;
		if (strcmp(m->evidence.format, "dev"))
			return 0;
		memset(c.binary_sha256, 0x11, 32);
		memset(c.sealed_header_sha256, 0x22, 32);
		return mu_kbs_msg_evidence_dev(buf, cap, &n, m->evidence.nonce, m->evidence.pubkey,
					       m->evidence.measurement, m->evidence.key_id, &c, NULL) == MU_OK ? n : 0;
	}
	case MU_MSG_UNLOCK:
		return mu_msg_unlock(buf, cap, m->unlock.key_id, m->unlock.kbs_pub, m->unlock.wrapped_key);
	case MU_MSG_READY:
		return mu_msg_ready(buf, cap, m->ready.model, m->ready.n_ctx, m->ready.max_tokens,
				    m->ready.egress_bytes_per_s, m->ready.egress_burst_bytes);
	case MU_MSG_GENERATE:
		return mu_msg_generate(buf, cap, m);
	case MU_MSG_CANCEL:
		return mu_msg_cancel(buf, cap, m->id);
	case MU_MSG_TOKEN:
		return mu_msg_token(buf, cap, m->id, m->token.text.p, m->token.text.n);
	case MU_MSG_DONE:
		return mu_msg_done(buf, cap, m->id, m->done.finish, m->done.prompt_tokens, m->done.completion_tokens,
				   m->done.elapsed_ms);
	case MU_MSG_ERROR:
		return m->error.code < MU_WIRE_CODE_COUNT
			       ? mu_msg_error(buf, cap, m->has_id ? m->id : NULL, m->error.code, m->error.message)
			       : 0;
	default:
		return 0;
	}
}

/* decode(body) succeeds, and the message re-encoded decodes to the same message again (into
 * a second scratch, so the first decode's strings stay valid). */
static void round_trip(const char *what, const char *body, size_t n, struct mu_msg *out)
{
	static char buf[MU_WIRE_MAX_FRAME + 1];
	struct mu_error err = {0};
	struct mu_msg a, b;
	CHECK(decn(&a, body, n, &err) == MU_WIRE_OK, "%s: %s", what, err.msg);
	size_t len = encode(&a, buf, sizeof buf);
	CHECK(len > 0, "%s: no re-encoding", what);
	CHECK(mu_msg_decode(&b, (const uint8_t *)buf, len, MEM2, MEM_LEN, &err) == MU_WIRE_OK, "%s: re-encoded: %s",
	      what, err.msg);
	CHECK(mu_msg_equal(&a, &b), "%s: re-decoded message differs", what);
	if (out)
		*out = a;
}

/* ---- round trips of each encoder ---- */

static void test_round_trips(void)
{
	char buf[8192];
	struct mu_error err = {0};
	struct mu_msg m, g;
	uint8_t kid[16], pub[32], wrapped[48];
	size_t n;
	for (int i = 0; i < 48; i++)
		wrapped[i] = (uint8_t)(0xf0 ^ i);
	memset(kid, 0xab, 16);
	memset(pub, 0x5c, 32);

	n = mu_msg_hello(buf, sizeof buf, NONCE);
	CHECK(n > 0 && dec(&m, buf, &err) == MU_WIRE_OK, "hello: %s", err.msg);
	CHECK(m.type == MU_MSG_HELLO && m.hello.version == 1 && !memcmp(m.hello.nonce, NONCE, 32), "hello fields");
	CHECK(!m.has_id, "hello has no id");

	static const uint8_t cfg[] = "{\"egress_bytes_per_s\":4096}";
	struct mu_dev_claims c = {.config = cfg, .config_len = sizeof cfg - 1};
	memset(c.binary_sha256, 1, 32);
	memset(c.sealed_header_sha256, 2, 32);
	CHECK(mu_kbs_msg_evidence_dev(buf, sizeof buf, &n, NONCE, pub, wrapped, kid, &c, &err) == MU_OK, "%s", err.msg);
	CHECK(decn(&m, buf, n, &err) == MU_WIRE_OK, "evidence: %s", err.msg);
	CHECK(m.type == MU_MSG_EVIDENCE && !strcmp(m.evidence.format, "dev") && !memcmp(m.evidence.nonce, NONCE, 32) &&
		      !memcmp(m.evidence.pubkey, pub, 32) && !memcmp(m.evidence.measurement, wrapped, 32) &&
		      !memcmp(m.evidence.key_id, kid, 16),
	      "evidence fields");

	n = mu_msg_unlock(buf, sizeof buf, kid, pub, wrapped);
	CHECK(n > 0 && dec(&m, buf, &err) == MU_WIRE_OK, "unlock: %s", err.msg);
	CHECK(m.type == MU_MSG_UNLOCK && !memcmp(m.unlock.key_id, kid, 16) && !memcmp(m.unlock.kbs_pub, pub, 32) &&
		      !memcmp(m.unlock.wrapped_key, wrapped, 48),
	      "unlock fields");

	n = mu_msg_ready(buf, sizeof buf, "stories260K v1.0 (test)", 512, 256, 4096, 8192);
	CHECK(n > 0 && dec(&m, buf, &err) == MU_WIRE_OK, "ready: %s", err.msg);
	CHECK(m.type == MU_MSG_READY && !strcmp(m.ready.model, "stories260K v1.0 (test)") && m.ready.n_ctx == 512 &&
		      m.ready.max_tokens == 256 && m.ready.egress_bytes_per_s == 4096 && m.ready.egress_burst_bytes == 8192,
	      "ready fields");
	CHECK(mu_msg_ready(buf, sizeof buf, "", 1, 1, 1, 1) == 0, "ready: empty model");
	CHECK(mu_msg_ready(buf, sizeof buf, "a\tb", 1, 1, 1, 1) == 0, "ready: tab in model");
	CHECK(mu_msg_ready(buf, sizeof buf, "m", 0, 1, 1, 1) == 0, "ready: n_ctx 0");

	/* generate with a prompt and every parameter set */
	static const char prompt[] = "Once upon a time, \"quoted\" \\ and\nnew line \xc3\xa9 \xf0\x9f\x98\x80 <|eot_id|>";
	memset(&g, 0, sizeof g);
	g.type = MU_MSG_GENERATE;
	strcpy(g.id, "req-1.a_b:c");
	g.has_id = 1;
	g.generate.has_prompt = 1;
	g.generate.prompt = (struct mu_wire_text){prompt, sizeof prompt - 1};
	g.generate.max_tokens = 65536;
	g.generate.temperature = 0.7;
	g.generate.top_p = 0.95;
	g.generate.top_k = 1 << 20;
	g.generate.seed = MU_WIRE_SEED_MAX;
	g.generate.stream = 0;
	n = mu_msg_generate(buf, sizeof buf, &g);
	CHECK(n > 0 && dec(&m, buf, &err) == MU_WIRE_OK, "generate: %s", err.msg);
	CHECK(mu_msg_equal(&m, &g), "generate (prompt) differs after a round trip: %s", buf);

	/* generate with messages, each role, defaults */
	static const char *const contents[3] = {"You are terse.", "Hi \"there\"", ""};
	memset(&g, 0, sizeof g);
	g.type = MU_MSG_GENERATE;
	strcpy(g.id, "x");
	g.has_id = 1;
	g.generate.n_messages = 3;
	for (int i = 0; i < 3; i++) {
		g.generate.role[i] = (enum mu_role)i;
		g.generate.content[i] = (struct mu_wire_text){contents[i], strlen(contents[i])};
	}
	g.generate.max_tokens = 1;
	g.generate.top_p = 1.0;
	g.generate.stream = 1;
	n = mu_msg_generate(buf, sizeof buf, &g);
	CHECK(n > 0 && dec(&m, buf, &err) == MU_WIRE_OK, "generate messages: %s", err.msg);
	CHECK(mu_msg_equal(&m, &g), "generate (messages) differs after a round trip: %s", buf);

	/* numbers the decoder can produce re-encode exactly */
	static const double temps[] = {0.0, -0.0, 1e-22, 0.1, 0.2, 0.3, 1.5, 2.0 / 3.0, 99.99999999999999, 100.0,
				       33.333333333333336, 7e-10, 1.0 / 3.0, 0.125, 0.7000000000000001};
	for (size_t i = 0; i < sizeof temps / sizeof temps[0]; i++)
		for (int digits = 15; digits <= 17; digits++) {
			char body[256];
			snprintf(body, sizeof body,
				 "{\"type\":\"generate\",\"id\":\"t\",\"prompt\":\"p\",\"max_tokens\":1,\"temperature\":%.*g}",
				 digits, temps[i]);
			if (dec(&m, body, &err) != MU_WIRE_OK) /* 17 digits are more than the decoder reads */
				continue;
			n = mu_msg_generate(buf, sizeof buf, &m);
			struct mu_msg m2;
			CHECK(n > 0 && mu_msg_decode(&m2, (const uint8_t *)buf, n, MEM2, MEM_LEN, &err) == MU_WIRE_OK &&
				      mu_msg_equal(&m, &m2),
			      "temperature %.17g: %s", temps[i], buf);
		}
	/* every decimal with up to 16 digits in range reads back: the shortest form is written */
	CHECK(dec(&m, "{\"type\":\"generate\",\"id\":\"t\",\"prompt\":\"p\",\"max_tokens\":1,\"top_p\":0.1000}", &err) ==
		      MU_WIRE_OK,
	      "%s", err.msg);
	n = mu_msg_generate(buf, sizeof buf, &m);
	CHECK(n > 0 && strstr(buf, "\"top_p\":0.1,") != NULL, "shortest form of 0.1: %s", buf);
	CHECK(dec(&m, "{\"type\":\"generate\",\"id\":\"t\",\"prompt\":\"p\",\"max_tokens\":1,\"top_p\":1e-22}", &err) ==
		      MU_WIRE_OK,
	      "%s", err.msg);
	n = mu_msg_generate(buf, sizeof buf, &m);
	struct mu_msg m3;
	CHECK(n > 0 && mu_msg_decode(&m3, (const uint8_t *)buf, n, MEM2, MEM_LEN, &err) == MU_WIRE_OK && mu_msg_equal(&m, &m3), "top_p 1e-22: %s", buf);
	g = m;
	g.generate.temperature = 0.1 + 0.2; /* 0.30000000000000004: needs 17 digits */
	CHECK(mu_msg_generate(buf, sizeof buf, &g) == 0, "a double no decimal of <= 16 digits reads back to");
	g.generate.temperature = 101;
	CHECK(mu_msg_generate(buf, sizeof buf, &g) == 0, "temperature out of range");
	g.generate.temperature = 0;
	strcpy(g.id, "bad id");
	CHECK(mu_msg_generate(buf, sizeof buf, &g) == 0, "bad id");
	strcpy(g.id, "ok");
	g.generate.prompt = (struct mu_wire_text){"a\0b", 3};
	CHECK(mu_msg_generate(buf, sizeof buf, &g) == 0, "NUL in a prompt");
	g.generate.prompt = (struct mu_wire_text){"\xff", 1};
	CHECK(mu_msg_generate(buf, sizeof buf, &g) == 0, "invalid UTF-8 in a prompt");
	g.generate.prompt = (struct mu_wire_text){"ok", 2};
	CHECK(mu_msg_generate(buf, 20, &g) == 0, "buffer too small");

	n = mu_msg_cancel(buf, sizeof buf, "req-1");
	CHECK(n > 0 && dec(&m, buf, &err) == MU_WIRE_OK && m.type == MU_MSG_CANCEL && !strcmp(m.id, "req-1") && m.has_id,
	      "cancel: %s", err.msg);
	CHECK(mu_msg_cancel(buf, sizeof buf, "") == 0, "cancel with an empty id");

	static const char tok[] = "\t\"tab\" \\ \x01 \xe2\x82\xac";
	n = mu_msg_token(buf, sizeof buf, "r", tok, sizeof tok - 1);
	CHECK(n > 0 && dec(&m, buf, &err) == MU_WIRE_OK, "token: %s", err.msg);
	CHECK(m.type == MU_MSG_TOKEN && m.token.text.n == sizeof tok - 1 && !memcmp(m.token.text.p, tok, sizeof tok - 1),
	      "token text");
	n = mu_msg_token(buf, sizeof buf, "r", "", 0);
	CHECK(n > 0 && dec(&m, buf, &err) == MU_WIRE_OK && m.token.text.n == 0, "empty token: %s", err.msg);
	CHECK(mu_msg_token(buf, sizeof buf, "r", "\xe2\x82", 2) == 0, "token with half a character");
	CHECK(mu_msg_token(buf, sizeof buf, "r", "a\0", 2) == 0, "token with NUL");
	static char big[MU_WIRE_MAX_TOKEN_TEXT + 1];
	memset(big, 'x', sizeof big);
	CHECK(mu_msg_token(buf, sizeof buf, "r", big, MU_WIRE_MAX_TOKEN_TEXT) > 0, "token of the maximum size");
	CHECK(mu_msg_token(buf, sizeof buf, "r", big, MU_WIRE_MAX_TOKEN_TEXT + 1) == 0, "token over the maximum");

	for (int f = 0; f < 3; f++) {
		n = mu_msg_done(buf, sizeof buf, "r", (enum mu_finish)f, 7, 9, 123);
		CHECK(n > 0 && dec(&m, buf, &err) == MU_WIRE_OK, "done: %s", err.msg);
		CHECK(m.type == MU_MSG_DONE && m.done.finish == (enum mu_finish)f && m.done.prompt_tokens == 7 &&
			      m.done.completion_tokens == 9 && m.done.elapsed_ms == 123 && !strcmp(m.id, "r"),
		      "done fields");
	}
	CHECK(!strcmp(mu_finish_name(MU_FINISH_CANCELLED), "cancelled"), "finish name");
	CHECK(mu_msg_done(buf, sizeof buf, "r", (enum mu_finish)3, 0, 0, 0) == 0, "done: bad finish");

	for (int code = 1; code < MU_WIRE_CODE_COUNT; code++) {
		const char *name = mu_wire_code_name((enum mu_wire_code)code);
		n = mu_msg_error(buf, sizeof buf, code & 1 ? "r" : NULL, (enum mu_wire_code)code, "what went wrong");
		CHECK(n > 0 && dec(&m, buf, &err) == MU_WIRE_OK, "error %s: %s", name, err.msg);
		CHECK(m.type == MU_MSG_ERROR && m.error.code == (enum mu_wire_code)code && !strcmp(m.error.code_name, name) &&
			      !strcmp(m.error.message, "what went wrong") && m.has_id == (code & 1),
		      "error %s fields", name);
		CHECK(mu_wire_code_from_name(name, strlen(name)) == (enum mu_wire_code)code, "code name %s", name);
	}
	CHECK(!strcmp(mu_wire_code_name(MU_WIRE_BAD_JSON), "bad_json") &&
		      !strcmp(mu_wire_code_name(MU_WIRE_OVER_CAPACITY), "over_capacity") &&
		      !strcmp(mu_wire_code_name(MU_WIRE_CODE_COUNT), "unknown"),
	      "code names");
	CHECK(mu_wire_code_from_name("nope", 4) == MU_WIRE_CODE_COUNT, "unknown code name");
	CHECK(mu_msg_error(buf, sizeof buf, NULL, MU_WIRE_OK, "x") == 0, "error with code ok");
	CHECK(mu_msg_error(buf, sizeof buf, "a b", MU_WIRE_BUSY, "x") == 0, "error with a bad id");
	/* the message is tamed and cut as the decoder would see it */
	char longmsg[400];
	memset(longmsg, 'm', sizeof longmsg);
	memcpy(longmsg + 254, "\xe2\x82\xac", 3); /* a 3-byte character across the 256-byte limit */
	longmsg[sizeof longmsg - 1] = '\0';
	longmsg[3] = '\n';
	n = mu_msg_error(buf, sizeof buf, NULL, MU_WIRE_INTERNAL, longmsg);
	CHECK(n > 0 && dec(&m, buf, &err) == MU_WIRE_OK, "long error: %s", err.msg);
	CHECK(strlen(m.error.message) == 254 && m.error.message[3] == '?', "long error message cut at a character");
	n = mu_msg_error(buf, sizeof buf, NULL, MU_WIRE_INTERNAL, "bad \xff byte");
	CHECK(n > 0 && dec(&m, buf, &err) == MU_WIRE_OK && !strcmp(m.error.message, "bad ? byte"), "invalid UTF-8 tamed");

	CHECK(!strcmp(mu_msg_type_name(MU_MSG_GENERATE), "generate") && !strcmp(mu_msg_type_name(MU_MSG_TYPE_COUNT), "unknown"),
	      "type names");
	CHECK(mu_wire_id_ok("aZ09._:-", 8) && !mu_wire_id_ok("", 0) && !mu_wire_id_ok("a/b", 3), "id alphabet");
}

/* ---- other spellings decode to the same message ---- */

static void test_spellings(void)
{
	struct mu_error err = {0};
	struct mu_msg m;
	static const char esc[] = "{\"type\":\"gen\\u0065rate\",\"id\":\"\\u0061\",\"prompt\":\"\\u00e9\\ud83d\\ude00\\n\","
			      "\"max_tokens\":1e1,\"temperature\":5e-1,\"top_p\":1.0,\"top_k\":4.0e1,\"seed\":-0,\"stream\":false}";
	round_trip("escapes", esc, sizeof esc - 1, &m);
	CHECK(m.generate.max_tokens == 10 && m.generate.temperature == 0.5 && m.generate.top_k == 40 &&
		      m.generate.seed == 0 && !m.generate.stream && !strcmp(m.id, "a"),
	      "escaped values");
	CHECK(m.generate.prompt.n == 7 && !memcmp(m.generate.prompt.p, "\xc3\xa9\xf0\x9f\x98\x80\n", 7), "prompt escapes");

	static const char *const ok[] = {
		" \t\r\n{\"type\":\"cancel\",\"id\":\"a\"} \n",
		"{\"id\":\"a\",\"type\":\"cancel\"}",
		"{\"type\":\"generate\",\"id\":\"r\",\"messages\":[{\"content\":\"c\",\"role\":\"assistant\"}],\"max_tokens\":5}",
		"{\"type\":\"hello\",\"version\":1,\"nonce\":\"" /* version as written */
		"0000000000000000000000000000000000000000000000000000000000000000\"}",
		"{\"type\":\"error\",\"code\":\"busy\",\"message\":\"\"}",
		"{\"type\":\"done\",\"id\":\"r\",\"finish_reason\":\"length\",\"usage\":{\"completion_tokens\":0,"
		"\"prompt_tokens\":1e2},\"elapsed_ms\":0}",
		"{\"type\":\"token\",\"id\":\"r\",\"text\":\"\\\"\\/\\b\\f\\n\\r\\t\"}",
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
		round_trip(ok[i], ok[i], strlen(ok[i]), NULL);

	/* hello with another version decodes (the enclave answers unsupported_version itself) */
	CHECK(dec(&m, "{\"type\":\"hello\",\"version\":-7,\"nonce\":"
		      "\"0000000000000000000000000000000000000000000000000000000000000000\"}",
		  &err) == MU_WIRE_OK &&
		      m.hello.version == -7,
	      "hello version -7: %s", err.msg);
	/* an error with a code this build does not know */
	CHECK(dec(&m, "{\"type\":\"error\",\"code\":\"future_code\",\"message\":\"m\\u0007\"}", &err) == MU_WIRE_OK &&
		      m.error.code == MU_WIRE_CODE_COUNT && !strcmp(m.error.code_name, "future_code") &&
		      !strcmp(m.error.message, "m?"),
	      "unknown error code: %s", err.msg);
	CHECK(dec(&m, "{\"type\":\"error\",\"code\":\"a\\u0001b\",\"message\":\"m\"}", &err) == MU_WIRE_OK &&
		      !strcmp(m.error.code_name, "a?b"),
	      "code name tamed");
	/* evidence without claims, and with a deep claims object */
	static const char evh[] = "\"nonce\":\"0101010101010101010101010101010101010101010101010101010101010101\","
				  "\"pubkey\":\"0202020202020202020202020202020202020202020202020202020202020202\","
				  "\"measurement\":\"0303030303030303030303030303030303030303030303030303030303030303\","
				  "\"key_id\":\"04040404040404040404040404040404\"";
	char body[1024];
	snprintf(body, sizeof body, "{\"type\":\"evidence\",\"format\":\"tpm2\",%s}", evh);
	CHECK(dec(&m, body, &err) == MU_WIRE_OK && !strcmp(m.evidence.format, "tpm2") && m.evidence.key_id[15] == 4,
	      "evidence without claims: %s", err.msg);
	snprintf(body, sizeof body, "{\"type\":\"evidence\",\"format\":\"dev\",%s,\"claims\":{\"a\":{\"b\":[1]}}}", evh);
	CHECK(dec(&m, body, &err) == MU_WIRE_OK, "evidence with nested claims: %s", err.msg);
}

/* ---- member tables: missing, unknown, wrongly typed ---- */

struct shape {
	const char *type;
	const char *members[10]; /* "\"key\":value"; a leading '?' marks an optional member */
};

static const struct shape shapes[] = {
	{"hello", {"\"version\":1", "\"nonce\":\"" "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a\""}},
	{"evidence",
	 {"\"format\":\"dev\"", "\"nonce\":\"0101010101010101010101010101010101010101010101010101010101010101\"",
	  "\"pubkey\":\"0202020202020202020202020202020202020202020202020202020202020202\"",
	  "\"measurement\":\"0303030303030303030303030303030303030303030303030303030303030303\"",
	  "\"key_id\":\"04040404040404040404040404040404\"", "?\"claims\":{\"config\":\"{}\"}"}},
	{"unlock",
	 {"\"key_id\":\"04040404040404040404040404040404\"",
	  "\"kbs_pub\":\"0202020202020202020202020202020202020202020202020202020202020202\"",
	  "\"wrapped_key\":\"030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303\""}},
	{"ready",
	 {"\"model\":\"m\"", "\"n_ctx\":64", "\"max_tokens\":32", "\"egress_bytes_per_s\":10", "\"egress_burst_bytes\":20"}},
	{"generate",
	 {"\"id\":\"r\"", "\"prompt\":\"p\"", "\"max_tokens\":16", "?\"temperature\":0.5", "?\"top_p\":0.9",
	  "?\"top_k\":3", "?\"seed\":42", "?\"stream\":true"}},
	{"generate", {"\"id\":\"r\"", "\"messages\":[{\"role\":\"user\",\"content\":\"c\"}]", "\"max_tokens\":16"}},
	{"cancel", {"\"id\":\"r\""}},
	{"token", {"\"id\":\"r\"", "\"text\":\"t\""}},
	{"done",
	 {"\"id\":\"r\"", "\"finish_reason\":\"stop\"", "\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}",
	  "\"elapsed_ms\":3"}},
	{"error", {"?\"id\":\"r\"", "\"code\":\"busy\"", "\"message\":\"m\""}},
};

static const char *strip(const char *m) { return m[0] == '?' ? m + 1 : m; }

/* The shape's body with member skip left out, member swap's value replaced by value and
 * extra (may be NULL) appended. */
static void build(char *out, size_t cap, const struct shape *s, int skip, int swap, const char *value,
		  const char *extra)
{
	size_t o = (size_t)snprintf(out, cap, "{\"type\":\"%s\"", s->type);
	for (int i = 0; i < 10 && s->members[i]; i++) {
		if (i == skip)
			continue;
		const char *mm = strip(s->members[i]);
		if (i == swap) {
			const char *colon = strchr(mm, ':');
			o += (size_t)snprintf(out + o, cap - o, ",%.*s:%s", (int)(colon - mm), mm, value);
		} else {
			o += (size_t)snprintf(out + o, cap - o, ",%s", mm);
		}
	}
	if (extra)
		o += (size_t)snprintf(out + o, cap - o, ",%s", extra);
	snprintf(out + o, cap - o, "}");
}

static char kind_of(const char *value)
{
	switch (value[0]) {
	case '"': return 's';
	case '{': return 'o';
	case '[': return 'a';
	case 't': case 'f': return 'b';
	case 'n': return 'n';
	default: return '0';
	}
}

static void test_shapes(void)
{
	static const char *const values[] = {"7", "\"s\"", "true", "null", "[]", "{}"};
	char body[2048];
	struct mu_error err = {0};
	struct mu_msg m;
	for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
		const struct shape *s = &shapes[si];
		build(body, sizeof body, s, -1, -1, NULL, NULL);
		round_trip(body, body, strlen(body), NULL);
		for (int i = 0; i < 10 && s->members[i]; i++) {
			int optional = s->members[i][0] == '?';
			build(body, sizeof body, s, i, -1, NULL, NULL);
			enum mu_wire_code c = dec(&m, body, &err);
			CHECK(c == (optional ? MU_WIRE_OK : MU_WIRE_BAD_MESSAGE), "%s without member %d: %s (%s)", s->type, i,
			      mu_wire_code_name(c), err.msg);
			const char *mm = strip(s->members[i]);
			char kind = kind_of(strchr(mm, ':') + 1);
			for (size_t v = 0; v < sizeof values / sizeof values[0]; v++) {
				if (kind_of(values[v]) == kind)
					continue;
				build(body, sizeof body, s, -1, i, values[v], NULL);
				c = dec(&m, body, &err);
				CHECK(c == MU_WIRE_BAD_MESSAGE, "%s: %s -> %s", body, mu_wire_code_name(c), err.msg);
			}
		}
		build(body, sizeof body, s, -1, -1, NULL, "\"colour\":1");
		CHECK(dec(&m, body, &err) == MU_WIRE_BAD_MESSAGE && strstr(err.msg, "colour"), "unknown member: %s", err.msg);
		/* "type" of the wrong JSON type */
		for (size_t v = 0; v < sizeof values / sizeof values[0]; v++) {
			if (values[v][0] == '"')
				continue;
			char b2[2048];
			build(b2, sizeof b2, s, -1, -1, NULL, NULL);
			snprintf(body, sizeof body, "{\"type\":%s%s", values[v], strchr(b2, ','));
			CHECK(dec(&m, body, &err) == MU_WIRE_BAD_MESSAGE, "type %s: %s", values[v], err.msg);
		}
	}
}

/* ---- the bad-body table ---- */

#define GEN(rest) "{\"type\":\"generate\",\"id\":\"r\"," rest "}"
#define GENP(rest) GEN("\"prompt\":\"p\",\"max_tokens\":8," rest)
#define MSG1 "{\"role\":\"user\",\"content\":\"c\"}"
#define HEX64 "0000000000000000000000000000000000000000000000000000000000000000"

struct bad {
	const char *what;
	const char *body; /* NULL: built in test_bad */
	enum mu_wire_code want;
};

static const struct bad bads[] = {
	{"empty object", "{}", MU_WIRE_BAD_MESSAGE},
	{"type missing", "{\"id\":\"r\"}", MU_WIRE_BAD_MESSAGE},
	{"type a number", "{\"type\":1}", MU_WIRE_BAD_MESSAGE},
	{"type null", "{\"type\":null,\"id\":\"r\"}", MU_WIRE_BAD_MESSAGE},
	{"unknown type", "{\"type\":\"launch\"}", MU_WIRE_UNKNOWN_TYPE},
	{"unknown type with members", "{\"type\":\"Hello\",\"version\":1}", MU_WIRE_UNKNOWN_TYPE},
	{"type v0", "{\"prompt\":\"x\",\"max_new_tokens\":3}", MU_WIRE_BAD_MESSAGE},
	{"duplicate keys", "{\"type\":\"cancel\",\"id\":\"a\",\"id\":\"b\"}", MU_WIRE_BAD_JSON},
	{"duplicate escaped key", "{\"type\":\"cancel\",\"id\":\"a\",\"\\u0069d\":\"b\"}", MU_WIRE_BAD_JSON},
	{"duplicate type", "{\"type\":\"cancel\",\"type\":\"cancel\",\"id\":\"a\"}", MU_WIRE_BAD_JSON},
	{"depth 5", "{\"type\":\"cancel\",\"id\":\"a\",\"x\":[[[[1]]]]}", MU_WIRE_BAD_JSON},
	{"depth 4 is JSON", "{\"type\":\"cancel\",\"id\":\"a\",\"x\":[[[1]]]}", MU_WIRE_BAD_MESSAGE},
	{"depth 5 in messages", GEN("\"messages\":[{\"role\":\"user\",\"content\":\"c\",\"x\":[[1]]}],\"max_tokens\":1"),
	 MU_WIRE_BAD_JSON},
	{"array root", "[]", MU_WIRE_BAD_JSON},
	{"string root", "\"type\"", MU_WIRE_BAD_JSON},
	{"number root", "1", MU_WIRE_BAD_JSON},
	{"whitespace only", "  ", MU_WIRE_BAD_JSON},
	{"trailing bytes", "{\"type\":\"cancel\",\"id\":\"a\"} x", MU_WIRE_BAD_JSON},
	{"two objects", "{\"type\":\"cancel\",\"id\":\"a\"}{}", MU_WIRE_BAD_JSON},
	{"trailing comma", "{\"type\":\"cancel\",\"id\":\"a\",}", MU_WIRE_BAD_JSON},
	{"single quotes", "{'type':'cancel'}", MU_WIRE_BAD_JSON},
	{"truncated", "{\"type\":\"cancel\",\"id\":\"a\"", MU_WIRE_BAD_JSON},
	{"NaN", GENP("\"temperature\":NaN"), MU_WIRE_BAD_JSON},
	{"number of 33 characters", GENP("\"seed\":100000000000000000000000000000000"), MU_WIRE_BAD_JSON},
	{"leading zero", GENP("\"seed\":01"), MU_WIRE_BAD_JSON},
	{"raw control byte in a string", GEN("\"prompt\":\"a\tb\",\"max_tokens\":1"), MU_WIRE_BAD_JSON},
	{"invalid UTF-8 in a prompt", GEN("\"prompt\":\"a\xff" "b\",\"max_tokens\":1"), MU_WIRE_INVALID_UTF8},
	{"invalid UTF-8 outside strings", "{\"type\":\"cancel\",\"id\":\"a\"}\xff", MU_WIRE_INVALID_UTF8},
	{"overlong slash", GEN("\"prompt\":\"\xc0\xaf\",\"max_tokens\":1"), MU_WIRE_INVALID_UTF8},
	{"overlong 3-byte NUL", GEN("\"prompt\":\"\xe0\x80\x80\",\"max_tokens\":1"), MU_WIRE_INVALID_UTF8},
	{"UTF-8 surrogate", GEN("\"prompt\":\"\xed\xa0\x80\",\"max_tokens\":1"), MU_WIRE_INVALID_UTF8},
	{"above U+10FFFF", GEN("\"prompt\":\"\xf4\x90\x80\x80\",\"max_tokens\":1"), MU_WIRE_INVALID_UTF8},
	{"truncated sequence", GEN("\"prompt\":\"\xe2\x82\",\"max_tokens\":1"), MU_WIRE_INVALID_UTF8},
	{"byte-order mark", "\xef\xbb\xbf{\"type\":\"cancel\",\"id\":\"a\"}", MU_WIRE_BAD_JSON},
	{"lone surrogate escape", GEN("\"prompt\":\"\\ud800\",\"max_tokens\":1"), MU_WIRE_BAD_JSON},
	{"lone low surrogate escape", GEN("\"prompt\":\"\\udc00x\",\"max_tokens\":1"), MU_WIRE_BAD_JSON},
	{"bad escape", GEN("\"prompt\":\"\\x41\",\"max_tokens\":1"), MU_WIRE_BAD_JSON},
	{"invalid UTF-8 before bad JSON", "{\xff", MU_WIRE_INVALID_UTF8},
	{"bad JSON before unknown type", "{\"type\":\"zz\",}", MU_WIRE_BAD_JSON},
	{"unknown type before unknown member", "{\"type\":\"zz\",\"colour\":1}", MU_WIRE_UNKNOWN_TYPE},
	/* generate ranges */
	{"max_tokens 0", GEN("\"prompt\":\"p\",\"max_tokens\":0"), MU_WIRE_BAD_REQUEST},
	{"max_tokens 65537", GEN("\"prompt\":\"p\",\"max_tokens\":65537"), MU_WIRE_BAD_REQUEST},
	{"max_tokens 1.5", GEN("\"prompt\":\"p\",\"max_tokens\":1.5"), MU_WIRE_BAD_REQUEST},
	{"max_tokens -1", GEN("\"prompt\":\"p\",\"max_tokens\":-1"), MU_WIRE_BAD_REQUEST},
	{"max_tokens 1e30", GEN("\"prompt\":\"p\",\"max_tokens\":1e30"), MU_WIRE_BAD_REQUEST},
	{"max_tokens a string", GEN("\"prompt\":\"p\",\"max_tokens\":\"8\""), MU_WIRE_BAD_MESSAGE},
	{"max_tokens 65536", GEN("\"prompt\":\"p\",\"max_tokens\":65536"), MU_WIRE_OK},
	{"max_tokens 1.0", GEN("\"prompt\":\"p\",\"max_tokens\":1.0"), MU_WIRE_OK},
	{"temperature -0.1", GENP("\"temperature\":-0.1"), MU_WIRE_BAD_REQUEST},
	{"temperature 100.5", GENP("\"temperature\":100.5"), MU_WIRE_BAD_REQUEST},
	{"temperature 200", GENP("\"temperature\":200"), MU_WIRE_BAD_REQUEST},
	{"temperature 1e400", GENP("\"temperature\":1e400"), MU_WIRE_BAD_REQUEST},
	{"temperature with 20 digits", GENP("\"temperature\":0.12345678901234567890"), MU_WIRE_BAD_REQUEST},
	{"temperature 100", GENP("\"temperature\":100"), MU_WIRE_OK},
	{"temperature -0", GENP("\"temperature\":-0"), MU_WIRE_OK},
	{"top_p 0", GENP("\"top_p\":0"), MU_WIRE_BAD_REQUEST},
	{"top_p 1.1", GENP("\"top_p\":1.1"), MU_WIRE_BAD_REQUEST},
	{"top_p -0.5", GENP("\"top_p\":-0.5"), MU_WIRE_BAD_REQUEST},
	{"top_p 1", GENP("\"top_p\":1"), MU_WIRE_OK},
	{"top_p 1e-9", GENP("\"top_p\":1e-9"), MU_WIRE_OK},
	{"top_k -1", GENP("\"top_k\":-1"), MU_WIRE_BAD_REQUEST},
	{"top_k 2^20+1", GENP("\"top_k\":1048577"), MU_WIRE_BAD_REQUEST},
	{"top_k 0.5", GENP("\"top_k\":0.5"), MU_WIRE_BAD_REQUEST},
	{"top_k 2^20", GENP("\"top_k\":1048576"), MU_WIRE_OK},
	{"seed 2^53", GENP("\"seed\":9007199254740992"), MU_WIRE_BAD_REQUEST},
	{"seed -1", GENP("\"seed\":-1"), MU_WIRE_BAD_REQUEST},
	{"seed 2^53-1", GENP("\"seed\":9007199254740991"), MU_WIRE_OK},
	{"stream 1", GENP("\"stream\":1"), MU_WIRE_BAD_MESSAGE},
	{"temperature a string", GENP("\"temperature\":\"0.5\""), MU_WIRE_BAD_MESSAGE},
	/* ids */
	{"id empty", "{\"type\":\"cancel\",\"id\":\"\"}", MU_WIRE_BAD_MESSAGE},
	{"id 65 bytes", "{\"type\":\"cancel\",\"id\":\"" HEX64 "a\"}", MU_WIRE_BAD_MESSAGE},
	{"id 64 bytes", "{\"type\":\"cancel\",\"id\":\"" HEX64 "\"}", MU_WIRE_OK},
	{"id with a space", "{\"type\":\"cancel\",\"id\":\"a b\"}", MU_WIRE_BAD_MESSAGE},
	{"id non-ASCII", "{\"type\":\"cancel\",\"id\":\"caf\xc3\xa9\"}", MU_WIRE_BAD_MESSAGE},
	{"id with a slash", "{\"type\":\"token\",\"id\":\"a/b\",\"text\":\"t\"}", MU_WIRE_BAD_MESSAGE},
	{"id with NUL escape", "{\"type\":\"cancel\",\"id\":\"a\\u0000\"}", MU_WIRE_BAD_MESSAGE},
	{"id escaped but valid", "{\"type\":\"cancel\",\"id\":\"\\u0061\"}", MU_WIRE_OK},
	{"error id bad", "{\"type\":\"error\",\"id\":\"\",\"code\":\"busy\",\"message\":\"m\"}", MU_WIRE_BAD_MESSAGE},
	/* messages */
	{"messages empty", GEN("\"messages\":[],\"max_tokens\":1"), MU_WIRE_BAD_REQUEST},
	{"messages 65", NULL, MU_WIRE_BAD_REQUEST},
	{"messages 64", NULL, MU_WIRE_OK},
	{"messages bad role", GEN("\"messages\":[{\"role\":\"root\",\"content\":\"c\"}],\"max_tokens\":1"),
	 MU_WIRE_BAD_MESSAGE},
	{"messages role case", GEN("\"messages\":[{\"role\":\"User\",\"content\":\"c\"}],\"max_tokens\":1"),
	 MU_WIRE_BAD_MESSAGE},
	{"messages role a number", GEN("\"messages\":[{\"role\":1,\"content\":\"c\"}],\"max_tokens\":1"),
	 MU_WIRE_BAD_MESSAGE},
	{"messages content not a string", GEN("\"messages\":[{\"role\":\"user\",\"content\":1}],\"max_tokens\":1"),
	 MU_WIRE_BAD_MESSAGE},
	{"messages content missing", GEN("\"messages\":[{\"role\":\"user\"}],\"max_tokens\":1"), MU_WIRE_BAD_MESSAGE},
	{"messages extra member", GEN("\"messages\":[{\"role\":\"user\",\"content\":\"c\",\"name\":\"n\"}],\"max_tokens\":1"),
	 MU_WIRE_BAD_MESSAGE},
	{"messages element a string", GEN("\"messages\":[\"hi\"],\"max_tokens\":1"), MU_WIRE_BAD_MESSAGE},
	{"messages content with NUL", GEN("\"messages\":[{\"role\":\"user\",\"content\":\"\\u0000\"}],\"max_tokens\":1"),
	 MU_WIRE_BAD_MESSAGE},
	{"prompt and messages", GEN("\"prompt\":\"p\",\"messages\":[" MSG1 "],\"max_tokens\":1"), MU_WIRE_BAD_MESSAGE},
	{"neither prompt nor messages", GEN("\"max_tokens\":1"), MU_WIRE_BAD_MESSAGE},
	{"prompt with NUL", GEN("\"prompt\":\"a\\u0000\",\"max_tokens\":1"), MU_WIRE_BAD_MESSAGE},
	{"empty prompt", GEN("\"prompt\":\"\",\"max_tokens\":1"), MU_WIRE_OK},
	{"shape before range", GEN("\"messages\":[{\"role\":\"x\",\"content\":\"c\"}],\"max_tokens\":0"),
	 MU_WIRE_BAD_MESSAGE},
	{"shape before range (stream)", GENP("\"top_p\":0,\"stream\":\"yes\""), MU_WIRE_BAD_MESSAGE},
	{"type before range", GENP("\"seed\":-1,\"top_k\":[]"), MU_WIRE_BAD_MESSAGE},
	/* hex, texts and the other messages */
	{"hello nonce upper case", "{\"type\":\"hello\",\"version\":1,\"nonce\":\"" "0A00000000000000000000000000000000000000000000000000000000000000\"}",
	 MU_WIRE_BAD_MESSAGE},
	{"hello nonce short", "{\"type\":\"hello\",\"version\":1,\"nonce\":\"00\"}", MU_WIRE_BAD_MESSAGE},
	{"hello nonce not hex", "{\"type\":\"hello\",\"version\":1,\"nonce\":\"" "g000000000000000000000000000000000000000000000000000000000000000\"}",
	 MU_WIRE_BAD_MESSAGE},
	{"hello version 1.5", "{\"type\":\"hello\",\"version\":1.5,\"nonce\":\"" HEX64 "\"}", MU_WIRE_BAD_MESSAGE},
	{"hello version 2", "{\"type\":\"hello\",\"version\":2,\"nonce\":\"" HEX64 "\"}", MU_WIRE_OK},
	{"unlock wrapped_key short", "{\"type\":\"unlock\",\"key_id\":\"00000000000000000000000000000000\",\"kbs_pub\":\"" HEX64
	 "\",\"wrapped_key\":\"" HEX64 "\"}",
	 MU_WIRE_BAD_MESSAGE},
	{"evidence extra member", "{\"type\":\"evidence\",\"format\":\"dev\",\"nonce\":\"" HEX64 "\",\"pubkey\":\"" HEX64
	 "\",\"measurement\":\"" HEX64 "\",\"key_id\":\"00000000000000000000000000000000\",\"quote\":{}}",
	 MU_WIRE_BAD_MESSAGE},
	{"evidence format empty", "{\"type\":\"evidence\",\"format\":\"\",\"nonce\":\"" HEX64 "\",\"pubkey\":\"" HEX64
	 "\",\"measurement\":\"" HEX64 "\",\"key_id\":\"00000000000000000000000000000000\"}",
	 MU_WIRE_BAD_MESSAGE},
	{"ready model empty", "{\"type\":\"ready\",\"model\":\"\",\"n_ctx\":1,\"max_tokens\":1,\"egress_bytes_per_s\":1,"
			      "\"egress_burst_bytes\":1}",
	 MU_WIRE_BAD_MESSAGE},
	{"ready model 65 bytes", "{\"type\":\"ready\",\"model\":\"" HEX64 "x\",\"n_ctx\":1,\"max_tokens\":1,"
				 "\"egress_bytes_per_s\":1,\"egress_burst_bytes\":1}",
	 MU_WIRE_BAD_MESSAGE},
	{"ready model 64 bytes", "{\"type\":\"ready\",\"model\":\"" HEX64 "\",\"n_ctx\":1,\"max_tokens\":1,"
				 "\"egress_bytes_per_s\":1,\"egress_burst_bytes\":1}",
	 MU_WIRE_OK},
	{"ready model non-ASCII", "{\"type\":\"ready\",\"model\":\"\xc3\xa9\",\"n_ctx\":1,\"max_tokens\":1,"
				  "\"egress_bytes_per_s\":1,\"egress_burst_bytes\":1}",
	 MU_WIRE_BAD_MESSAGE},
	{"ready n_ctx 0", "{\"type\":\"ready\",\"model\":\"m\",\"n_ctx\":0,\"max_tokens\":1,\"egress_bytes_per_s\":1,"
			  "\"egress_burst_bytes\":1}",
	 MU_WIRE_BAD_MESSAGE},
	{"token text 4097 bytes", NULL, MU_WIRE_BAD_MESSAGE},
	{"token text 4096 bytes", NULL, MU_WIRE_OK},
	{"token text with NUL", "{\"type\":\"token\",\"id\":\"r\",\"text\":\"a\\u0000\"}", MU_WIRE_BAD_MESSAGE},
	{"done bad finish", "{\"type\":\"done\",\"id\":\"r\",\"finish_reason\":\"eos\",\"usage\":{\"prompt_tokens\":1,"
			    "\"completion_tokens\":1},\"elapsed_ms\":1}",
	 MU_WIRE_BAD_MESSAGE},
	{"done usage extra", "{\"type\":\"done\",\"id\":\"r\",\"finish_reason\":\"stop\",\"usage\":{\"prompt_tokens\":1,"
			     "\"completion_tokens\":1,\"total_tokens\":2},\"elapsed_ms\":1}",
	 MU_WIRE_BAD_MESSAGE},
	{"done usage missing", "{\"type\":\"done\",\"id\":\"r\",\"finish_reason\":\"stop\",\"usage\":{\"prompt_tokens\":1},"
			       "\"elapsed_ms\":1}",
	 MU_WIRE_BAD_MESSAGE},
	{"done elapsed -1", "{\"type\":\"done\",\"id\":\"r\",\"finish_reason\":\"stop\",\"usage\":{\"prompt_tokens\":1,"
			    "\"completion_tokens\":1},\"elapsed_ms\":-1}",
	 MU_WIRE_BAD_MESSAGE},
	{"error code ok", "{\"type\":\"error\",\"code\":\"ok\",\"message\":\"m\"}", MU_WIRE_BAD_MESSAGE},
	{"error code empty", "{\"type\":\"error\",\"code\":\"\",\"message\":\"m\"}", MU_WIRE_BAD_MESSAGE},
	{"error code 40 bytes", "{\"type\":\"error\",\"code\":\"0123456789012345678901234567890123456789\",\"message\":\"m\"}",
	 MU_WIRE_BAD_MESSAGE},
	{"error message 257 bytes", NULL, MU_WIRE_BAD_MESSAGE},
	{"error message 256 bytes", NULL, MU_WIRE_OK},
	{"error message with NUL", "{\"type\":\"error\",\"code\":\"busy\",\"message\":\"\\u0000\"}", MU_WIRE_BAD_MESSAGE},
	{"tokens 1024", NULL, MU_WIRE_BAD_MESSAGE},
	{"tokens 1025", NULL, MU_WIRE_BAD_JSON},
};

/* The bodies too long to spell out. */
static const char *built(const char *what, char *buf, size_t cap)
{
	size_t o = 0;
	if (!strncmp(what, "messages 6", 10)) {
		int n = what[10] == '5' ? 65 : 64;
		o = (size_t)snprintf(buf, cap, "{\"type\":\"generate\",\"id\":\"r\",\"max_tokens\":1,\"messages\":[");
		for (int i = 0; i < n; i++)
			o += (size_t)snprintf(buf + o, cap - o, "%s" MSG1, i ? "," : "");
		snprintf(buf + o, cap - o, "]}");
	} else if (!strncmp(what, "token text 409", 14)) {
		size_t n = what[14] == '7' ? 4097 : 4096;
		o = (size_t)snprintf(buf, cap, "{\"type\":\"token\",\"id\":\"r\",\"text\":\"");
		memset(buf + o, 'x', n);
		snprintf(buf + o + n, cap - o - n, "\"}");
	} else if (!strncmp(what, "error message 25", 16)) {
		/* multi-byte characters: the limit is in bytes */
		size_t n = what[16] == '7' ? 257 : 256;
		o = (size_t)snprintf(buf, cap, "{\"type\":\"error\",\"code\":\"busy\",\"message\":\"");
		for (size_t i = 0; i + 2 <= n; i += 2)
			memcpy(buf + o + i, "\xc3\xa9", 2);
		if (n & 1)
			buf[o + n - 1] = 'x';
		snprintf(buf + o + n, cap - o - n, "\"}");
	} else if (!strncmp(what, "tokens 102", 10)) {
		/* root 1, type 2, id 2, "x" 1, the array 1, and the elements */
		int elems = (what[10] == '5' ? 1025 : 1024) - 7;
		o = (size_t)snprintf(buf, cap, "{\"type\":\"cancel\",\"id\":\"a\",\"x\":[");
		for (int i = 0; i < elems; i++)
			o += (size_t)snprintf(buf + o, cap - o, "%s1", i ? "," : "");
		snprintf(buf + o, cap - o, "]}");
	}
	return buf;
}

static void test_bad(void)
{
	static char buf[16384];
	struct mu_error err;
	struct mu_msg m;
	for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
		const struct bad *b = &bads[i];
		const char *body = b->body ? b->body : built(b->what, buf, sizeof buf);
		memset(&err, 0, sizeof err);
		enum mu_wire_code c = dec(&m, body, &err);
		CHECK(c == b->want, "%s: got %s (%s), want %s", b->what, mu_wire_code_name(c), err.msg,
		      mu_wire_code_name(b->want));
		if (c != MU_WIRE_OK) {
			CHECK(m.type == MU_MSG_NONE, "%s: a failed decode leaves the type unset", b->what);
			CHECK(err.msg[0] != '\0', "%s: no error message", b->what);
		}
	}
	/* error messages never quote the text */
	CHECK(dec(&m, GEN("\"prompt\":\"secret words\",\"max_tokens\":0"), &err) == MU_WIRE_BAD_REQUEST &&
		      !strstr(err.msg, "secret"),
	      "message quotes the prompt: %s", err.msg);
	CHECK(dec(&m, GEN("\"prompt\":\"secret\xff\",\"max_tokens\":1"), &err) == MU_WIRE_INVALID_UTF8 &&
		      !strstr(err.msg, "secret") && strstr(err.msg, "offset"),
	      "%s", err.msg);
	/* an empty body, one over the limit, scratch too small */
	CHECK(decn(&m, "", 0, &err) == MU_WIRE_BAD_JSON, "empty body");
	CHECK(mu_msg_decode(&m, (const uint8_t *)"{\"type\":\"cancel\",\"id\":\"a\"}", 26, MEM, 16, &err) == MU_WIRE_INTERNAL,
	      "small scratch");
	CHECK(mu_msg_mem_size(26) < mu_msg_mem_size(1000) && mu_msg_mem_size(1000) >= 1000, "mem size grows");
	CHECK(mu_msg_decode(&m, (const uint8_t *)"{\"type\":\"cancel\",\"id\":\"a\"}", 26, MEM, mu_msg_mem_size(26), &err) ==
		      MU_WIRE_OK,
	      "exact scratch: %s", err.msg);
}

/* ---- frames of the wire's size ---- */

static void test_frames(void)
{
	struct mu_frame_rd r;
	struct mu_error err;
	struct mu_msg m;
	enum mu_frame_state st;
	size_t used;
	uint8_t *fbuf = malloc(MU_WIRE_MAX_FRAME);
	uint8_t *stream = malloc(MU_WIRE_MAX_FRAME + 64);
	static const uint8_t zero_len[4] = {0, 0, 0, 0};
	static const uint8_t over[4] = {0, 0x10, 0, 1}; /* 1 MiB + 1 */

	mu_frame_rd_init(&r, fbuf, MU_WIRE_MAX_FRAME);
	CHECK(mu_frame_rd_feed(&r, zero_len, 4, &used, &st, &err) == MU_ERR_FORMAT, "length 0");
	CHECK(mu_frame_rd_feed(&r, (const uint8_t *)"{}", 2, &used, &st, &err) != MU_OK, "length 0 is sticky");

	mu_frame_rd_init(&r, fbuf, MU_WIRE_MAX_FRAME);
	CHECK(mu_frame_rd_feed(&r, over, 4, &used, &st, &err) == MU_ERR_RANGE, "length max + 1");

	/* exactly the maximum: a generate whose prompt fills the frame, fed in uneven pieces */
	static const char head[] = "{\"type\":\"generate\",\"id\":\"big\",\"max_tokens\":1,\"prompt\":\"";
	size_t hl = sizeof head - 1, body_len = MU_WIRE_MAX_FRAME, pl = body_len - hl - 2;
	CHECK(mu_frame_header(stream, body_len, MU_WIRE_MAX_FRAME, &err) == MU_OK, "header of max");
	memcpy(stream + 4, head, hl);
	memset(stream + 4 + hl, 'a', pl);
	memcpy(stream + 4 + hl + pl, "\"}", 2);
	mu_frame_rd_init(&r, fbuf, MU_WIRE_MAX_FRAME);
	size_t off = 0, piece = 1;
	st = MU_FRAME_MORE;
	while (off < body_len + 4 && st != MU_FRAME_DONE) {
		size_t n = body_len + 4 - off < piece ? body_len + 4 - off : piece;
		CHECK(mu_frame_rd_feed(&r, stream + off, n, &used, &st, &err) == MU_OK, "feed: %s", err.msg);
		off += used;
		piece = piece * 3 + 1;
	}
	CHECK(st == MU_FRAME_DONE && mu_frame_rd_len(&r) == MU_WIRE_MAX_FRAME, "a frame of exactly the maximum");
	CHECK(decn(&m, fbuf, mu_frame_rd_len(&r), &err) == MU_WIRE_OK, "1 MiB generate: %s", err.msg);
	CHECK(m.generate.has_prompt && m.generate.prompt.n == pl, "1 MiB prompt length");
	/* one byte more is too much for the decoder even without the frame layer */
	memcpy(stream, fbuf, MU_WIRE_MAX_FRAME);
	memmove(stream + hl + 1, stream + hl, MU_WIRE_MAX_FRAME - hl);
	CHECK(decn(&m, stream, MU_WIRE_MAX_FRAME + 1, &err) == MU_WIRE_BAD_JSON, "body over the maximum");

	/* two pipelined frames in one buffer: the reader stops at the first */
	char body[128];
	size_t n1 = mu_msg_cancel(body, sizeof body, "one");
	mu_frame_header(stream, n1, MU_WIRE_MAX_FRAME, &err);
	memcpy(stream + 4, body, n1);
	size_t n2 = mu_msg_cancel(body, sizeof body, "two");
	mu_frame_header(stream + 4 + n1, n2, MU_WIRE_MAX_FRAME, &err);
	memcpy(stream + 8 + n1, body, n2);
	mu_frame_rd_init(&r, fbuf, MU_WIRE_MAX_FRAME);
	CHECK(mu_frame_rd_feed(&r, stream, 8 + n1 + n2, &used, &st, &err) == MU_OK && st == MU_FRAME_DONE &&
		      used == 4 + n1,
	      "first of two frames");
	CHECK(decn(&m, fbuf, mu_frame_rd_len(&r), &err) == MU_WIRE_OK && !strcmp(m.id, "one"), "first frame decodes");
	mu_frame_rd_next(&r);
	CHECK(mu_frame_rd_feed(&r, stream + used, 4 + n2, &used, &st, &err) == MU_OK && st == MU_FRAME_DONE,
	      "second frame");
	CHECK(decn(&m, fbuf, mu_frame_rd_len(&r), &err) == MU_WIRE_OK && !strcmp(m.id, "two"), "second frame decodes");
	free(fbuf);
	free(stream);
}

/* ---- seeded mutations ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state % n);
}

static void test_mutations(void)
{
	static const char interesting[] = "\"\\{}[],:0123456789-+.eE \x00\x7f\x80\xc3\xff" "u";
	static char seeds[16][2048];
	char body[4096];
	int n_seeds = 0, ok = 0, total = 0, failed = 0;
	for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
		build(seeds[n_seeds++], sizeof seeds[0], &shapes[si], -1, -1, NULL, NULL);
	snprintf(seeds[n_seeds++], sizeof seeds[0], "%s", "{\"type\":\"error\",\"id\":\"x\",\"code\":\"busy\",\"message\":\"\\u00e9\\n\"}");
	snprintf(seeds[n_seeds++], sizeof seeds[0], "%s",
		 "{\"type\":\"generate\",\"id\":\"q\",\"messages\":[{\"role\":\"system\",\"content\":\"s\"},{\"role\":"
		 "\"assistant\",\"content\":\"\\\"a\\\"\"}],\"max_tokens\":7,\"temperature\":1.25,\"top_p\":0.5}");
	for (int iter = 0; iter < 20000; iter++) {
		const char *s = seeds[rnd((uint32_t)n_seeds)];
		size_t n = strlen(s);
		memcpy(body, s, n);
		int edits = rnd(3) ? 1 : 2 + (int)rnd(3);
		for (int e = 0; e < edits && n > 0; e++) {
			size_t at = rnd((uint32_t)n);
			switch (rnd(5)) {
			case 0: body[at] = (char)rnd(256); break;
			case 1: body[at] = interesting[rnd(sizeof interesting - 1)]; break;
			case 2: memmove(body + at, body + at + 1, n - at - 1); n--; break;
			case 3:
				if (n + 1 < sizeof body) {
					memmove(body + at + 1, body + at, n - at);
					body[at] = interesting[rnd(sizeof interesting - 1)];
					n++;
				}
				break;
			default: { /* duplicate a chunk */
				size_t len = 1 + rnd(16);
				if (at + len <= n && n + len < sizeof body) {
					memmove(body + at + len, body + at, n - at);
					n += len;
				}
			}
			}
		}
		struct mu_msg m;
		struct mu_error err;
		total++;
		if (decn(&m, body, n, &err) != MU_WIRE_OK)
			continue;
		ok++;
		if (m.type == MU_MSG_ERROR && m.error.code == MU_WIRE_CODE_COUNT)
			continue;
		if (m.type == MU_MSG_HELLO && m.hello.version != 1)
			continue;
		if (m.type == MU_MSG_EVIDENCE && strcmp(m.evidence.format, "dev"))
			continue;
		int before = test_failed_n;
		round_trip("mutated body", body, n, NULL);
		if (test_failed_n != before && ++failed < 5)
			fprintf(stderr, "  body: %.*s\n", (int)n, body);
	}
	CHECK(ok > 100 && ok < total, "mutations: %d of %d decoded", ok, total);
	printf("mutations: %d bodies, %d decoded and round-tripped\n", total, ok);
}

int main(void)
{
	MEM_LEN = mu_msg_mem_size(MU_WIRE_MAX_FRAME + 1);
	MEM = malloc(MEM_LEN);
	MEM2 = malloc(MEM_LEN);
	if (!MEM || !MEM2)
		return 2;
	test_round_trips();
	test_spellings();
	test_shapes();
	test_bad();
	test_frames();
	test_mutations();
	free(MEM);
	free(MEM2);
	return test_done();
}
