#!/usr/bin/env python3
"""Fixtures for lib/config.c: config.json files and what transformers makes of them.

For each case, tests/fixtures/config/<case>.json is a config.json; transformers
(AutoConfig, then the model class instantiated on the meta device) resolves it, and
expected.tsv records what the MODEL actually uses, read from its modules: projection
sizes (heads, kv heads, head_dim), which projections carry a bias, the activation
(evaluated against the erf and tanh GELU formulas), tied embeddings, Gemma's norm and
embedding scale, the rope parameters after standardisation, sliding windows per
layer, P (decoder-layer parameters). test_config.c parses the same files and must
agree. Cases transformers refuses must be refused by realign too ("error=..." with
realign's message); cases realign deliberately refuses although transformers accepts
them (rope types and activations realign does not implement) are marked so.
"""
import json
import math
import os
import shutil
import sys
import tempfile

import torch
import transformers

transformers.logging.set_verbosity_error()

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(os.path.dirname(HERE), "fixtures", "config")

L2 = {"architectures": ["LlamaForCausalLM"], "bos_token_id": 1, "eos_token_id": 2,
      "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02,
      "intermediate_size": 11008, "max_position_embeddings": 4096, "model_type": "llama",
      "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 32,
      "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": None,
      "tie_word_embeddings": False, "torch_dtype": "float16", "vocab_size": 32000}
L31 = {"architectures": ["LlamaForCausalLM"], "attention_bias": False, "bos_token_id": 128000,
       "eos_token_id": [128001, 128008, 128009], "hidden_act": "silu", "hidden_size": 4096,
       "intermediate_size": 14336, "max_position_embeddings": 131072, "mlp_bias": False,
       "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 32,
       "num_key_value_heads": 8, "rms_norm_eps": 1e-05,
       "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                        "original_max_position_embeddings": 8192, "rope_type": "llama3"},
       "rope_theta": 500000.0, "tie_word_embeddings": False, "vocab_size": 128256}
L32_3B = dict(L31, hidden_size=3072, intermediate_size=8192, num_attention_heads=24,
              num_hidden_layers=28, head_dim=128, tie_word_embeddings=True,
              rope_scaling={"factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                            "original_max_position_embeddings": 8192, "rope_type": "llama3"})
MISTRAL = {"architectures": ["MistralForCausalLM"], "bos_token_id": 1, "eos_token_id": 2,
           "hidden_act": "silu", "hidden_size": 4096, "intermediate_size": 14336,
           "max_position_embeddings": 32768, "model_type": "mistral", "num_attention_heads": 32,
           "num_hidden_layers": 32, "num_key_value_heads": 8, "rms_norm_eps": 1e-05,
           "rope_theta": 1000000.0, "sliding_window": None, "tie_word_embeddings": False,
           "vocab_size": 32000}
QWEN15 = {"architectures": ["Qwen2ForCausalLM"], "bos_token_id": 151643, "eos_token_id": 151645,
          "hidden_act": "silu", "hidden_size": 4096, "intermediate_size": 11008,
          "max_position_embeddings": 32768, "max_window_layers": 28, "model_type": "qwen2",
          "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 32,
          "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768,
          "tie_word_embeddings": False, "use_sliding_window": False, "vocab_size": 151936}
QWEN25_3B = dict(QWEN15, hidden_size=2048, intermediate_size=11008, num_attention_heads=16,
                 num_hidden_layers=36, num_key_value_heads=2, tie_word_embeddings=True,
                 eos_token_id=151645, max_window_layers=70)
GEMMA = {"architectures": ["GemmaForCausalLM"], "attention_bias": False, "bos_token_id": 2,
         "eos_token_id": 1, "head_dim": 256, "hidden_act": "gelu", "hidden_size": 2048,
         "intermediate_size": 16384, "max_position_embeddings": 8192, "model_type": "gemma",
         "num_attention_heads": 8, "num_hidden_layers": 18, "num_key_value_heads": 1,
         "pad_token_id": 0, "rms_norm_eps": 1e-06, "rope_scaling": None, "rope_theta": 10000.0,
         "vocab_size": 256000}

# Qwen/Qwen3-0.6B and Qwen/Qwen3-8B as released (config.json on the Hub; the
# same text is quoted by public code the search tool found, e.g. a benchmark
# citing https://huggingface.co/Qwen/Qwen3-8B/blob/main/config.json)
QWEN3_8B = {"architectures": ["Qwen3ForCausalLM"], "attention_bias": False,
            "attention_dropout": 0.0, "bos_token_id": 151643, "eos_token_id": 151645,
            "head_dim": 128, "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02,
            "intermediate_size": 12288, "max_position_embeddings": 40960,
            "max_window_layers": 36, "model_type": "qwen3", "num_attention_heads": 32,
            "num_hidden_layers": 36, "num_key_value_heads": 8, "rms_norm_eps": 1e-06,
            "rope_scaling": None, "rope_theta": 1000000, "sliding_window": None,
            "tie_word_embeddings": False, "torch_dtype": "bfloat16",
            "transformers_version": "4.51.0", "use_cache": True, "use_sliding_window": False,
            "vocab_size": 151936}
QWEN3_06B = dict(QWEN3_8B, hidden_size=1024, intermediate_size=3072, max_window_layers=28,
                 num_attention_heads=16, num_hidden_layers=28, tie_word_embeddings=True)

# google/gemma-2-2b-it, gemma-2-9b-it and gemma-2-27b-it as released (config.json
# on the Hub; the 9b values as public code the search tool found quotes them,
# the 27b's head_dim 128 and query_pre_attn_scalar 144 = 4608 / 32 as
# transformers' PaliGemma 2 conversion script states them)
GEMMA2_2B = {"architectures": ["Gemma2ForCausalLM"], "attention_bias": False,
             "attention_dropout": 0.0, "attn_logit_softcapping": 50.0, "bos_token_id": 2,
             "cache_implementation": "hybrid", "eos_token_id": [1, 107],
             "final_logit_softcapping": 30.0, "head_dim": 256, "hidden_act": "gelu_pytorch_tanh",
             "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 2304,
             "initializer_range": 0.02, "intermediate_size": 9216,
             "max_position_embeddings": 8192, "model_type": "gemma2", "num_attention_heads": 8,
             "num_hidden_layers": 26, "num_key_value_heads": 4, "pad_token_id": 0,
             "query_pre_attn_scalar": 256, "rms_norm_eps": 1e-06, "rope_theta": 10000.0,
             "sliding_window": 4096, "torch_dtype": "float32", "transformers_version": "4.42.4",
             "use_cache": True, "vocab_size": 256000}
GEMMA2_9B = dict(GEMMA2_2B, hidden_size=3584, intermediate_size=14336, num_attention_heads=16,
                 num_hidden_layers=42, num_key_value_heads=8, torch_dtype="bfloat16")
GEMMA2_27B = dict(GEMMA2_2B, hidden_size=4608, intermediate_size=36864, num_attention_heads=32,
                  num_hidden_layers=46, num_key_value_heads=16, head_dim=128,
                  query_pre_attn_scalar=144, torch_dtype="bfloat16")

# google/gemma-3-1b-it and gemma-3-270m-it (Gemma3ForCausalLM, text only) as
# released on the Hub, the 270m in transformers 4.55's spelling (layer_types);
# the 12b's text_config (google/gemma-3-12b-it is Gemma3ForConditionalGeneration,
# its text_config as public code the search tool found quotes it) as a
# Gemma3ForCausalLM config: the release with rope_scaling
GEMMA3_1B = {"architectures": ["Gemma3ForCausalLM"], "attention_bias": False,
             "attention_dropout": 0.0, "attn_logit_softcapping": None, "bos_token_id": 2,
             "cache_implementation": "hybrid", "eos_token_id": [1, 106],
             "final_logit_softcapping": None, "head_dim": 256,
             "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 1152,
             "initializer_range": 0.02, "intermediate_size": 6912,
             "max_position_embeddings": 32768, "model_type": "gemma3_text",
             "num_attention_heads": 4, "num_hidden_layers": 26, "num_key_value_heads": 1,
             "pad_token_id": 0, "query_pre_attn_scalar": 256, "rms_norm_eps": 1e-06,
             "rope_local_base_freq": 10000, "rope_scaling": None, "rope_theta": 1000000,
             "sliding_window": 512, "sliding_window_pattern": 6, "torch_dtype": "bfloat16",
             "transformers_version": "4.50.0.dev0", "use_cache": True, "vocab_size": 262144}
GEMMA3_270M = {k: v for k, v in GEMMA3_1B.items() if k != "sliding_window_pattern"} | {
    "_sliding_window_pattern": 6, "hidden_size": 640, "intermediate_size": 2048,
    "num_hidden_layers": 18, "layer_types": ["full_attention" if (i + 1) % 6 == 0 else
                                             "sliding_attention" for i in range(18)],
    "use_bidirectional_attention": False, "transformers_version": "4.55.0.dev0"}
GEMMA3_12B_TEXT = dict(GEMMA3_1B, hidden_size=3840, intermediate_size=15360,
                       num_attention_heads=16, num_hidden_layers=48, num_key_value_heads=8,
                       max_position_embeddings=131072, sliding_window=1024, vocab_size=262208,
                       rope_scaling={"factor": 8.0, "rope_type": "linear"})

# allenai/OLMo-2-1124-7B as released (the Hub's config.json, as a public test
# suite the search tool found mirrors it); OLMo-2-1124-13B and OLMo-2-0425-1B
# differ in the sizes their model cards state
OLMO2_7B = {"architectures": ["Olmo2ForCausalLM"], "attention_bias": False,
            "attention_dropout": 0.0, "eos_token_id": 100257, "hidden_act": "silu",
            "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 11008,
            "max_position_embeddings": 4096, "model_type": "olmo2", "num_attention_heads": 32,
            "num_hidden_layers": 32, "num_key_value_heads": 32, "pad_token_id": 100277,
            "rms_norm_eps": 1e-06, "rope_scaling": None, "rope_theta": 500000,
            "tie_word_embeddings": False, "torch_dtype": "bfloat16",
            "transformers_version": "4.47.0.dev0", "use_cache": True, "vocab_size": 100352}
OLMO2_13B = dict(OLMO2_7B, hidden_size=5120, intermediate_size=13824, num_attention_heads=40,
                 num_hidden_layers=40, num_key_value_heads=40)
OLMO2_1B = dict(OLMO2_7B, hidden_size=2048, intermediate_size=8192, num_attention_heads=16,
                num_hidden_layers=16, num_key_value_heads=16)

# microsoft/Phi-3-mini-4k-instruct and Phi-3.5-mini-instruct as released (the
# Hub's config.json; the 3.5's longrope factor lists as a public script the
# search tool found prints them); Phi-4-mini-instruct's sizes, partial rotary
# factor, tied embeddings and longrope as its model card and public code state
# them -- but its 48 + 48 factor values were not found, so that file's factor
# lists here are Phi-3.5's (the same length): a Phi-4-mini-shaped config, not
# the release byte for byte
PHI3_MINI_4K = {"architectures": ["Phi3ForCausalLM"], "attention_bias": False,
                "attention_dropout": 0.0, "bos_token_id": 1, "embd_pdrop": 0.0,
                "eos_token_id": 32000, "hidden_act": "silu", "hidden_size": 3072,
                "initializer_range": 0.02, "intermediate_size": 8192,
                "max_position_embeddings": 4096, "model_type": "phi3",
                "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 32,
                "original_max_position_embeddings": 4096, "pad_token_id": 32000,
                "resid_pdrop": 0.0, "rms_norm_eps": 1e-05, "rope_scaling": None,
                "rope_theta": 10000.0, "sliding_window": 2047, "tie_word_embeddings": False,
                "torch_dtype": "bfloat16", "transformers_version": "4.40.2", "use_cache": True,
                "vocab_size": 32064}
PHI35_MINI = dict(PHI3_MINI_4K, max_position_embeddings=131072, sliding_window=262144,
                  transformers_version="4.43.3",
                  rope_scaling={"long_factor": [1.0800000429153442, 1.1100000143051147, 1.1399999856948853, 1.340000033378601, 1.5899999141693115, 1.600000023841858, 1.6200000047683716, 2.620000123977661, 3.2300000190734863, 3.2300000190734863, 4.789999961853027, 7.400000095367432, 7.700000286102295, 9.09000015258789, 12.199999809265137, 17.670000076293945, 24.46000099182129, 28.57000160217285, 30.420001983642578, 30.840002059936523, 32.590003967285156, 32.93000411987305, 42.320003509521484, 44.96000289916992, 50.340003967285156, 50.45000457763672, 57.55000305175781, 57.93000411987305, 58.21000289916992, 60.1400032043457, 62.61000442504883, 62.62000274658203, 62.71000289916992, 63.1400032043457, 63.1400032043457, 63.77000427246094, 63.93000411987305, 63.96000289916992, 63.970001220703125, 64.02999877929688, 64.06999969482422, 64.08000183105469, 64.12000274658203, 64.41000366210938, 64.4800033569336, 64.51000213623047, 64.52999877929688, 64.83999633789062],
                                "short_factor": [1.0, 1.0199999809265137, 1.0299999713897705, 1.0299999713897705, 1.0499999523162842, 1.0499999523162842, 1.0499999523162842, 1.0499999523162842, 1.0499999523162842, 1.0699999332427979, 1.0999999046325684, 1.1099998950958252, 1.1599998474121094, 1.1599998474121094, 1.1699998378753662, 1.2899998426437378, 1.339999794960022, 1.679999828338623, 1.7899998426437378, 1.8199998140335083, 1.8499997854232788, 1.8799997568130493, 1.9099997282028198, 1.9399996995925903, 1.9899996519088745, 2.0199997425079346, 2.0199997425079346, 2.0199997425079346, 2.0199997425079346, 2.0199997425079346, 2.0199997425079346, 2.0299997329711914, 2.0299997329711914, 2.0299997329711914, 2.0299997329711914, 2.0299997329711914, 2.0299997329711914, 2.0299997329711914, 2.0299997329711914, 2.0299997329711914, 2.0799996852874756, 2.0899996757507324, 2.189999580383301, 2.2199995517730713, 2.5899994373321533, 2.729999542236328, 2.749999523162842, 2.8399994373321533],
                                "type": "longrope"})
PHI4_MINI = dict(PHI35_MINI, num_attention_heads=24, num_key_value_heads=8,
                 vocab_size=200064, partial_rotary_factor=0.75, tie_word_embeddings=True,
                 bos_token_id=199999, eos_token_id=199999, pad_token_id=199999,
                 transformers_version="4.45.0")

SMALL = {"hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 4,
         "num_attention_heads": 4, "vocab_size": 100}

CASES = {
    "llama2-7b": L2,
    "llama31-8b": L31,
    "llama32-3b": L32_3B,
    "llama31-v5-spelling": {k: v for k, v in L31.items() if k not in ("rope_scaling", "rope_theta")}
    | {"rope_parameters": dict(L31["rope_scaling"], rope_theta=500000.0)},
    "llama3-no-original-max": dict(L31, max_position_embeddings=4096, rope_scaling={
        "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0}),
    "llama-linear-rope": dict(SMALL, architectures=["LlamaForCausalLM"],
                              rope_scaling={"type": "linear", "factor": 2.0}, rope_theta=20000.0),
    "llama-biases": dict(SMALL, architectures=["LlamaForCausalLM"], attention_bias=True,
                         mlp_bias=True),
    "llama-gelu": dict(SMALL, architectures=["LlamaForCausalLM"], hidden_act="gelu"),
    "llama-head-dim": dict(SMALL, architectures=["LlamaForCausalLM"], head_dim=32,
                           num_key_value_heads=2),
    "llama-defaults": {"architectures": ["LlamaForCausalLM"]},
    "llama-model-type-only": dict(SMALL, model_type="llama"),
    "mistral-7b-v02": MISTRAL,
    "mistral-v01-window": dict(MISTRAL, sliding_window=4096, rope_theta=10000.0),
    "mistral-defaults": {"architectures": ["MistralForCausalLM"]},
    "llama-kv-null": dict(SMALL, architectures=["LlamaForCausalLM"], num_key_value_heads=None,
                          head_dim=None),
    "qwen15-7b": QWEN15,
    "qwen25-3b": QWEN25_3B,
    "qwen2-sliding": dict(SMALL, architectures=["Qwen2ForCausalLM"], use_sliding_window=True,
                          sliding_window=128, max_window_layers=2, num_key_value_heads=2),
    "qwen2-defaults": {"architectures": ["Qwen2ForCausalLM"]},
    "gemma-2b-it": GEMMA,
    "gemma-7b-hidden-activation": dict(GEMMA, hidden_size=3072, intermediate_size=24576,
                                       num_attention_heads=16, num_key_value_heads=16,
                                       num_hidden_layers=28, hidden_act="gelu_pytorch_tanh",
                                       hidden_activation="gelu"),
    "gemma-defaults": {"architectures": ["GemmaForCausalLM"]},
    "qwen3-8b": QWEN3_8B,
    "qwen3-0.6b": QWEN3_06B,
    "qwen3-defaults": {"architectures": ["Qwen3ForCausalLM"]},
    # transformers 5's spelling: rope_parameters, layer_types (any order)
    "qwen3-v5-layer-types": dict(SMALL, architectures=["Qwen3ForCausalLM"], head_dim=32,
                                 num_key_value_heads=2, use_sliding_window=True,
                                 sliding_window=256, layer_types=[
                                     "sliding_attention", "full_attention",
                                     "sliding_attention", "full_attention"],
                                 rope_parameters={"rope_type": "default",
                                                  "rope_theta": 5e5}),
    "qwen3-window-from": dict(SMALL, architectures=["Qwen3ForCausalLM"], use_sliding_window=True,
                              sliding_window=64, max_window_layers=3, num_key_value_heads=4),
    "gemma2-2b-it": GEMMA2_2B,
    "gemma2-9b-it": GEMMA2_9B,
    "gemma2-27b-it": GEMMA2_27B,
    "gemma2-defaults": {"architectures": ["Gemma2ForCausalLM"]},
    # transformers 5's spelling: layer_types, rope_parameters; no caps, no window
    "gemma2-v5-layer-types": dict(SMALL, architectures=["Gemma2ForCausalLM"],
                                  num_key_value_heads=2, head_dim=32, query_pre_attn_scalar=64,
                                  attn_logit_softcapping=None, final_logit_softcapping=None,
                                  sliding_window=None, hidden_activation="gelu",
                                  layer_types=["full_attention", "sliding_attention",
                                               "sliding_attention", "full_attention"],
                                  rope_parameters={"rope_type": "linear", "factor": 2.0,
                                                   "rope_theta": 10000.0}),
    "gemma3-1b-it": GEMMA3_1B,
    "gemma3-270m-it": GEMMA3_270M,
    "gemma3-12b-text": GEMMA3_12B_TEXT,
    "gemma3-defaults": {"architectures": ["Gemma3ForCausalLM"]},
    # transformers 5's spelling: rope_parameters by layer type, layer_types
    "gemma3-v5-nested-rope": dict(SMALL, architectures=["Gemma3ForCausalLM"],
                                  num_key_value_heads=2, head_dim=16, sliding_window=8,
                                  final_logit_softcapping=15.0, layer_types=[
                                      "sliding_attention", "full_attention",
                                      "sliding_attention", "sliding_attention"],
                                  rope_parameters={
                                      "full_attention": {"rope_type": "linear", "factor": 4.0,
                                                         "rope_theta": 500000.0},
                                      "sliding_attention": {"rope_type": "default",
                                                            "rope_theta": 20000.0}}),
    "gemma3-pattern-2": dict(SMALL, architectures=["Gemma3ForCausalLM"], num_key_value_heads=2,
                             sliding_window_pattern=2, rope_local_base_freq=5000.0),
    "olmo2-7b": OLMO2_7B,
    "olmo2-13b": OLMO2_13B,
    "olmo2-1b": OLMO2_1B,
    "olmo2-defaults": {"architectures": ["Olmo2ForCausalLM"]},
    "olmo2-gqa-head-dim": dict(SMALL, architectures=["Olmo2ForCausalLM"], num_key_value_heads=2,
                               head_dim=32, num_attention_heads=4,
                               rope_parameters={"rope_type": "linear", "factor": 2.0,
                                                "rope_theta": 10000.0}),
    "phi3-mini-4k": PHI3_MINI_4K,
    "phi35-mini": PHI35_MINI,
    "phi4-mini-shape": PHI4_MINI,
    "phi3-defaults": {"architectures": ["Phi3ForCausalLM"]},
    # transformers 5's spelling, factor and attention_factor given
    "phi3-v5-longrope": dict(SMALL, architectures=["Phi3ForCausalLM"], num_key_value_heads=2,
                             pad_token_id=0,
                             max_position_embeddings=4096, original_max_position_embeddings=1024,
                             rope_parameters={"rope_type": "longrope", "rope_theta": 20000.0,
                                              "factor": 2.0, "attention_factor": 1.25,
                                              "partial_rotary_factor": 0.5,
                                              "short_factor": [1.0, 1.5, 2.0, 2.5],
                                              "long_factor": [3.0, 4.0, 5.0, 6.0]}),
    "gemma2-window": dict(SMALL, architectures=["Gemma2ForCausalLM"], num_key_value_heads=2,
                          head_dim=16, sliding_window=32, pad_token_id=None),
    # transformers refuses: so must realign
    "err-llama-heads": dict(SMALL, architectures=["LlamaForCausalLM"], num_attention_heads=5),
    "err-bad-type": dict(SMALL, architectures=["LlamaForCausalLM"], num_hidden_layers="4"),
    "err-mistral-kv-null": dict(SMALL, architectures=["MistralForCausalLM"],
                                num_key_value_heads=None),
    "err-eps-null": dict(SMALL, architectures=["LlamaForCausalLM"], rms_norm_eps=None),
    "err-qwen3-head-dim-null": dict(SMALL, architectures=["Qwen3ForCausalLM"], head_dim=None),
    "err-phi3-pad": dict(SMALL, architectures=["Phi3ForCausalLM"], num_key_value_heads=2),
    "err-gemma2-heads": dict(SMALL, architectures=["Gemma2ForCausalLM"], num_attention_heads=5,
                             num_key_value_heads=1),
    "err-gemma2-kv-null": dict(SMALL, architectures=["Gemma2ForCausalLM"],
                               num_key_value_heads=None),
    "err-gemma3-pattern-zero": dict(SMALL, architectures=["Gemma3ForCausalLM"],
                                    num_key_value_heads=2, sliding_window_pattern=0),
    "err-gemma3-layer-types-count": dict(SMALL, architectures=["Gemma3ForCausalLM"],
                                         num_key_value_heads=2,
                                         layer_types=["sliding_attention"] * 5),
    "err-phi3-factors": dict(SMALL, architectures=["Phi3ForCausalLM"], num_key_value_heads=2,
                             pad_token_id=0,
                             rope_scaling={"type": "longrope", "short_factor": [1.0] * 3,
                                           "long_factor": [2.0] * 3}),
    "err-qwen3-layer-types-count": dict(SMALL, architectures=["Qwen3ForCausalLM"],
                                        num_key_value_heads=4,
                                        layer_types=["full_attention"] * 3),
    # realign refuses deliberately (transformers would compute something realign does not)
    "deliberate-yarn": dict(SMALL, architectures=["LlamaForCausalLM"], rope_scaling={
        "rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 1024}),
    "deliberate-relu": dict(SMALL, architectures=["LlamaForCausalLM"], hidden_act="relu"),
    "deliberate-unknown-arch": dict(SMALL, architectures=["GPTNeoXForCausalLM"],
                                    model_type="gpt_neox"),
    # a bidirectional mask (embedding models), not the causal one realign has
    "deliberate-gemma2-bidirectional": dict(SMALL, architectures=["Gemma2ForCausalLM"],
                                            num_key_value_heads=2,
                                            use_bidirectional_attention=True),
    # transformers' Qwen3 has no mask for it and fails in the forward
    "deliberate-qwen3-chunked": dict(SMALL, architectures=["Qwen3ForCausalLM"],
                                     num_key_value_heads=4, layer_types=[
        "full_attention", "chunked_attention", "full_attention", "full_attention"]),
}

ERRORS = {  # realign's message for each refused case
    "err-llama-heads": "hidden_size 64 is not a multiple of num_attention_heads 5",
    "err-bad-type": "\"num_hidden_layers\" must be an integer",
    "err-mistral-kv-null": "\"num_key_value_heads\" must be an integer",
    "err-eps-null": "\"rms_norm_eps\" must be a number",
    "err-qwen3-head-dim-null": "\"head_dim\" must be an integer",
    "err-gemma2-heads": "hidden_size 64 is not a multiple of num_attention_heads 5",
    "err-phi3-pad": "pad_token_id 32000 is outside the vocabulary (100)",
    "err-gemma3-pattern-zero": "\"sliding_window_pattern\" must be an integer in [1,",
    "err-gemma3-layer-types-count": "\"layer_types\" must be an array of num_hidden_layers (4)",
    "err-gemma2-kv-null": "\"num_key_value_heads\" must be an integer",
    "deliberate-gemma2-bidirectional": "\"use_bidirectional_attention\" is not supported",
    "err-qwen3-layer-types-count": "\"layer_types\" must be an array of num_hidden_layers (4)",
    "deliberate-qwen3-chunked": "\"layer_types\"[1] 'chunked_attention' is not supported",
    "deliberate-yarn": "rope type 'yarn' is not supported",
    "deliberate-relu": "unsupported hidden_act 'relu'",
    "deliberate-unknown-arch": "unsupported architecture 'GPTNeoXForCausalLM'",
    "err-phi3-factors": "longrope needs \"short_factor\", a list of rotary_dim / 2 (8) numbers",
}


def act_kind(fn):
    """0 silu, 1 gelu tanh approximation, 2 exact gelu (rl_act), from the function's values."""
    x = torch.tensor([-2.0, -0.5, 0.3, 1.7], dtype=torch.float64)
    y = fn(x)
    silu = x * torch.sigmoid(x)
    erf = 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))
    tanh = 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    for k, ref in ((0, silu), (1, tanh), (2, erf)):
        if torch.allclose(y, ref, atol=1e-12, rtol=0):
            return k
    raise SystemExit("unknown activation")


def instantiate(cfgdict):
    d = tempfile.mkdtemp()
    try:
        json.dump(cfgdict, open(os.path.join(d, "config.json"), "w"))
        cfg = transformers.AutoConfig.from_pretrained(d)
        with torch.device("meta"):
            m = transformers.AutoModelForCausalLM.from_config(cfg)
    finally:
        shutil.rmtree(d)
    return cfg, m


def resolve(cfgdict):
    cfg, m = instantiate(cfgdict)
    lay = m.model.layers[0]
    at, mlp = lay.self_attn, lay.mlp
    norm0 = lay.post_attention_layernorm
    hd = at.head_dim
    rp = cfg.rope_parameters
    local_theta = 0
    if "full_attention" in rp:  # Gemma 3: the global layers' and the sliding layers'
        local_theta = rp["sliding_attention"]["rope_theta"]
        assert rp["sliding_attention"]["rope_type"] == "default"
        rp = rp["full_attention"]
    rope_type = {"default": 0, "linear": 1, "llama3": 2, "longrope": 3}[rp["rope_type"]]
    # Qwen2 keeps the window per attention module; Mistral's attention reads
    # config.sliding_window for every layer (modeling_mistral.py)
    mistral = isinstance(m, (transformers.MistralForCausalLM, transformers.Phi3ForCausalLM))
    fused = hasattr(at, "qkv_proj")  # Phi-3
    n_q = cfg.num_attention_heads * hd if fused else at.q_proj.out_features
    n_kv = (at.qkv_proj.out_features - n_q) // 2 if fused else at.k_proj.out_features
    inter = mlp.gate_up_proj.out_features // 2 if fused else mlp.gate_proj.out_features
    qb = (at.qkv_proj if fused else at.q_proj).bias is not None
    mb = (mlp.gate_up_proj if fused else mlp.gate_proj).bias is not None
    windows = [getattr(cfg, "sliding_window", None) if mistral else
               getattr(l.self_attn, "sliding_window", None) for l in m.model.layers]
    first = next((i for i, w in enumerate(windows) if w), None)
    qk_norm = 0
    if getattr(at, "q_norm", None) is not None:
        if at.q_norm.weight.shape[0] == hd:  # per head
            assert at.k_norm.weight.shape[0] == hd
            qk_norm = 1
        else:  # over the whole projections
            assert at.q_norm.weight.shape[0] == at.q_proj.out_features
            assert at.k_norm.weight.shape[0] == at.k_proj.out_features
            qk_norm = 2
    eos = cfg.eos_token_id
    eos = [] if eos is None else eos if isinstance(eos, list) else [eos]
    r = {
        "hidden_size": cfg.hidden_size,
        "num_hidden_layers": len(m.model.layers),
        "num_attention_heads": n_q // hd,
        "num_key_value_heads": n_kv // hd,
        "head_dim": hd,
        "intermediate_size": inter,
        "fused": int(fused),
        "rotary_dim": 2 * len(getattr(m.model.rotary_emb, "inv_freq", None) if
                              hasattr(m.model.rotary_emb, "inv_freq") else
                              m.model.rotary_emb.full_attention_inv_freq),
        "vocab_size": m.model.embed_tokens.num_embeddings,
        "max_position_embeddings": cfg.max_position_embeddings,
        "rms_norm_eps": getattr(norm0, "variance_epsilon", None) or norm0.eps,
        "rope_theta": rp["rope_theta"],
        "rope_type": rope_type,
        "tie_word_embeddings": int(m.lm_head.weight is m.model.embed_tokens.weight),
        "q_bias": int(qb),
        "o_bias": int(at.o_proj.bias is not None),
        "mlp_bias": int(mb),
        "act": act_kind(getattr(mlp, "act_fn", None) or mlp.activation_fn),
        "sliding_window": windows[first] if first is not None else 0,
        "sliding_window_from": first if first is not None else 0,
        "windows": ",".join(str(w or 0) for w in windows),
        "qk_norm": qk_norm,
        "norms": 1 if hasattr(lay, "pre_feedforward_layernorm") else
        2 if not hasattr(lay, "input_layernorm") else 0,
        "attn_scale": at.scaling,
        "attn_softcap": getattr(at, "attn_logit_softcapping", None) or 0,
        "final_softcap": getattr(cfg, "final_logit_softcapping", None) or 0,
        "rope_local_theta": local_theta,
        "pad_token_id": -1 if m.model.embed_tokens.padding_idx is None
        else m.model.embed_tokens.padding_idx,
        "bos_token_id": -1 if cfg.bos_token_id is None else cfg.bos_token_id,
        "n_eos": len(eos),
        "eos0": eos[0] if eos else -1,
        "param_count": sum(p.numel() for n, p in m.named_parameters() if ".layers." in n),
    }
    assert fused or (at.k_proj.bias is not None if r["q_bias"] else at.k_proj.bias is None)
    if rope_type == 3:  # longrope, as the model's rotary embedding took it
        f32 = lambda x: float(torch.tensor(x, dtype=torch.float32))  # noqa: E731
        r["rope_original_max_position"] = rp["original_max_position_embeddings"]
        r["rope_attn_factor"] = m.model.rotary_emb.attention_scaling
        r["rope_short0"] = f32(rp["short_factor"][0])
        r["rope_long_last"] = f32(rp["long_factor"][-1])
    if rope_type == 1:
        r["rope_factor"] = rp["factor"]
    if rope_type == 2:
        r["rope_factor"] = rp["factor"]
        r["rope_low_freq_factor"] = rp["low_freq_factor"]
        r["rope_high_freq_factor"] = rp["high_freq_factor"]
        r["rope_original_max_position"] = rp["original_max_position_embeddings"]
    # Gemma's particulars, checked rather than assumed
    gemma = type(m).__name__.startswith("Gemma")
    assert ("Gemma" in type(norm0).__name__) == gemma
    assert (abs(getattr(m.model.embed_tokens, "scalar_embed_scale", 1.0) -
                cfg.hidden_size ** 0.5) < 1e-9) == gemma
    return r


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    rows = ["# file<TAB>key=value... as transformers %s resolves it (error= : realign's refusal)"
            % transformers.__version__]
    mt = {"LlamaForCausalLM": "llama", "MistralForCausalLM": "mistral",
          "Qwen2ForCausalLM": "qwen2", "GemmaForCausalLM": "gemma",
          "Qwen3ForCausalLM": "qwen3", "Gemma2ForCausalLM": "gemma2",
          "Gemma3ForCausalLM": "gemma3_text", "Olmo2ForCausalLM": "olmo2",
          "Phi3ForCausalLM": "phi3"}
    for name, cfg in CASES.items():
        if "model_type" not in cfg:  # AutoConfig needs it (realign also reads architectures)
            cfg = dict(cfg, model_type=mt[cfg["architectures"][0]])
        fn = name + ".json"
        with open(os.path.join(OUT, fn), "w") as f:
            json.dump(cfg, f, indent=2)
        if name.startswith("deliberate-"):
            instantiate(cfg)  # transformers accepts it; realign refuses on purpose
            rows.append("%s\terror=%s" % (fn, ERRORS[name]))
            continue
        try:
            r = resolve(cfg)
        except Exception as e:  # noqa: BLE001
            if name.startswith("err-"):
                rows.append("%s\terror=%s" % (fn, ERRORS[name]))
                continue
            raise SystemExit("%s: transformers refused: %s" % (name, e))
        if name.startswith("err-"):
            raise SystemExit("%s: transformers accepted a case marked err-" % name)
        rows.append("\t".join([fn] + [("%s=%s" if isinstance(v, str) else "%s=%r") % (k, v)
                                       for k, v in r.items()]))
    with open(os.path.join(OUT, "expected.tsv"), "w") as f:
        f.write("\n".join(rows) + "\n")


if __name__ == "__main__":
    sys.exit(main())
