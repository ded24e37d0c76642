/* fuzz_adapter.c — libFuzzer target for PEFT adapter directories: the input is
 * an adapter_config.json, read beside a fixed adapter_model.safetensors (the
 * LoRA fixture's), then checked against the fixture's base model.
 *
 * Besides "no crash, no UB, no leak", an adapter that opens and checks must be
 * usable as rl-merge uses it: a rank and an alpha that are positive, every
 * LoRA pair found by its weight's name, every pair's base tensor in the model.
 *
 * seeds: tests/fixtures/lora/llama_bf16/adapter
 * dict: tests/fuzz/config.dict
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/adapter.h"
#include "store/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FIXTURE "tests/fixtures/lora/llama_bf16"

static char dir[64];
static rl_model base;

static void cleanup(void)
{
	char cmd[96];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz_adapter: could not remove %s\n", dir);
}

/* Once: a directory holding the fixture's weights, and the base model. */
static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/fuzz_adapter.%d", (int)getpid());
	char cmd[256];
	snprintf(cmd, sizeof cmd,
		 "mkdir -p %s && cp " FIXTURE "/adapter/adapter_model.safetensors %s/", dir, dir);
	if (system(cmd) != 0 || rl_model_open(&base, FIXTURE "/base", RL_MODEL_READ) != 0)
		abort(); /* run from the repository root (tests/fuzz/run.sh does) */
	atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!dir[0])
		setup();
	char path[96];
	snprintf(path, sizeof path, "%s/adapter_config.json", dir);
	FILE *fp = fopen(path, "wb");
	if (!fp || fwrite(data, 1, size, fp) != size || fclose(fp) != 0)
		abort();
	rl_adapter a;
	if (rl_adapter_open(&a, dir) != 0)
		return 0;
	if (rl_adapter_check(&a, &base, 0) == 0) {
		if (!(a.r > 0) || !(a.alpha > 0))
			__builtin_trap();
		for (size_t i = 0; i < a.nloras; i++)
			if (rl_adapter_find(&a, a.loras[i].weight) != &a.loras[i] ||
			    !rl_model_find(&base, a.loras[i].weight))
				__builtin_trap();
	}
	rl_adapter_close(&a);
	return 0;
}
