/* fuzz_config.c — libFuzzer target for the config.json parser.
 *
 * Besides "no crash, no UB, no leak", an accepted config must be usable as
 * the engine assumes: positive sizes, heads a multiple of kv heads, an
 * architecture name, eos ids within bounds, rope parameters sane.
 *
 * seeds: tests/fixtures/config tests/fixtures/safetensors/models/llama-sharded
 * dict: tests/fuzz/config.dict
 */
#include <stdint.h>
#include <string.h>

#include "store/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	rl_config c;
	if (rl_config_parse(&c, (const char *)data, size, "fuzz") != 0)
		return 0;
	if (c.hidden_size <= 0 || c.n_layers <= 0 || c.n_heads <= 0 || c.n_kv_heads <= 0 ||
	    c.head_dim <= 0 || c.intermediate_size <= 0 || c.vocab_size <= 0 ||
	    c.n_heads % c.n_kv_heads != 0 || c.n_eos < 0 || c.n_eos > RL_MAX_EOS ||
	    !(c.rope_theta > 0) || !(c.rms_eps >= 0) || !c.architecture[0] ||
	    strlen(c.torch_dtype) >= sizeof c.torch_dtype)
		__builtin_trap();
	if (c.rope_type == RL_ROPE_LLAMA3 &&
	    !(c.rope_high_freq_factor > c.rope_low_freq_factor && c.rope_low_freq_factor > 0 &&
	      c.rope_original_max_position > 0))
		__builtin_trap();
	(void)rl_config_param_count(&c);
	return 0;
}
