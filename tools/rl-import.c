/* rl-import — a GGUF model (llama.cpp's format) as a HuggingFace model directory.
 *
 * Reads MODEL.gguf (any part of a split model opens them all), validates it,
 * and writes DIR: config.json, generation_config.json, tokenizer.json,
 * tokenizer_config.json and the weights dequantized to bf16 (or f16, f32) as
 * (sharded) safetensors under their HF names (lib/store/gguf_hf.h,
 * lib/text/tokenizer_gguf.h say what is mapped and how), streamed tensor by
 * tensor in bounded memory (rl_gguf_hf_write). Everything is written into
 * a temporary directory beside DIR, renamed to DIR at the end: a failed or
 * interrupted import never leaves a directory named DIR.
 */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cli.h"
#include "core/options.h"
#include "core/util.h"
#include "store/gguf.h"
#include "store/gguf_hf.h"
#include "store/model_files.h"
#include "text/tokenizer_gguf.h"

struct opts {
	const char *gguf, *out;
	rl_dtype dtype;
	uint64_t max_shard;
	int force, vocab_only;
};

static void on_dtype(const char *name, const char *arg, void *ctx)
{
	rl_dtype *dt = ctx;
	if (strcmp(arg, "bf16") == 0)
		*dt = RL_DT_BF16;
	else if (strcmp(arg, "f16") == 0)
		*dt = RL_DT_F16;
	else if (strcmp(arg, "f32") == 0)
		*dt = RL_DT_F32;
	else
		rl_usage("%s must be bf16, f16 or f32, not '%s'", name, arg);
}

/* A size, or 0: never a second shard (rl_model_write's max_shard_bytes). */
static void on_shard_size(const char *name, const char *arg, void *ctx)
{
	*(uint64_t *)ctx = strcmp(arg, "0") == 0 ? 0 : rl_parse_size(name, arg);
}

static void parse_args(struct opts *o, int argc, char **argv)
{
	memset(o, 0, sizeof *o);
	o->dtype = RL_DT_BF16;
	o->max_shard = 5ull << 30;
	const rl_opt table[] = {
		RL_OPT_OUTPUT('o', "DIR", &o->out,
			      "the directory to create (refused if it exists)"),
		RL_OPT_CALL(0, "dtype", "T", on_dtype, &o->dtype,
			    "weights as bf16 (default), f16 or f32"),
		RL_OPT_CALL(0, "max-shard-size", "SIZE", on_shard_size, &o->max_shard,
			    "start a new safetensors shard past SIZE bytes (K, M, G suffixes; "
			    "default 5G; 0: one file)"),
		RL_OPT_FLAG(0, "force", &o->force, "replace DIR if it exists"),
		RL_OPT_FLAG(0, "vocab-only", &o->vocab_only, "write only the tokenizer files"),
		RL_OPT_QUIET("no progress or summary"),
		RL_OPTS_END,
	};
	const rl_cmd cmd = {
		"rl-import [--dtype bf16|f16|f32] [--max-shard-size SIZE] [--force]\n"
		"          [--vocab-only] [-q] MODEL.gguf -o DIR",
		"Write a GGUF model (llama, qwen2, qwen3, gemma, gemma2, gemma3, olmo2, phi3; any\n"
		"part of a split model) as a HuggingFace model directory: config, tokenizer\n"
		"and safetensors weights.",
		table,
		NULL,
	};
	int i = rl_opts_parse(&cmd, argc, argv);
	if (i + 1 != argc)
		rl_usage(i == argc ? "missing MODEL.gguf" : "too many arguments");
	o->gguf = argv[i];
	if (!o->out)
		rl_usage("missing -o DIR");
}

/* progress of the weights (rl_gguf_hf_write's callback) */
static void progress(void *ctx, size_t tensor, size_t ntensors, const char *name, uint64_t done,
		     uint64_t total)
{
	(void)ctx;
	rl_progress("tensor %zu/%zu %s: %.0f%% of the weights", tensor + 1, ntensors, name,
		    100.0 * (double)done / (double)(total ? total : 1));
}

/* ---- files and directories ---- */
static int write_text(const char *dir, const char *name, const char *text, size_t len)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *fp = fopen(path, "wb");
	if (!fp)
		return rl_error_errno(RL_ESYS, "'%s'", path);
	int bad = fwrite(text, 1, len, fp) != len || fflush(fp) != 0 || fsync(fileno(fp)) != 0;
	if (fclose(fp) != 0 || bad)
		return rl_error_errno(RL_ESYS, "'%s': write", path);
	return RL_OK;
}

static int import(const struct opts *o, const rl_gguf *g, const char *tmp)
{
	int rc;
	rl_gguf_hf m = {0};
	if (!o->vocab_only && (rc = rl_gguf_hf_map(g, &m)))
		return rc;
	rl_gguf_tok_files tf;
	if ((rc = rl_gguf_tokenizer(g, o->vocab_only ? 0 : m.cfg.max_position, &tf)))
		goto out;
	if ((rc = write_text(tmp, "tokenizer.json", tf.tokenizer_json, tf.tokenizer_json_len)) ||
	    (rc = write_text(tmp, "tokenizer_config.json", tf.tokenizer_config,
			     tf.tokenizer_config_len)))
		goto out_tf;
	if (o->vocab_only)
		goto out_tf;
	if ((rc = write_text(tmp, "generation_config.json", tf.generation_config,
			     tf.generation_config_len)))
		goto out_tf;
	double t0 = rl_now();
	rc = rl_gguf_hf_write(tmp, &m, o->dtype, o->max_shard, progress, NULL);
	rl_progress_end();
	if (rc)
		goto out_tf;
	rl_info("%s: %zu tensors, %" PRIu64 " parameters as %s in %.1f s", m.cfg.architecture, m.n,
		m.numel, rl_dtype_name(o->dtype), rl_now() - t0);
out_tf:
	rl_gguf_tok_files_free(&tf);
out:
	rl_gguf_hf_free(&m);
	return rc;
}

int main(int argc, char **argv)
{
	rl_cli_init("rl-import", argc, argv);
	struct opts o;
	parse_args(&o, argc, argv);
	rl_outdir od; /* a new directory beside DIR, renamed to DIR when complete */
	int rc = rl_outdir_begin(&od, o.out, o.force);
	if (rc)
		rl_die_err(rc);
	rl_gguf g;
	if ((rc = rl_gguf_open(&g, o.gguf))) {
		rl_outdir_abort(&od);
		rl_die_err(rc);
	}
	rc = import(&o, &g, od.tmp);
	rl_gguf_close(&g);
	if (rc) {
		rl_outdir_abort(&od);
		rl_die_err(rc);
	}
	if ((rc = rl_outdir_commit(&od)))
		rl_die_err(rc);
	return rl_cli_exit();
}
