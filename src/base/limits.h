/* limits.h — every hard limit of the system in one place (as WireGuard keeps its protocol
 * constants in messages.h). Parsers refuse input past these limits with MU_ERR_RANGE. */
#ifndef MU_BASE_LIMITS_H
#define MU_BASE_LIMITS_H

/* GGUF */
#define MU_GGUF_MAX_KV          65536u      /* metadata key/value pairs in one file */
#define MU_GGUF_MAX_TENSORS     65536u      /* tensors in one file */
#define MU_GGUF_MAX_DIMS        4u          /* dimensions of one tensor */
#define MU_GGUF_MAX_STRING      (1u << 24)  /* bytes in one string (keys, names, values) */
#define MU_GGUF_MAX_KEY         65535u      /* bytes in a key or tensor name */
#define MU_GGUF_MAX_ARRAY       (1u << 24)  /* elements in one array (vocabularies are ~256k) */
#define MU_GGUF_MAX_ALIGNMENT   (1u << 16)  /* general.alignment upper bound (power of two) */

/* Model shape */
#define MU_MAX_LAYERS           512
#define MU_MAX_EMBD             65536
#define MU_MAX_HEADS            1024
#define MU_MAX_HEAD_DIM         1024
#define MU_MAX_VOCAB            (1 << 20)
#define MU_MAX_CTX              (1 << 20)   /* context length a caller may ask for */

/* Engine */
#define MU_MAX_THREADS          256
#define MU_MAX_BATCH            4096        /* tokens in one forward call */

/* Tokenizer */
#define MU_MAX_TOKEN_BYTES      1024        /* bytes in one vocabulary piece */
#define MU_MAX_TEXT_BYTES       ((size_t)1 << 28) /* bytes of text one encode call accepts */

/* JSON: the parser's absolute depth bound, and the limits host tools use for large files they
 * were given (tokenizer.json is ~11 MB with ~800k tokens; numbers up to 31 digits). The wire
 * protocol sets its own, much smaller limits. */
#define MU_JSON_MAX_DEPTH       65536u
#define MU_JSON_TOOL_MAX_BYTES  (1u << 30)
#define MU_JSON_TOOL_MAX_DEPTH  128u
#define MU_JSON_TOOL_MAX_TOKENS (1u << 25)
#define MU_JSON_TOOL_MAX_STRING (1u << 24)
#define MU_JSON_TOOL_MAX_NUMBER 400u

/* Key broker (mu kbs) and its evidence; see docs/key-release.md */
#define MU_KBS_MAX_FRAME        65536u      /* bytes in one frame body (after the 4-byte length) */
#define MU_KBS_MAX_NONCES       4096u       /* challenges remembered at once; the oldest is evicted */
#define MU_KBS_MAX_CONNS        64u         /* connections served at once (default of --max-conns) */
#define MU_KBS_READ_TIMEOUT_MS  5000u       /* time a client has to deliver each frame (default) */
#define MU_KBS_MAX_KEYS         64u         /* model keys one broker holds */
#define MU_KBS_MAX_NONCE_TTL_MS 600000u     /* longest nonce_ttl_ms a policy may set (10 min) */
#define MU_POLICY_MAX_BYTES     (1u << 20)  /* bytes in a policy file */
#define MU_POLICY_MAX_MEASUREMENTS 256u     /* measurements one policy lists */
#define MU_POLICY_MAX_KEY_IDS   16u         /* key ids allowed for one measurement */
#define MU_POLICY_MAX_NOTE      1024u       /* bytes in a measurement's note */
#define MU_POLICY_DEFAULT_MAX_BURST 65536u  /* max_egress_burst_bytes of a policy that sets none */
#define MU_CONFIG_MAX_DEPTH     16u         /* nesting in an enclave config file */
#define MU_CONFIG_MAX_TOKENS    4096u       /* values and keys in an enclave config file */

/* Wire protocol v1 (enclave <-> proxy <-> clients); see docs/protocol.md */
#define MU_WIRE_MAX_FRAME       (1u << 20)  /* bytes in one frame body */
#define MU_WIRE_MAX_DEPTH       4u          /* JSON nesting: object > messages > message */
#define MU_WIRE_MAX_TOKENS      1024u       /* JSON values and keys in one frame */
#define MU_WIRE_MAX_NUMBER      32u         /* characters of one number literal */
#define MU_WIRE_MAX_ID          64u         /* bytes of a request id */
#define MU_WIRE_MAX_MESSAGES    64u         /* chat messages in one generate */
#define MU_WIRE_MAX_GEN_TOKENS  65536       /* largest max_tokens a generate may ask for */
#define MU_WIRE_MAX_TOKEN_TEXT  4096u       /* bytes of text in one token frame */
#define MU_WIRE_MAX_MODEL_NAME  64u         /* bytes of the model name in ready */
#define MU_WIRE_MAX_ERROR_MESSAGE 256u      /* bytes of an error frame's message */
#define MU_WIRE_READ_TIMEOUT_MS 5000u       /* time to finish a frame once its first byte came */
#define MU_WIRE_SEED_MAX        ((1ull << 53) - 1)

/* Enclave (mu-enclave) and proxy (mu proxy) */
#define MU_ENCLAVE_CONFIG_MAX   65536u      /* bytes of an enclave config file */
/* The struct json_limits (wire/json.h) an enclave config is parsed under: by the enclave
 * (enclave/config.c) and by mu vm run, which checks a VM config before it boots the VM. */
#define MU_ENCLAVE_CONFIG_JSON_LIMITS                                                             \
	{                                                                                         \
		.max_bytes = MU_ENCLAVE_CONFIG_MAX, .max_depth = MU_CONFIG_MAX_DEPTH,              \
		.max_tokens = MU_CONFIG_MAX_TOKENS, .max_string = MU_ENCLAVE_CONFIG_MAX,           \
		.max_number = MU_WIRE_MAX_NUMBER, .flags = 0                                       \
	}
#define MU_EGRESS_MAX_RATE      0xffffffffull /* bytes/s a token bucket may be configured with */
#define MU_EGRESS_MAX_BURST     0xffffffffull /* bytes of a token bucket's burst */
#define MU_EGRESS_DEFAULT_BURST 4096u       /* the enclave's egress_burst_bytes when its config sets
                                             * none; the key broker assumes the same */
#define MU_ENCLAVE_PREFILL_CHUNK 16u        /* prompt tokens evaluated between two looks at the
                                             * channel (for a cancel) */
#define MU_PROXY_MAX_CLIENTS    64u         /* client connections at once (default) */
#define MU_PROXY_MAX_QUEUE      64u         /* generate requests waiting for the enclave */
#define MU_FILTER_MAX_PATTERNS  64u         /* deny patterns */
#define MU_FILTER_MAX_PATTERN   256u        /* bytes of one deny pattern */
#define MU_FILTER_MAX_RUN       65536u      /* largest base64/hex run threshold */
#define MU_AUDIT_MAX_LINE       4096u       /* bytes of one audit record */

#endif
