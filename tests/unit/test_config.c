/* test_config.c — config.json parsing against transformers' own reading.
 *
 * Independent truths: (1) the real config.json texts of released models with
 * the hyperparameters their model cards state; (2) tests/fixtures/config/,
 * where tests/gen/gen_config.py had transformers (AutoConfig + the model class)
 * resolve each config.json and wrote what it resolved to (expected.tsv); (3)
 * P for Llama-2-7B, 6,476,267,520, stated in ALGORITHM.md.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/error.h"
#include "core/file.h"
#include "core/inputs.h"
#include "core/jsonl.h"
#include "store/config.h"

static int parse(rl_config *c, const char *json)
{
	rl_error_clear();
	return rl_config_parse(c, json, strlen(json), "config.json");
}

#define BAD(json, needle)                                                                          \
	do {                                                                                       \
		rl_config c_;                                                                      \
		int rc_ = parse(&c_, json);                                                        \
		CHECKF(rc_ == RL_EDATA && strstr(rl_errmsg(), needle), "%s -> %d '%s'", json, rc_, \
		       rl_errmsg());                                                               \
	} while (0)

static const char llama2_7b[] =
	"{\"_name_or_path\": \"meta-llama/Llama-2-7b-chat-hf\", \"architectures\": "
	"[\"LlamaForCausalLM\"], \"bos_token_id\": 1, \"eos_token_id\": 2, \"hidden_act\": "
	"\"silu\", \"hidden_size\": 4096, \"initializer_range\": 0.02, \"intermediate_size\": "
	"11008, \"max_position_embeddings\": 4096, \"model_type\": \"llama\", "
	"\"num_attention_heads\": 32, \"num_hidden_layers\": 32, \"num_key_value_heads\": 32, "
	"\"pretraining_tp\": 1, \"rms_norm_eps\": 1e-05, \"rope_scaling\": null, "
	"\"tie_word_embeddings\": false, \"torch_dtype\": \"float16\", \"transformers_version\": "
	"\"4.32.0.dev0\", \"use_cache\": true, \"vocab_size\": 32000}";

static const char llama31_8b[] =
	"{\"architectures\": [\"LlamaForCausalLM\"], \"attention_bias\": false, "
	"\"attention_dropout\": 0.0, \"bos_token_id\": 128000, \"eos_token_id\": [128001, 128008, "
	"128009], \"hidden_act\": \"silu\", \"hidden_size\": 4096, \"initializer_range\": 0.02, "
	"\"intermediate_size\": 14336, \"max_position_embeddings\": 131072, \"mlp_bias\": false, "
	"\"model_type\": \"llama\", \"num_attention_heads\": 32, \"num_hidden_layers\": 32, "
	"\"num_key_value_heads\": 8, \"pretraining_tp\": 1, \"rms_norm_eps\": 1e-05, "
	"\"rope_scaling\": {\"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, "
	"\"original_max_position_embeddings\": 8192, \"rope_type\": \"llama3\"}, \"rope_theta\": "
	"500000.0, \"tie_word_embeddings\": false, \"torch_dtype\": \"bfloat16\", "
	"\"transformers_version\": \"4.43.0.dev0\", \"use_cache\": true, \"vocab_size\": 128256}";

/* transformers 5 spelling: everything inside rope_parameters */
static const char llama31_v5[] =
	"{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 4096, \"intermediate_size\": "
	"14336, \"max_position_embeddings\": 131072, \"num_attention_heads\": 32, "
	"\"num_hidden_layers\": 32, \"num_key_value_heads\": 8, \"rms_norm_eps\": 1e-05, "
	"\"rope_parameters\": {\"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": "
	"4.0, \"original_max_position_embeddings\": 8192, \"rope_type\": \"llama3\", "
	"\"rope_theta\": 500000.0}, \"vocab_size\": 128256, \"dtype\": \"bfloat16\"}";

static const char mistral_v02[] =
	"{\"architectures\": [\"MistralForCausalLM\"], \"attention_dropout\": 0.0, "
	"\"bos_token_id\": 1, \"eos_token_id\": 2, \"hidden_act\": \"silu\", \"hidden_size\": "
	"4096, "
	"\"initializer_range\": 0.02, \"intermediate_size\": 14336, \"max_position_embeddings\": "
	"32768, \"model_type\": \"mistral\", \"num_attention_heads\": 32, \"num_hidden_layers\": "
	"32, \"num_key_value_heads\": 8, \"rms_norm_eps\": 1e-05, \"rope_theta\": 1000000.0, "
	"\"sliding_window\": null, \"tie_word_embeddings\": false, \"torch_dtype\": \"bfloat16\", "
	"\"transformers_version\": \"4.36.0\", \"use_cache\": true, \"vocab_size\": 32000}";

static const char qwen15_7b[] =
	"{\"architectures\": [\"Qwen2ForCausalLM\"], \"attention_dropout\": 0.0, \"bos_token_id\": "
	"151643, \"eos_token_id\": 151645, \"hidden_act\": \"silu\", \"hidden_size\": 4096, "
	"\"initializer_range\": 0.02, \"intermediate_size\": 11008, \"max_position_embeddings\": "
	"32768, \"max_window_layers\": 28, \"model_type\": \"qwen2\", \"num_attention_heads\": 32, "
	"\"num_hidden_layers\": 32, \"num_key_value_heads\": 32, \"rms_norm_eps\": 1e-06, "
	"\"rope_theta\": 1000000.0, \"sliding_window\": 32768, \"tie_word_embeddings\": false, "
	"\"torch_dtype\": \"bfloat16\", \"transformers_version\": \"4.37.0\", \"use_cache\": true, "
	"\"use_sliding_window\": false, \"vocab_size\": 151936}";

static const char gemma_2b_it[] =
	"{\"architectures\": [\"GemmaForCausalLM\"], \"attention_bias\": false, "
	"\"attention_dropout\": 0.0, \"bos_token_id\": 2, \"eos_token_id\": 1, \"head_dim\": 256, "
	"\"hidden_act\": \"gelu\", \"hidden_size\": 2048, \"initializer_range\": 0.02, "
	"\"intermediate_size\": 16384, \"max_position_embeddings\": 8192, \"model_type\": "
	"\"gemma\", \"num_attention_heads\": 8, \"num_hidden_layers\": 18, "
	"\"num_key_value_heads\": "
	"1, \"pad_token_id\": 0, \"rms_norm_eps\": 1e-06, \"rope_scaling\": null, \"rope_theta\": "
	"10000.0, \"torch_dtype\": \"bfloat16\", \"transformers_version\": \"4.38.0.dev0\", "
	"\"use_cache\": true, \"vocab_size\": 256000}";

static void test_real_configs(void)
{
	rl_config c;
	REQUIRE(parse(&c, llama2_7b) == RL_OK);
	CHECK(c.arch == RL_ARCH_LLAMA);
	CHECK_STR(c.architecture, "LlamaForCausalLM");
	CHECK_STR(c.model_type, "llama");
	CHECK_EQ_INT(c.hidden_size, 4096);
	CHECK_EQ_INT(c.n_layers, 32);
	CHECK_EQ_INT(c.n_heads, 32);
	CHECK_EQ_INT(c.n_kv_heads, 32);
	CHECK_EQ_INT(c.head_dim, 128);
	CHECK_EQ_INT(c.intermediate_size, 11008);
	CHECK_EQ_INT(c.vocab_size, 32000);
	CHECK_EQ_INT(c.max_position, 4096);
	CHECK(c.rms_eps == 1e-5);
	CHECK(c.rope_theta == 10000.0 && c.rope_type == RL_ROPE_DEFAULT);
	CHECK(!c.tie_word_embeddings && !c.attention_bias && !c.o_bias && !c.mlp_bias);
	CHECK(c.act == RL_ACT_SILU && !c.norm_plus_one && !c.embed_scale);
	CHECK(c.bos_token_id == 1 && c.n_eos == 1 && c.eos_token_ids[0] == 2);
	CHECK_STR(c.torch_dtype, "float16");
	CHECK_EQ_INT(c.sliding_window, 0);
	/* P of ALGORITHM.md */
	CHECK(rl_config_param_count(&c) == 6476267520ull);
	CHECK(rl_config_layer_params(&c) == 202383360ull);

	for (int v = 0; v < 2; v++) {
		REQUIRE(parse(&c, v ? llama31_v5 : llama31_8b) == RL_OK);
		CHECK_EQ_INT(c.n_kv_heads, 8);
		CHECK_EQ_INT(c.head_dim, 128);
		CHECK(c.rope_type == RL_ROPE_LLAMA3);
		CHECK(c.rope_theta == 500000.0);
		CHECK(c.rope_factor == 8.0 && c.rope_low_freq_factor == 1.0 &&
		      c.rope_high_freq_factor == 4.0);
		CHECK_EQ_INT(c.rope_original_max_position, 8192);
		CHECK_STR(c.torch_dtype, "bfloat16");
	}
	CHECK(c.bos_token_id == 1 && c.n_eos == 1); /* v5 text has no ids: LlamaConfig's 1, 2 */
	REQUIRE(parse(&c, llama31_8b) == RL_OK);
	CHECK(c.n_eos == 3 && c.eos_token_ids[0] == 128001 && c.eos_token_ids[2] == 128009);

	REQUIRE(parse(&c, mistral_v02) == RL_OK);
	CHECK(c.arch == RL_ARCH_MISTRAL && c.n_kv_heads == 8 && c.head_dim == 128);
	CHECK(c.rope_theta == 1e6 && c.sliding_window == 0 && !c.attention_bias);

	REQUIRE(parse(&c, qwen15_7b) == RL_OK);
	CHECK(c.arch == RL_ARCH_QWEN2 && c.attention_bias && !c.o_bias && !c.mlp_bias);
	CHECK(c.sliding_window == 0 && c.n_kv_heads == 32 && c.bos_token_id == 151643);
	/* per layer: q,k,v,o + biases of q,k,v + mlp + norms */
	CHECK(rl_config_layer_params(&c) ==
	      4ull * 4096 * 4096 + 3ull * 4096 + 3ull * 4096 * 11008 + 2ull * 4096);

	REQUIRE(parse(&c, gemma_2b_it) == RL_OK);
	CHECK(c.arch == RL_ARCH_GEMMA);
	CHECK(c.act == RL_ACT_GELU_TANH); /* "gelu" means the tanh approximation for Gemma */
	CHECK(c.head_dim == 256 && c.n_kv_heads == 1 && c.n_heads == 8);
	CHECK(c.tie_word_embeddings && c.norm_plus_one && c.embed_scale);
	CHECK(c.bos_token_id == 2 && c.n_eos == 1 && c.eos_token_ids[0] == 1);
}

static void test_defaults(void)
{
	rl_config c;
	/* an empty config of each architecture: the configuration class's defaults */
	REQUIRE(parse(&c, "{\"architectures\":[\"LlamaForCausalLM\"]}") == RL_OK);
	CHECK(c.hidden_size == 4096 && c.n_layers == 32 && c.n_kv_heads == 32 &&
	      c.head_dim == 128 && c.intermediate_size == 11008 && c.vocab_size == 32000 &&
	      c.max_position == 2048 && c.rms_eps == 1e-6 && !c.tie_word_embeddings);
	REQUIRE(parse(&c, "{\"architectures\":[\"MistralForCausalLM\"]}") == RL_OK);
	CHECK(c.n_kv_heads == 8 && c.intermediate_size == 14336 && c.sliding_window == 4096 &&
	      c.max_position == 131072);
	/* explicit null is not absence: Optional in LlamaConfig (-> heads), an
	 * error for Mistral's int field */
	REQUIRE(parse(&c, "{\"model_type\":\"llama\",\"num_key_value_heads\":null,"
			  "\"num_attention_heads\":8}") == RL_OK);
	CHECK(c.n_kv_heads == 8 && c.arch == RL_ARCH_LLAMA && c.head_dim == 512);
	BAD("{\"model_type\":\"mistral\",\"num_key_value_heads\":null}",
	    "\"num_key_value_heads\" must be an integer");
	BAD("{\"model_type\":\"gemma\",\"head_dim\":null}", "\"head_dim\" must be an integer");
	REQUIRE(parse(&c, "{\"architectures\":[\"Qwen2ForCausalLM\"],\"num_attention_heads\":"
			  "64}") == RL_OK);
	CHECK(c.n_kv_heads == 32 && c.head_dim == 64 && c.vocab_size == 151936 && c.n_eos == 0 &&
	      c.bos_token_id == -1);
	REQUIRE(parse(&c, "{\"architectures\":[\"GemmaForCausalLM\"]}") == RL_OK);
	CHECK(c.head_dim == 256 && c.n_kv_heads == 16 && c.tie_word_embeddings &&
	      c.act == RL_ACT_GELU_TANH && c.hidden_size == 3072 && c.bos_token_id == 2);
	/* only hidden_act counts in transformers 5 (hidden_activation is ignored) */
	REQUIRE(parse(&c, "{\"architectures\":[\"GemmaForCausalLM\"],\"hidden_act\":"
			  "\"gelu_pytorch_tanh\",\"hidden_activation\":\"gelu\"}") == RL_OK);
	CHECK(c.act == RL_ACT_GELU_TANH);
	/* elsewhere "gelu" is the exact erf GELU */
	REQUIRE(parse(&c, "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_act\":\"gelu\"}") ==
		RL_OK);
	CHECK(c.act == RL_ACT_GELU);
	/* llama biases: attention_bias puts biases on q, k, v and o */
	REQUIRE(parse(&c, "{\"architectures\":[\"LlamaForCausalLM\"],\"attention_bias\":true,"
			  "\"mlp_bias\":true}") == RL_OK);
	CHECK(c.attention_bias && c.o_bias && c.mlp_bias);
	/* qwen2: the biases are fixed by the architecture */
	REQUIRE(parse(&c, "{\"architectures\":[\"Qwen2ForCausalLM\"],\"attention_bias\":false}") ==
		RL_OK);
	CHECK(c.attention_bias && !c.o_bias);
	/* qwen2 sliding window: only with use_sliding_window, from max_window_layers */
	REQUIRE(parse(&c, "{\"architectures\":[\"Qwen2ForCausalLM\"],\"num_hidden_layers\":4,"
			  "\"use_sliding_window\":true,\"sliding_window\":64,"
			  "\"max_window_layers\":2}") == RL_OK);
	CHECK(c.sliding_window == 64 && c.sliding_window_from == 2);
	REQUIRE(parse(&c,
		      "{\"architectures\":[\"Qwen2ForCausalLM\"],\"num_hidden_layers\":4,"
		      "\"use_sliding_window\":true,\"sliding_window\":64,"
		      "\"layer_types\":[\"full_attention\",\"full_attention\",\"full_attention\","
		      "\"sliding_attention\"]}") == RL_OK);
	CHECK(c.sliding_window == 64 && c.sliding_window_from == 3);
	/* linear rope, theta from the top level */
	REQUIRE(parse(&c, "{\"architectures\":[\"LlamaForCausalLM\"],\"rope_theta\":20000,"
			  "\"rope_scaling\":{\"type\":\"linear\",\"factor\":2.0}}") == RL_OK);
	CHECK(c.rope_type == RL_ROPE_LINEAR && c.rope_factor == 2.0 && c.rope_theta == 20000);
	/* llama3 without original_max_position_embeddings: max_position_embeddings */
	REQUIRE(parse(&c, "{\"architectures\":[\"LlamaForCausalLM\"],\"max_position_embeddings\":"
			  "1000,\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8,"
			  "\"low_freq_factor\":1,\"high_freq_factor\":4}}") == RL_OK);
	CHECK(c.rope_original_max_position == 1000);
	/* rope_scaling wins over rope_parameters when both are set */
	REQUIRE(parse(&c, "{\"architectures\":[\"LlamaForCausalLM\"],\"rope_scaling\":{\"type\":"
			  "\"linear\",\"factor\":3},\"rope_parameters\":{\"rope_type\":\"default\","
			  "\"rope_theta\":7.0}}") == RL_OK);
	CHECK(c.rope_type == RL_ROPE_LINEAR && c.rope_factor == 3 && c.rope_theta == 10000);
	/* eos forms */
	REQUIRE(parse(&c, "{\"architectures\":[\"LlamaForCausalLM\"],\"eos_token_id\":null}") ==
		RL_OK);
	CHECK(c.n_eos == 0);
}

static void test_unread_keys(void)
{
	static const char t[] = "{\"architectures\":[\"LlamaForCausalLM\"],\"use_cache\":true,"
				"\"my_field\":1,\"rope_theta\":1e4,\"other\":null}";
	char out[64];
	CHECK_EQ_INT(rl_config_unread_keys(t, sizeof t - 1, out, sizeof out), 2);
	CHECK(strcmp(out, "my_field, other") == 0);
	CHECK_EQ_INT(rl_config_unread_keys(t, sizeof t - 1, out, 12), 2);
	CHECK(strcmp(out, "my_field...") == 0);
	CHECK_EQ_INT(rl_config_unread_keys("[1]", 3, out, sizeof out), 0);
	/* text against json.h's rules is malformed: a key twice, a \u0000 in one */
	static const char dup[] = "{\"my_field\":1,\"my_field\":2}";
	CHECK_EQ_INT(rl_config_unread_keys(dup, sizeof dup - 1, out, sizeof out), 0);
	static const char nul[] = "{\"my\\u0000field\":1}";
	CHECK_EQ_INT(rl_config_unread_keys(nul, sizeof nul - 1, out, sizeof out), 0);
	CHECK(strcmp(rl_errmsg(), "") == 0); /* no error left behind */
}

static void test_errors(void)
{
	BAD("{\"architectures\":[\"GPTNeoXForCausalLM\"]}",
	    "'config.json': unsupported architecture 'GPTNeoXForCausalLM' (realign supports "
	    "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, GemmaForCausalLM, "
	    "Qwen3ForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM, Olmo2ForCausalLM, "
	    "Phi3ForCausalLM)");
	BAD("{\"model_type\":\"gpt_neox\"}", "unsupported model_type 'gpt_neox'");
	/* Gemma 3's multimodal release (its text part is Gemma3ForCausalLM) */
	BAD("{\"architectures\":[\"Gemma3ForConditionalGeneration\"],\"model_type\":\"gemma3\"}",
	    "unsupported architecture 'Gemma3ForConditionalGeneration'");
	BAD("{\"architectures\":[\"Gemma3ForCausalLM\"],\"rope_parameters\":{\"full_attention\":{},"
	    "\"chunked_attention\":{}}}",
	    "'chunked_attention' is not one");
	BAD("{\"architectures\":[\"Gemma3ForCausalLM\"],\"rope_parameters\":{\"sliding_attention\":"
	    "{\"rope_type\":\"linear\",\"factor\":2}}}",
	    "rope scaling on the sliding layers is not supported");
	BAD("{}", "no \"architectures\" or \"model_type\"");
	BAD("{\"architectures\":[]}", "non-empty array of strings");
	BAD("{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"mistral\"}",
	    "does not match model_type 'mistral'");
	BAD("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,\"hidden_size\":32}",
	    "duplicate key \"hidden_size\"");
	BAD("{\"architectures\":[\"LlamaForCausalLM\"],\"rope_scaling\":{\"type\":\"linear\","
	    "\"factor\":2,\"factor\":3}}",
	    "duplicate key \"factor\"");
	BAD("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":\"64\"}",
	    "\"hidden_size\" must be an integer");
	BAD("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64.5}",
	    "\"hidden_size\" must be an integer");
	BAD("{\"architectures\":[\"LlamaForCausalLM\"],\"num_hidden_layers\":0}",
	    "\"num_hidden_layers\" must be an integer in [1,");
	BAD("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":100,\"num_attention_heads\":"
	    "8}",
	    "hidden_size 100 is not a multiple of num_attention_heads 8");
	BAD("{\"architectures\":[\"LlamaForCausalLM\"],\"num_key_value_heads\":5}",
	    "num_attention_heads 32 is not a multiple of num_key_value_heads 5");
	BAD("{\"architectures\":[\"LlamaForCausalLM\"],\"rope_scaling\":{\"rope_type\":\"yarn\","
	    "\"factor\":4}}",
	    "rope type 'yarn' is not supported");
	BAD("{\"architectures\":[\"LlamaForCausalLM\"],\"rope_scaling\":{\"rope_type\":\"llama3\","
	    "\"factor\":8}}",
	    "llama3 rope needs \"low_freq_factor\"");
	BAD("{\"architectures\":[\"LlamaForCausalLM\"],\"rope_scaling\":{\"type\":\"linear\"}}",
	    "linear rope needs \"factor\"");
	BAD("{\"architectures\":[\"LlamaForCausalLM\"],\"partial_rotary_factor\":0.5}",
	    "partial_rotary_factor 0.5 is not supported");
	/* found by fuzz_config (UBSan: a float cast out of int's range) */
	BAD("{\"architectures\":[\"Phi3ForCausalLM\"],\"hidden_size\":64,"
	    "\"num_attention_heads\":4,\"partial_rotary_factor\":7e120}",
	    "partial_rotary_factor 7e+120 of head_dim 16 gives rotary_dim 0");
	BAD("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_act\":\"relu\"}",
	    "unsupported hidden_act 'relu'");
	BAD("{\"architectures\":[\"LlamaForCausalLM\"],\"tie_word_embeddings\":1}",
	    "\"tie_word_embeddings\" must be true or false");
	BAD("{\"architectures\":[\"LlamaForCausalLM\"],\"eos_token_id\":[1,\"2\"]}",
	    "must hold non-negative integers");
	BAD("{\"architectures\":[\"LlamaForCausalLM\"],\"head_dim\":33}", "head_dim 33 is odd");
	BAD("{\"architectures\":[\"LlamaForCausalLM\"],", "malformed JSON");
	BAD("{\"architectures\":[\"LlamaForCausalLM\"]} {}", "trailing characters");
	BAD("[1]", "not a JSON object");
	BAD("{\"architectures\":[\"Llama\xff\"]}", "not valid UTF-8");
	rl_config c;
	CHECK(rl_config_load(&c, "/nonexistent") == RL_EDATA);
	CHECK(strstr(rl_errmsg(), "'/nonexistent/config.json'") != NULL);
}

static int same_config(const rl_config *a, const rl_config *b)
{
	return a->arch == b->arch && strcmp(a->architecture, b->architecture) == 0 &&
	       strcmp(a->model_type, b->model_type) == 0 && a->hidden_size == b->hidden_size &&
	       a->n_layers == b->n_layers && a->n_heads == b->n_heads &&
	       a->n_kv_heads == b->n_kv_heads && a->head_dim == b->head_dim &&
	       a->intermediate_size == b->intermediate_size && a->vocab_size == b->vocab_size &&
	       a->max_position == b->max_position && a->rms_eps == b->rms_eps &&
	       a->rope_theta == b->rope_theta && a->rope_type == b->rope_type &&
	       a->rope_factor == b->rope_factor &&
	       a->rope_low_freq_factor == b->rope_low_freq_factor &&
	       a->rope_high_freq_factor == b->rope_high_freq_factor &&
	       a->rope_original_max_position == b->rope_original_max_position &&
	       a->tie_word_embeddings == b->tie_word_embeddings &&
	       a->attention_bias == b->attention_bias && a->o_bias == b->o_bias &&
	       a->mlp_bias == b->mlp_bias && a->act == b->act &&
	       a->norm_plus_one == b->norm_plus_one && a->embed_scale == b->embed_scale &&
	       a->sliding_window == b->sliding_window &&
	       a->sliding_window_from == b->sliding_window_from &&
	       a->bos_token_id == b->bos_token_id && a->n_eos == b->n_eos &&
	       memcmp(a->eos_token_ids, b->eos_token_ids, sizeof a->eos_token_ids) == 0 &&
	       strcmp(a->torch_dtype, b->torch_dtype) == 0;
}

static void test_write_roundtrip(void)
{
	char dir[256];
	snprintf(dir, sizeof dir, "%s/rl-cfg.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	REQUIRE(mkdtemp(dir) != NULL);
	char path[300];
	snprintf(path, sizeof path, "%s/config.json", dir);
	const char *texts[] = {llama2_7b, llama31_8b, mistral_v02, qwen15_7b, gemma_2b_it};
	for (int i = 0; i < 5; i++) {
		rl_config a, b;
		REQUIRE(parse(&a, texts[i]) == RL_OK);
		a.rms_eps = 1e-5 / 3; /* a float needing 17 digits */
		REQUIRE(rl_config_write(&a, path) == RL_OK);
		REQUIRE(rl_config_load(&b, dir) == RL_OK);
		rl_input_forget(path); /* read back: the next write may replace it */
		CHECKF(same_config(&a, &b), "round trip of config %d", i);
	}
	rl_config a, b;
	rl_config_defaults(&a, RL_ARCH_QWEN2);
	a.n_layers = 4;
	a.sliding_window = 128;
	a.sliding_window_from = 1;
	a.tie_word_embeddings = 1;
	REQUIRE(rl_config_write(&a, path) == RL_OK);
	REQUIRE(rl_config_load(&b, dir) == RL_OK);
	rl_input_forget(path);
	CHECK(same_config(&a, &b));
	rl_config_defaults(&a, RL_ARCH_LLAMA);
	a.rope_type = RL_ROPE_LINEAR;
	a.rope_factor = 4;
	a.attention_bias = a.o_bias = a.mlp_bias = 1;
	REQUIRE(rl_config_write(&a, path) == RL_OK);
	REQUIRE(rl_config_load(&b, dir) == RL_OK);
	rl_input_forget(path);
	CHECK(same_config(&a, &b));
	/* what an architecture cannot express is refused */
	rl_config_defaults(&a, RL_ARCH_QWEN2);
	a.o_bias = 1;
	CHECK(rl_config_write(&a, path) == RL_USAGE);
	rl_config_defaults(&a, RL_ARCH_GEMMA);
	a.act = RL_ACT_GELU;
	CHECK(rl_config_write(&a, path) == RL_USAGE);
	CHECK(access(path, F_OK) == 0);
	unlink(path);
	rmdir(dir);
}

/* expected.tsv (written by transformers): file, then key=value pairs. */
static void test_transformers_fixtures(void)
{
	FILE *fp = fopen(check_fixture("config/expected.tsv"), "r");
	REQUIRE(fp != NULL);
	char line[4096];
	int n = 0;
	while (fgets(line, sizeof line, fp)) {
		if (line[0] == '#' || line[0] == '\n')
			continue;
		line[strcspn(line, "\n")] = 0;
		char *save = NULL, *file = strtok_r(line, "\t", &save);
		char p[512];
		snprintf(p, sizeof p, "config/%s", file);
		char *text;
		size_t len;
		REQUIRE(rl_read_file(check_fixture(p), &text, &len) == RL_OK);
		rl_config c;
		int rc = rl_config_parse(&c, text, len, file);
		/* every field of these files (the releases' among them) is read by
		 * realign or known to leave the computation unchanged */
		char unread[256];
		if (rc == RL_OK)
			CHECKF(rl_config_unread_keys(text, len, unread, sizeof unread) == 0,
			       "%s: keys realign does not know: %s", file, unread);
		free(text);
		char *kv;
		int want_error = 0;
		while ((kv = strtok_r(NULL, "\t", &save))) {
			char *eq = strchr(kv, '=');
			REQUIRE(eq);
			*eq = 0;
			const char *k = kv, *v = eq + 1;
			if (strcmp(k, "error") == 0) {
				want_error = 1;
				CHECKF(rc == RL_EDATA && strstr(rl_errmsg(), v),
				       "%s: want error '%s', got %d '%s'", file, v, rc,
				       rl_errmsg());
				continue;
			}
			if (rc != RL_OK)
				break;
			if (strcmp(k, "windows") == 0) { /* every layer's window, as one string */
				char w[4096];
				size_t at = 0;
				for (int l = 0; l < c.n_layers && at < sizeof w; l++)
					at += (size_t)snprintf(w + at, sizeof w - at, "%s%d",
							       l ? "," : "",
							       rl_config_layer_window(&c, l));
				CHECKF(strcmp(w, v) == 0, "%s: windows %s, transformers says %s",
				       file, w, v);
				continue;
			}
			double got;
			if (strcmp(k, "hidden_size") == 0)
				got = c.hidden_size;
			else if (strcmp(k, "num_hidden_layers") == 0)
				got = c.n_layers;
			else if (strcmp(k, "num_attention_heads") == 0)
				got = c.n_heads;
			else if (strcmp(k, "num_key_value_heads") == 0)
				got = c.n_kv_heads;
			else if (strcmp(k, "head_dim") == 0)
				got = c.head_dim;
			else if (strcmp(k, "intermediate_size") == 0)
				got = c.intermediate_size;
			else if (strcmp(k, "vocab_size") == 0)
				got = c.vocab_size;
			else if (strcmp(k, "max_position_embeddings") == 0)
				got = c.max_position;
			else if (strcmp(k, "rms_norm_eps") == 0)
				got = c.rms_eps;
			else if (strcmp(k, "rope_theta") == 0)
				got = c.rope_theta;
			else if (strcmp(k, "rope_type") == 0)
				got = c.rope_type;
			else if (strcmp(k, "rope_factor") == 0)
				got = c.rope_factor;
			else if (strcmp(k, "rope_low_freq_factor") == 0)
				got = c.rope_low_freq_factor;
			else if (strcmp(k, "rope_high_freq_factor") == 0)
				got = c.rope_high_freq_factor;
			else if (strcmp(k, "rope_original_max_position") == 0)
				got = c.rope_original_max_position;
			else if (strcmp(k, "tie_word_embeddings") == 0)
				got = c.tie_word_embeddings;
			else if (strcmp(k, "q_bias") == 0)
				got = c.attention_bias;
			else if (strcmp(k, "o_bias") == 0)
				got = c.o_bias;
			else if (strcmp(k, "mlp_bias") == 0)
				got = c.mlp_bias;
			else if (strcmp(k, "act") == 0)
				got = c.act;
			else if (strcmp(k, "sliding_window") == 0)
				got = c.sliding_window;
			else if (strcmp(k, "sliding_window_from") == 0)
				got = c.sliding_window_from;
			else if (strcmp(k, "qk_norm") == 0)
				got = c.qk_norm;
			else if (strcmp(k, "norms") == 0)
				got = c.norms;
			else if (strcmp(k, "attn_scale") == 0) /* the module's scaling */
				got = pow(c.query_pre_attn_scalar > 0 ? c.query_pre_attn_scalar
								      : (double)c.head_dim,
					  -0.5);
			else if (strcmp(k, "attn_softcap") == 0)
				got = c.attn_softcap;
			else if (strcmp(k, "final_softcap") == 0)
				got = c.final_softcap;
			else if (strcmp(k, "pad_token_id") == 0)
				got = c.pad_token_id;
			else if (strcmp(k, "rope_local_theta") == 0)
				got = c.rope_local_theta;
			else if (strcmp(k, "fused") == 0)
				got = c.fused_proj;
			else if (strcmp(k, "rotary_dim") == 0)
				got = c.rotary_dim ? c.rotary_dim : c.head_dim;
			else if (strcmp(k, "rope_attn_factor") == 0)
				got = c.rope_attn_factor;
			else if (strcmp(k, "rope_short0") == 0)
				got = c.rope_short[0];
			else if (strcmp(k, "rope_long_last") == 0)
				got = c.rope_long[c.rope_n_factors - 1];
			else if (strcmp(k, "bos_token_id") == 0)
				got = c.bos_token_id;
			else if (strcmp(k, "n_eos") == 0)
				got = c.n_eos;
			else if (strcmp(k, "eos0") == 0)
				got = c.n_eos ? c.eos_token_ids[0] : -1;
			else if (strcmp(k, "param_count") == 0)
				got = (double)rl_config_param_count(&c);
			else {
				CHECKF(0, "%s: unknown key %s", file, k);
				continue;
			}
			CHECKF(got == strtod(v, NULL), "%s: %s = %.17g, transformers says %s", file,
			       k, got, v);
		}
		if (!want_error)
			CHECKF(rc == RL_OK, "%s: %s", file, rl_errmsg());
		n++;
	}
	fclose(fp);
	CHECKF(n >= 8, "only %d transformers configs", n);
}

int main(void)
{
	test_real_configs();
	test_defaults();
	test_errors();
	test_unread_keys();
	test_write_roundtrip();
	test_transformers_fixtures();
	return check_done("test_config");
}
