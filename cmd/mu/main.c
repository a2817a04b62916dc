/* mu — the host-side multi-tool of μInference. */
#include <stdio.h>
#include <string.h>

#include "engine/kernels.h"
#include "host/cli.h"

struct subcommand {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static const struct subcommand subcommands[] = {
	{"run", cmd_run, "generate text from a prompt with a local model"},
	{"logits", cmd_logits, "print the SHA-256 and top-5 of the last position's logits"},
	{"info", cmd_info, "show a GGUF file's metadata, tensors and model shape"},
	{"bench", cmd_bench, "measure prompt-processing and generation speed"},
	{"tokenize", cmd_tokenize, "print the token ids of a text"},
	{"gen-model", cmd_gen_model, "write a random-weight GGUF of a given shape and type"},
	{"vocab", cmd_vocab, "build a vocab-only GGUF from a Hugging Face tokenizer.json"},
	{"kbs", cmd_kbs, "key broker: release model keys to attested enclaves only"},
	{"keygen", cmd_keygen, "write a new random 32-byte model key (mode 0600)"},
	{"seal", cmd_seal, "encrypt and authenticate a GGUF model for the enclave"},
	{"unseal", cmd_unseal, "verify a sealed model by unsealing it into locked memory (--check)"},
	{"proxy", cmd_proxy, "serve clients from an attested enclave: egress cap, budget, filter, audit"},
	{"ask", cmd_ask, "send one prompt through the proxy and stream the answer"},
	{"exfil", cmd_exfil, "the least time to steal a model through the egress cap (table, JSON, SVG plot)"},
	{"surface", cmd_surface, "measure the enclave's attack surface: lines, libraries, syscalls, image"},
	{"audit", cmd_audit, "verify a hash-chained audit log (mu audit verify FILE)"},
	{"keys", cmd_keys, "manage the HTTP API's keys and their limits (add, list, set, remove)"},
	{"vm", cmd_vm, "build the enclave VM image and boot it (QEMU)"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: mu COMMAND [OPTIONS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
		fprintf(f, "  %-10s %s\n", subcommands[i].name, subcommands[i].summary);
	fprintf(f, "\n'mu COMMAND --help' describes a command's options.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	/* The kernel path, once for the process: MU_KERNELS or the best this CPU has. */
	struct mu_error err = {0};
	if (mu_kernels_init(NULL, &err) != MU_OK) {
		fprintf(stderr, "mu: MU_KERNELS: %s\n", err.msg);
		return 2;
	}
	for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
		if (!strcmp(argv[1], subcommands[i].name))
			return subcommands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "mu: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return 2;
}
