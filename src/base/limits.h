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

#endif
