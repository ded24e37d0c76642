/* generate.c — benchmark: greedy generation with rl_generate.
 *
 *   build/bench/generate MODEL PROMPTS.json OUT.json [BATCH [PRECISION]]
 *
 * Reads {"prompts": [[ids]...], "max_new_tokens": N} (tests/bench/generate.sh
 * writes it), generates every prompt with no stop token (each gets exactly N
 * new tokens, as transformers' side does), and writes {"outputs": [[ids]...],
 * "seconds", "new_tokens", "tokens_per_s", "peak_rss", "blas", "kernels"}
 * to OUT.json. PRECISION: fp32 or bf16 (default bf16, as rl-eval). Time is
 * generation only (the model is opened, not read, before the clock starts). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "compute/generate.h"
#include "compute/ops.h"
#include "compute/wgemm.h"
#include "core/cli.h"
#include "core/error.h"
#include "core/file.h"
#include "core/jsonl.h"
#include "core/util.h"
#include "store/model.h"

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s MODEL PROMPTS.json OUT.json [BATCH [PRECISION]]\n",
			argv[0]);
		return 2;
	}
	char note[256];
	rl_blas_setup(note, sizeof note);
	if (note[0])
		fprintf(stderr, "generate: %s\n", note);
	int batch = argc > 4 ? atoi(argv[4]) : 32;
	rl_precision prec = RL_PREC_BF16;
	if (argc > 5 && rl_precision_parse(argv[5], &prec)) {
		fprintf(stderr, "generate: '%s': not a precision (fp32, bf16)\n", argv[5]);
		return 2;
	}
	rl_model m;
	if (rl_model_open(&m, argv[1], RL_MODEL_READ)) {
		fprintf(stderr, "generate: %s\n", rl_errmsg());
		return 3;
	}
	char *text;
	size_t len;
	if (rl_read_file(argv[2], &text, &len)) {
		fprintf(stderr, "generate: %s\n", rl_errmsg());
		return 3;
	}
	cJSON *j = cJSON_Parse(text);
	free(text);
	const cJSON *P = cJSON_GetObjectItem(j, "prompts");
	int n = cJSON_GetArraySize(P), max_new = cJSON_GetObjectItem(j, "max_new_tokens")->valueint;
	rl_gen_seq *s = calloc((size_t)n, sizeof *s);
	for (int i = 0; i < n; i++) {
		const cJSON *p = cJSON_GetArrayItem(P, i);
		int k = cJSON_GetArraySize(p);
		int *ids = calloc((size_t)k, sizeof(int));
		for (int t = 0; t < k; t++)
			ids[t] = cJSON_GetArrayItem(p, t)->valueint;
		s[i].prompt = ids;
		s[i].n_prompt = k;
		s[i].out = calloc((size_t)max_new, sizeof(int));
	}
	rl_gen_opts o;
	rl_gen_opts_init(&o);
	o.max_new_tokens = max_new;
	o.batch_size = batch;
	o.precision = prec;
	struct rusage r0, r1;
	getrusage(RUSAGE_SELF, &r0);
	double t0 = rl_now();
	int rc = rl_generate(&m, s, (size_t)n, &o);
	double dt = rl_now() - t0;
	getrusage(RUSAGE_SELF, &r1);
	double cpu = (double)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) +
		     1e-6 * (double)(r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) +
		     (double)(r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) +
		     1e-6 * (double)(r1.ru_stime.tv_usec - r0.ru_stime.tv_usec);
	if (rc) {
		fprintf(stderr, "generate: %s\n", rl_errmsg());
		return rc;
	}
	uint64_t toks = 0;
	cJSON *res = cJSON_CreateObject(), *outs = cJSON_AddArrayToObject(res, "outputs");
	for (int i = 0; i < n; i++) {
		toks += (uint64_t)s[i].n_out;
		cJSON_AddItemToArray(outs, cJSON_CreateIntArray(s[i].out, s[i].n_out));
	}
	cJSON_AddNumberToObject(res, "seconds", dt);
	cJSON_AddNumberToObject(res, "cpu_seconds", cpu);
	cJSON_AddNumberToObject(res, "new_tokens", (double)toks);
	cJSON_AddNumberToObject(res, "tokens_per_s", (double)toks / dt);
	cJSON_AddNumberToObject(res, "peak_rss", (double)rl_peak_rss());
	cJSON_AddStringToObject(res, "blas", rl_blas_core());
	char kern[256];
	rl_wgemm_describe(prec, m.lm_head->dtype, kern, sizeof kern);
	cJSON_AddStringToObject(res, "kernels", kern);
	FILE *fp = fopen(argv[3], "w");
	if (!fp || rl_jsonl_write(fp, res) || fclose(fp)) {
		fprintf(stderr, "generate: cannot write '%s'\n", argv[3]);
		return 4;
	}
	fprintf(stderr,
		"generate: %d prompts, %llu new tokens in %.2f s: %.1f tokens/s, peak RSS %.2f "
		"GiB\n",
		n, (unsigned long long)toks, dt, (double)toks / dt,
		(double)rl_peak_rss() / (1u << 30));
	for (int i = 0; i < n; i++) {
		free((void *)s[i].prompt);
		free(s[i].out);
	}
	free(s);
	cJSON_Delete(j);
	cJSON_Delete(res);
	rl_model_close(&m);
	return 0;
}
