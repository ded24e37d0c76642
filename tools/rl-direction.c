/* rl-direction — the mean hidden state after L layers at the prompts' last token.
 *
 * Reads a model directory and a JSON-lines prompt file, runs the first L
 * decoder layers over all prompts (packed, no padding) and writes a
 * "direction" stream: the mean over the prompts of h_L at each prompt's last
 * token (transformers' hidden_states[L]), and with --per-prompt every
 * prompt's own vector. See rl-direction(1) and rl-stream(5).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compute/engine.h"
#include "core/cli.h"
#include "core/par.h"
#include "store/gstream.h"
#include "store/model.h"
#include "store/stream.h"
#include "text/chat.h"
#include "text/prompts.h"

struct opts {
	const char *model, *prompts, *out;
	int layer_end;
	int batch;
	int max_prompts;
	int per_prompt;
	int threads;
	uint64_t mem_limit;
	rl_chat_opts chat; /* for {"prompt": ...} lines */
};

static void usage(FILE *fp)
{
	fprintf(fp,
		"usage: rl-direction -m MODEL -p PROMPTS.jsonl -L LAYER [options] > DIR.rls\n"
		"Mean hidden state after LAYER layers at the last token of each prompt.\n"
		"\n"
		"  -m, --model DIR        the model directory (HuggingFace safetensors)\n"
		"  -p, --prompts FILE     JSON lines {\"ids\": [...]} or {\"prompt\": \"...\"} "
		"(\"-\" =\n"
		"                         stdin); prompts go through the chat template and\n"
		"                         tokenizer.json (see rl-tok(1))\n"
		"      --template NAME|FILE  chat template (default: from the model's "
		"chat_template)\n"
		"      --raw              prompts without a template\n"
		"      --system TEXT      system prompt (default: the template's)\n"
		"  -L, --layer N          layers to run, 1..n_layers (hidden_states[N])\n"
		"  -n, --max-prompts N    use the first N prompts only\n"
		"  -b, --batch-size N     prompts per forward chunk (memory only; default: all\n"
		"                         that fit in --mem-limit)\n"
		"      --per-prompt       also write each prompt's vector (\"prompt.<i>\")\n"
		"      --mem-limit SIZE   working memory budget, e.g. 8G (default: half the RAM)\n"
		"  -j, --threads N        threads (default: all cores, or OPENBLAS_NUM_THREADS for "
		"BLAS)\n"
		"  -o, --output FILE      write the stream to FILE instead of stdout\n"
		"  -q, --quiet            no messages but errors\n"
		"  -v, --verbose          timings and details\n"
		"  -h, --help             this help\n"
		"      --version          print the version\n");
}

static void parse_args(struct opts *o, int argc, char **argv)
{
	enum { OPT_VERSION = 256, OPT_PER_PROMPT, OPT_MEM, OPT_TEMPLATE, OPT_RAW, OPT_SYSTEM };
	static const struct option longopts[] = {
		{"model", required_argument, NULL, 'm'},
		{"prompts", required_argument, NULL, 'p'},
		{"layer", required_argument, NULL, 'L'},
		{"max-prompts", required_argument, NULL, 'n'},
		{"batch-size", required_argument, NULL, 'b'},
		{"per-prompt", no_argument, NULL, OPT_PER_PROMPT},
		{"mem-limit", required_argument, NULL, OPT_MEM},
		{"threads", required_argument, NULL, 'j'},
		{"output", required_argument, NULL, 'o'},
		{"quiet", no_argument, NULL, 'q'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, OPT_VERSION},
		{"template", required_argument, NULL, OPT_TEMPLATE},
		{"raw", no_argument, NULL, OPT_RAW},
		{"system", required_argument, NULL, OPT_SYSTEM},
		{NULL, 0, NULL, 0},
	};
	memset(o, 0, sizeof *o);
	o->out = "-";
	int c;
	while ((c = getopt_long(argc, argv, "m:p:L:n:b:j:o:qvh", longopts, NULL)) != -1) {
		switch (c) {
		case 'm':
			o->model = optarg;
			break;
		case 'p':
			o->prompts = optarg;
			break;
		case 'L':
			o->layer_end = (int)rl_parse_int("-L", optarg, 1, 1000000);
			break;
		case 'n':
			o->max_prompts = (int)rl_parse_int("-n", optarg, 1, INT32_MAX);
			break;
		case 'b':
			o->batch = (int)rl_parse_int("--batch-size", optarg, 1, INT32_MAX);
			break;
		case OPT_PER_PROMPT:
			o->per_prompt = 1;
			break;
		case OPT_MEM:
			o->mem_limit = rl_parse_size("--mem-limit", optarg);
			break;
		case 'j':
			o->threads = (int)rl_parse_int("--threads", optarg, 1, 4096);
			break;
		case 'o':
			o->out = optarg;
			break;
		case OPT_TEMPLATE:
			o->chat.template_spec = optarg;
			break;
		case OPT_RAW:
			o->chat.raw = 1;
			break;
		case OPT_SYSTEM:
			o->chat.system = optarg;
			break;
		case 'q':
			rl_set_quiet(1);
			break;
		case 'v':
			rl_set_verbose(1);
			break;
		case 'h':
			usage(stdout);
			exit(rl_cli_exit());
		case OPT_VERSION:
			printf("rl-direction %s\n", RL_VERSION);
			exit(rl_cli_exit());
		default:
			rl_usage("unknown option");
		}
	}
	if (optind != argc)
		rl_usage("unexpected argument '%s'", argv[optind]);
	if (!o->model)
		rl_usage("missing -m MODEL");
	if (!o->prompts)
		rl_usage("missing -p PROMPTS");
	if (!o->layer_end)
		rl_usage("missing -L LAYER");
}

static int write_stream(const struct opts *o, const rl_model *m, const rl_prompts *p,
			const float *dir, const float *h)
{
	int C = m->cfg.hidden_size;
	rl_sw *w;
	int rc = rl_sw_open(&w, o->out, "direction", "rl-direction");
	if (rc)
		return rc;
	rl_sw_header_begin(w, 6);
	msgpack_packer *pk = rl_sw_packer(w);
	rl_pack_kv_model(pk, "model", m);
	rl_pack_kv_int(pk, "layer_end", o->layer_end);
	rl_pack_kv_int(pk, "n_prompts", p->n);
	rl_pack_kv_str(pk, "prompts", p->path);
	rl_pack_kv_int(pk, "hidden_size", C);
	rl_pack_kv_bool(pk, "final_norm", o->layer_end == m->cfg.n_layers);
	int64_t shape[1] = {C};
	rc = rl_sw_tensor(w, "direction", RL_DT_F32, 1, shape, dir, (uint64_t)C);
	for (int i = 0; i < p->n && o->per_prompt && !rc; i++) {
		char name[32];
		snprintf(name, sizeof name, "prompt.%d", i);
		rc = rl_sw_tensor(w, name, RL_DT_F32, 1, shape, h + (size_t)i * C, (uint64_t)C);
	}
	if (rc) {
		rl_sw_abort(w);
		return rc;
	}
	return rl_sw_close(w);
}

int main(int argc, char **argv)
{
	rl_cli_init("rl-direction", argc, argv);
	struct opts o;
	parse_args(&o, argc, argv);
	char note[256];
	rl_blas_setup(note, sizeof note);
	if (note[0])
		rl_note("%s", note);
	rl_blas_threads(o.threads);
	if (o.threads)
		rl_par_set_threads(o.threads);

	rl_model m;
	int rc = rl_model_open(&m, o.model, RL_MODEL_READ);
	if (rc)
		rl_die_err(rc);
	if (o.layer_end > m.cfg.n_layers)
		rl_usage("-L %d exceeds the model's %d layers", o.layer_end, m.cfg.n_layers);
	rl_prompts p;
	if (o.chat.raw && o.chat.template_spec)
		rl_usage("--raw and --template exclude each other");
	/* text prompts: chat template + tokenizer.json, loaded at the first one */
	char how[256];
	rl_prompts_opts po = {o.max_prompts, m.cfg.vocab_size, m.cfg.max_position, NULL, NULL};
	rc = rl_chat_prompts_read(&p, o.prompts, po, o.model, &o.chat, how, sizeof how);
	if (*how)
		rl_note("%s", how);
	if (rc)
		rl_die_err(rc);
	if (strcmp(o.out, "-") == 0)
		rl_require_stdout_not_tty();

	int C = m.cfg.hidden_size;
	rl_engine e;
	rl_engine_opts eo = {o.mem_limit, 0};
	float *h = rl_malloc_array((size_t)p.n * C, sizeof *h);
	float *dir = rl_malloc_array((size_t)C, sizeof *dir);
	if (!h || !dir)
		rl_die_err(RL_ESYS);
	if ((rc = rl_engine_init(&e, &m, o.layer_end, p.max_len, &eo)))
		rl_die_err(rc);
	double t0 = rl_now();
	if ((rc = rl_engine_hidden(&e, &p, o.batch, h)))
		rl_die_err(rc);
	for (int c = 0; c < C; c++) {
		double s = 0;
		for (int i = 0; i < p.n; i++)
			s += h[(size_t)i * C + c];
		dir[c] = (float)(s / p.n);
	}
	rl_info("%d prompts, %" PRId64 " tokens, layer %d of %d: %.2f s", p.n, p.ntok, o.layer_end,
		m.cfg.n_layers, rl_now() - t0);
	rl_note("weights widened in %.2f s; peak RSS %.2f GiB; OpenBLAS core %s", e.t_load,
		(double)rl_peak_rss() / (1 << 30), rl_blas_core());
	if ((rc = write_stream(&o, &m, &p, dir, h)))
		rl_die_err(rc);
	rl_engine_free(&e);
	free(h);
	free(dir);
	rl_prompts_free(&p);
	rl_model_close(&m);
	return rl_cli_exit();
}
