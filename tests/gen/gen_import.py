#!/usr/bin/env python3
"""gen_import.py — fixtures for rl-import (tests/fixtures/import/).

GGUF files are made by llama.cpp's own converter, convert_hf_to_gguf.py, from
tiny random-weight transformers models; the truth they are checked against is
transformers' own GGUF loader (from_pretrained(dir, gguf_file=...)).

llama.cpp's converter is not on PyPI by itself; llama-cpp-python's source
distribution carries it (vendor/llama.cpp). Point LLAMA_CPP at that folder:

    pip download llama-cpp-python --no-deps --no-binary :all: -d /tmp/lcp
    tar xzf /tmp/lcp/llama_cpp_python-*.tar.gz -C /tmp/lcp
    LLAMA_CPP=/tmp/lcp/llama_cpp_python-*/vendor/llama.cpp make fixtures

Writes:
  models/<case>/model*.gguf  a tiny model of each architecture, converted with
        --outtype f32, f16, bf16 or q8_0 (one case split into several files);
        its vocabulary is tiny (a byte-level BPE or a SentencePiece model
        trained here). meta.json: the import dtype, the config values
        transformers' GGUF loader reads, the prompts (token ids);
        expected.safetensors: every tensor as transformers' GGUF loader gives
        it (f32, HF names), and "logits" [n_prompts, V] at each prompt's last
        token computed in fp64 from those weights rounded to the import dtype
        (err32 in meta.json: how far the same fp32 computation lands).
        Gemma: transformers has no GGUF loader for Gemma (1), and the ones for
        Gemma 2 and 3 ignore the soft-caps (and Gemma 3's local RoPE) in the
        file; their truth is the original
        model with each norm weight passed through the converter's w + 1 and
        back (f32), which is what the f32 file holds.
  vocab/<name>.gguf.xz  the converter's --vocab-only file of a real tokenizer
        (qwen2_5, mistral_v01: Apache-2.0, as in tests/fixtures/tokenizer/);
        the test compares the imported tokenizer's ids with that directory's
        goldens. shared/ has no tokenizer.model for mistral_v01, so the
        converter reads its tokenizer.json and writes -1000 for every score,
        losing the merge order; a GGUF made from tokenizer.model carries
        scores that are the negated merge ranks, and those are written here.
        mistral_nemo and llama3_2 (tekken, llama-bpe) are checked here only
        (their files are large or not redistributable): rl-import
        --vocab-only, then tokenizers on its tokenizer.json must give the
        goldens' ids for the whole corpus.
"""
import glob
import json
import lzma
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "tests", "fixtures", "import")
TOKF = os.path.join(ROOT, "tests", "fixtures", "tokenizer")
LLAMA_CPP = os.environ.get("LLAMA_CPP", "")
RL_BIN = os.environ.get("RL_BIN", os.path.join(ROOT, "bin"))

TEXT = ("The quick brown fox jumps over the lazy dog. How do I bake bread at home? "
        "Translate 'good morning' into French: bonjour. 12345 + 678 = 13023.\n"
        "def f(x):\n    return x * 2  # doubled\n") * 40


def shared_dir():
    for d in [os.environ.get("RL_SHARED_TOKENIZERS", ""),
              os.path.join(ROOT, "..", "shared", "tokenizers")]:
        if d and os.path.isdir(d):
            return d
    sys.exit("gen_import.py: shared/tokenizers not found (set RL_SHARED_TOKENIZERS)")


def convert(model_dir, outfile, outtype, extra=(), pre=None, vocab_only=False):
    """Runs llama.cpp's converter in a child process; pre replaces the
    pre-tokenizer detection (it knows only released tokenizers by hash)."""
    args = [model_dir, "--outfile", outfile, "--outtype", outtype, *extra]
    if vocab_only:
        args.append("--vocab-only")
    code = (
        "import sys; sys.path.insert(0, %r); sys.argv = ['convert_hf_to_gguf.py'] + %r\n"
        "import conversion.base as b\n"
        "%s\n"
        "import convert_hf_to_gguf as c; c.main()\n"
    ) % (LLAMA_CPP, args,
         "b.TextModel.get_vocab_base_pre = lambda self, tok: %r" % pre if pre else "")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=LLAMA_CPP,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# ---------------------------------------------------------------- tiny tokenizers
def byte_level_tokenizer(d, vocab_size):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tr = trainers.BpeTrainer(vocab_size=vocab_size - 2, special_tokens=["<|end|>", "<|start|>"],
                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                             show_progress=False)
    tok.train_from_iterator([TEXT], tr)
    PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|end|>",
                            bos_token="<|start|>").save_pretrained(d)
    return tok.get_vocab_size()


def spm_tokenizer(d, vocab_size):
    import sentencepiece as spm
    from transformers import LlamaTokenizer
    with tempfile.TemporaryDirectory() as tmp:
        txt = os.path.join(tmp, "t.txt")
        with open(txt, "w") as f:
            f.write(TEXT)
        spm.SentencePieceTrainer.train(input=txt, model_prefix=os.path.join(tmp, "m"),
                                       vocab_size=vocab_size, model_type="bpe",
                                       byte_fallback=True, character_coverage=1.0,
                                       bos_id=1, eos_id=2, unk_id=0, minloglevel=2)
        shutil.copy(os.path.join(tmp, "m.model"), os.path.join(d, "tokenizer.model"))
    return vocab_size


# ---------------------------------------------------------------- model cases
COMMON = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
              max_position_embeddings=128, rms_norm_eps=1e-5)

CASES = [
    # name, class, config, tokenizer, pre, converter outtype, import dtype, split
    dict(name="llama_f32", arch="llama", cfg=dict(COMMON, num_attention_heads=4,
         num_key_value_heads=2, tie_word_embeddings=False, rope_theta=10000.0),
         tok="spm", outtype="f32", dtype="f32"),
    dict(name="llama_bias_q8", arch="llama", cfg=dict(COMMON, num_attention_heads=8,
         num_key_value_heads=4, tie_word_embeddings=True, attention_bias=True,
         mlp_bias=True, rope_theta=500000.0,
         rope_scaling={"rope_type": "linear", "factor": 2.0}),
         tok="bl", pre="llama-bpe", outtype="q8_0", dtype="bf16"),
    dict(name="mistral_f16", arch="mistral", cfg=dict(COMMON, num_attention_heads=4,
         num_key_value_heads=1, head_dim=16, sliding_window=None, tie_word_embeddings=False,
         rope_theta=1000000.0), tok="bl", pre="tekken", outtype="f16", dtype="f16"),
    dict(name="qwen2_split", arch="qwen2", cfg=dict(COMMON, num_attention_heads=4,
         num_key_value_heads=2, tie_word_embeddings=True, rope_theta=1000000.0,
         use_sliding_window=False), tok="bl", pre="qwen2", outtype="bf16", dtype="bf16",
         split=True),
    dict(name="gemma_f32", arch="gemma", cfg=dict(COMMON, num_attention_heads=4,
         num_key_value_heads=1, head_dim=16, hidden_act="gelu_pytorch_tanh",
         rope_theta=10000.0), tok="spm", outtype="f32", dtype="f32"),
    # head_dim 128: transformers' GGUF loader ignores qwen3.attention.key_length and
    # takes Qwen3Config's default
    dict(name="qwen3_f16", arch="qwen3", cfg=dict(COMMON, num_attention_heads=2,
         num_key_value_heads=1, head_dim=128, tie_word_embeddings=False, rope_theta=1000000.0,
         use_sliding_window=False), tok="bl", pre="qwen2", outtype="f16", dtype="f32"),
    # head_dim 256 = query_pre_attn_scalar: the GGUF holds no scalar (llama.cpp
    # takes head_dim's) and transformers' loader takes the class default, 256
    dict(name="gemma2_f32", arch="gemma2", cfg=dict(COMMON, num_attention_heads=2,
         num_key_value_heads=1, head_dim=256, query_pre_attn_scalar=256, sliding_window=4,
         attn_logit_softcapping=5.0, final_logit_softcapping=10.0, rope_theta=10000.0),
         tok="spm", outtype="f32", dtype="f32"),
    # what llama.cpp's Gemma 3 can hold: every sixth layer global (six layers),
    # query_pre_attn_scalar = head_dim; the global RoPE linearly scaled
    dict(name="gemma3_f32", arch="gemma3", cfg=dict(COMMON, num_hidden_layers=6,
         num_attention_heads=2, num_key_value_heads=1, head_dim=16, query_pre_attn_scalar=16,
         sliding_window=4, final_logit_softcapping=10.0, sliding_window_pattern=6,
         rope_parameters={"full_attention": {"rope_type": "linear", "factor": 2.0,
                                             "rope_theta": 1000000.0},
                          "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}}),
         tok="spm", outtype="f32", dtype="f32"),
    dict(name="olmo2_bf16", arch="olmo2", cfg=dict(COMMON, num_attention_heads=4,
         num_key_value_heads=2, tie_word_embeddings=False, rope_theta=500000.0),
         tok="bl", pre="dbrx", outtype="bf16", dtype="bf16"),
    # fused qkv_proj and gate_up_proj, partial rotary, longrope past position 8
    # (the 9- and 12-token prompts), a window of 6
    dict(name="phi3_f32", arch="phi3", cfg=dict(COMMON, num_attention_heads=4,
         num_key_value_heads=2, tie_word_embeddings=False, sliding_window=6,
         original_max_position_embeddings=8, pad_token_id=0,
         rope_parameters={"rope_type": "longrope", "rope_theta": 10000.0,
                          "partial_rotary_factor": 0.5, "short_factor": [1.0, 1.25],
                          "long_factor": [2.0, 8.0]}),
         tok="spm", outtype="f32", dtype="f32"),
]

LENS = [5, 9, 1, 12]
CONFIG_KEYS = ["hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
               "num_key_value_heads", "head_dim", "max_position_embeddings", "rms_norm_eps",
               "rope_theta", "vocab_size", "tie_word_embeddings", "bos_token_id",
               "eos_token_id"]


def model_classes(arch):
    import transformers as T
    return {"llama": (T.LlamaConfig, T.LlamaForCausalLM),
            "mistral": (T.MistralConfig, T.MistralForCausalLM),
            "qwen2": (T.Qwen2Config, T.Qwen2ForCausalLM),
            "gemma": (T.GemmaConfig, T.GemmaForCausalLM),
            "qwen3": (T.Qwen3Config, T.Qwen3ForCausalLM),
            "gemma2": (T.Gemma2Config, T.Gemma2ForCausalLM),
            "gemma3": (T.Gemma3TextConfig, T.Gemma3ForCausalLM),
            "olmo2": (T.Olmo2Config, T.Olmo2ForCausalLM),
            "phi3": (T.Phi3Config, T.Phi3ForCausalLM)}[arch]


def randomize(model, gen, gemma):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_((0.0 if gemma else 1.0) + 0.2 * torch.randn(p.shape, generator=gen))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * (0.2 if gemma else 1.0))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / p.shape[-1] ** 0.5)


def last_logits(model, prompts):
    with torch.no_grad():
        return torch.stack([model(input_ids=torch.tensor([p])).logits[0, -1] for p in prompts])


def stored(v, outtype):
    """A tensor as llama.cpp's converter stores it and gguf-py reads it back."""
    import gguf
    if v.dim() != 2:
        return v.float().clone()
    if outtype == "q8_0":
        q = gguf.quants.quantize(v.float().numpy(), gguf.GGMLQuantizationType.Q8_0)
        return torch.from_numpy(gguf.quants.dequantize(q, gguf.GGMLQuantizationType.Q8_0)
                                .reshape(v.shape).copy())
    dt = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}[outtype]
    return v.to(dt).float().clone()


def gguf_ids(cdir):
    """bos/eos as the file states them (the tokenizer's, not config.json's)."""
    import gguf
    r = gguf.GGUFReader(sorted(glob.glob(cdir + "/*.gguf"))[0])
    return {k: int(r.fields["tokenizer.ggml." + k].contents())
            for k in ("bos_token_id", "eos_token_id") if "tokenizer.ggml." + k in r.fields}


def round_to(sd, dtype):
    dt = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}[dtype]
    return {k: v.to(dt).to(torch.float64) for k, v in sd.items()}


def make_case(case, ci):
    from transformers import AutoModelForCausalLM
    name = case["name"]
    cdir = os.path.join(OUT, "models", name)
    os.makedirs(cdir)
    with tempfile.TemporaryDirectory() as tmp:
        hf = os.path.join(tmp, "hf")
        os.makedirs(hf)
        V = (spm_tokenizer if case["tok"] == "spm" else byte_level_tokenizer)(hf, 320)
        cfg_cls, model_cls = model_classes(case["arch"])
        if case["arch"] != "gemma3":  # (which cuts the embeddings to the vocabulary)
            V += 4  # more rows than tokens, as released models have: the converter pads
        config = cfg_cls(vocab_size=V, bos_token_id=1, eos_token_id=2, **case["cfg"])
        torch.manual_seed(ci)
        model = model_cls(config)
        gen = torch.Generator().manual_seed(2000 + ci)
        randomize(model, gen, case["arch"].startswith("gemma"))
        model.save_pretrained(hf)
        extra = ("--split-max-tensors", "8") if case.get("split") else ()
        out = os.path.join(cdir, "model.gguf")
        convert(hf, out, case["outtype"], extra, pre=case.get("pre"))
        prompts = [torch.randint(0, V, (n,), generator=gen).tolist() for n in LENS]
        if case.get("split") or case["cfg"].get("attention_bias"):
            # transformers' loader reads only a split model's first file, and drops
            # Llama's biases (its config has no attention_bias): the truth is the
            # original as the converter stores it (2-D tensors in the outtype through
            # gguf-py's own quantizer, 1-D f32), checked against what the loader has
            sd = {k: stored(v, case["outtype"]) for k, v in model.state_dict().items()}
            loaded = AutoModelForCausalLM.from_pretrained(
                cdir, gguf_file=os.path.basename(out if not case.get("split") else
                                                 sorted(glob.glob(cdir + "/*.gguf"))[0]),
                dtype=torch.float32).state_dict()
            if not case.get("split"):
                for k, v in loaded.items():
                    assert torch.equal(v, sd[k]), k
            ref = model_cls(config)
            ref.load_state_dict(sd)
            hf_cfg = config.to_dict()
            hf_cfg["architectures"] = [model_cls.__name__]
            hf_cfg.update(gguf_ids(cdir))
        elif case["arch"] in ("gemma", "gemma2", "gemma3", "olmo2", "phi3"):
            # no GGUF loader in transformers for Gemma and OLMo 2, Gemma 2's
            # ignores the file's soft-caps (it takes the class defaults, 50 and
            # 30), Phi-3's its longrope: the original, Gemma's norms through
            # w + 1 and back
            sd = {k: v.float().clone() for k, v in model.state_dict().items()}
            for k in sd:
                if k.endswith("norm.weight") and case["arch"].startswith("gemma"):
                    sd[k] = (sd[k] + 1) - 1
            if config.tie_word_embeddings:
                sd.pop("lm_head.weight", None)
            ref = model_cls(config)
            ref.load_state_dict(sd, strict=False)
            ref.tie_weights()
            hf_cfg = config.to_dict()
            hf_cfg.update(gguf_ids(cdir))
        else:
            parts = sorted(glob.glob(os.path.join(cdir, "model*.gguf")))
            ref = AutoModelForCausalLM.from_pretrained(cdir, gguf_file=os.path.basename(parts[0]),
                                                       dtype=torch.float32)
            sd = {k: v.clone() for k, v in ref.state_dict().items()}
            hf_cfg = ref.config.to_dict()
            ref = AutoModelForCausalLM.from_config(ref.config)  # plain, not "quantized"
            ref.load_state_dict(sd, strict=False)
            ref.tie_weights()
            if case["arch"] == "mistral":
                # llama.cpp stores Mistral as llama: the loader gives the original's
                # tensors (f16-rounded) under the same names, computed the same way
                for k, v in model.state_dict().items():  # 1-D tensors stay f32
                    assert torch.equal(sd[k], v.half().float() if v.dim() == 2 else v), k
        if config.tie_word_embeddings:
            sd.pop("lm_head.weight", None)
        # logits of the weights as imported (rounded to the import dtype), fp64 and fp32
        r64 = ref.double().eval()
        r64.load_state_dict(round_to({k: v for k, v in sd.items()}, case["dtype"]), strict=False)
        r64.tie_weights()
        l64 = last_logits(r64, prompts)
        l32 = last_logits(r64.float(), prompts)
        save_file({**{k: v.float().contiguous() for k, v in sd.items()},
                   "logits": l64.float().contiguous()}, os.path.join(cdir, "expected.safetensors"))
        meta = {"case": name, "architecture": hf_cfg["architectures"][0]
                if hf_cfg.get("architectures") else model_cls.__name__,
                "dtype": case["dtype"], "outtype": case["outtype"],
                "prompts": prompts, "err32": (l32.double() - l64).abs().max().item(),
                "tensors": sorted(sd), "n_files": len(glob.glob(os.path.join(cdir, "*.gguf"))),
                "config": {k: hf_cfg.get(k) for k in CONFIG_KEYS},
                "transformers": __import__("transformers").__version__}
        if meta["config"]["rope_theta"] is None:  # transformers 5 keeps it in rope_parameters
            rp = hf_cfg.get("rope_parameters") or {}
            meta["config"]["rope_theta"] = rp.get("full_attention", rp).get("rope_theta")
        if meta["config"]["head_dim"] is None:
            meta["config"]["head_dim"] = config.hidden_size // config.num_attention_heads
        if case["arch"] == "mistral":
            meta["architecture"] = "LlamaForCausalLM"
        with open(os.path.join(cdir, "meta.json"), "w") as f:
            json.dump(meta, f, indent=1, sort_keys=True)
            f.write("\n")
        print(f"{name}: {len(sd)} tensors, {meta['n_files']} file(s), err32 {meta['err32']:.2g}",
              file=sys.stderr)
    return name


# ---------------------------------------------------------------- vocab fixtures
def spm_scores_from_merges(path, tokenizer_json):
    """Rewrites the vocab-only GGUF at path with SentencePiece-style scores:
    a token's score is minus the rank of the first merge that makes it."""
    import gguf
    tj = json.load(open(tokenizer_json))
    first = {}
    for k, m in enumerate(tj["model"]["merges"]):
        a, b = m.split(" ") if isinstance(m, str) else m
        first.setdefault(a + b, k)
    r = gguf.GGUFReader(path)
    tokens = r.fields["tokenizer.ggml.tokens"].contents()
    types = r.fields["tokenizer.ggml.token_type"].contents()
    scores = [-float(first[t]) if t in first else (0.0 if ty == 1 else -1000.0)
              for t, ty in zip(tokens, types)]
    w = gguf.GGUFWriter(path + ".new", r.fields["general.architecture"].contents())
    for key, field in r.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        val = scores if key == "tokenizer.ggml.scores" else field.contents()
        vtype = field.types[0]
        if vtype == gguf.GGUFValueType.ARRAY:
            w.add_key_value(key, val, vtype, sub_type=field.types[-1])
        else:
            w.add_key_value(key, val, vtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(path + ".new", path)


def vocab_gguf(name, tmp):
    src = os.path.join(shared_dir(), name)
    d = os.path.join(tmp, name)
    shutil.copytree(src, d)
    tj = json.load(open(os.path.join(d, "tokenizer.json")))
    V = max(max(tj["model"]["vocab"].values()), max(a["id"] for a in tj["added_tokens"])) + 1
    arch = "Qwen2ForCausalLM" if name.startswith("qwen") else "LlamaForCausalLM"
    V = 151936 if name.startswith("qwen") else V
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump({"architectures": [arch], "hidden_size": 32, "intermediate_size": 64,
                   "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 2,
                   "vocab_size": V, "max_position_embeddings": 64, "rms_norm_eps": 1e-6}, f)
    out = os.path.join(tmp, name + ".gguf")
    convert(d, out, "f16", vocab_only=True)
    if name == "mistral_v01":
        spm_scores_from_merges(out, os.path.join(d, "tokenizer.json"))
    return out


def check_vocab(name, gguf_path, tmp):
    """rl-import --vocab-only, then tokenizers on its tokenizer.json: the goldens."""
    from tokenizers import Tokenizer
    out = os.path.join(tmp, "out-" + name)
    subprocess.run([os.path.join(RL_BIN, "rl-import"), "--vocab-only", "-q", gguf_path, "-o", out],
                   check=True)
    tk = Tokenizer.from_file(os.path.join(out, "tokenizer.json"))
    corpus = [json.loads(line)["s"] for line in open(os.path.join(TOKF, "corpus.jsonl"))]
    gold = [json.loads(line) for line in open(os.path.join(TOKF, name + ".golden.jsonl"))]
    for s, g in zip(corpus, gold):
        assert tk.encode(s, add_special_tokens=False).ids == g["ids"], (name, s)
        if "ids_special" in g:
            assert tk.encode(s, add_special_tokens=True).ids == g["ids_special"], (name, s)
    cfg = json.load(open(os.path.join(out, "tokenizer_config.json")))
    orig = json.load(open(os.path.join(shared_dir(), name, "tokenizer_config.json")))
    assert cfg.get("chat_template") == orig.get("chat_template"), name
    print(f"vocab {name}: {len(corpus)} corpus strings as the original tokenizer", file=sys.stderr)


def main():
    if not LLAMA_CPP or not os.path.exists(os.path.join(LLAMA_CPP, "convert_hf_to_gguf.py")):
        sys.exit("gen_import.py: set LLAMA_CPP to llama.cpp's source (see the docstring)")
    torch.set_num_threads(1)
    only = set(sys.argv[1:])  # model cases to rewrite (seeds follow the case's place)
    if only:
        for i, c in enumerate(CASES):
            if c["name"] in only:
                shutil.rmtree(os.path.join(OUT, "models", c["name"]), ignore_errors=True)
                make_case(c, i)
        with open(os.path.join(OUT, "models", "cases.txt"), "w") as f:
            f.write("\n".join(c["name"] for c in CASES) + "\n")
        return
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(os.path.join(OUT, "vocab"))
    names = [make_case(c, i) for i, c in enumerate(CASES)]
    with open(os.path.join(OUT, "models", "cases.txt"), "w") as f:
        f.write("\n".join(names) + "\n")
    with tempfile.TemporaryDirectory() as tmp:
        for name in ["qwen2_5", "mistral_v01", "mistral_nemo", "llama3_2"]:
            g = vocab_gguf(name, tmp)
            check_vocab(name, g, tmp)
            if name in ("qwen2_5", "mistral_v01"):
                with open(g, "rb") as f, lzma.open(os.path.join(OUT, "vocab", name + ".gguf.xz"),
                                                   "wb", preset=9) as z:
                    z.write(f.read())


if __name__ == "__main__":
    main()
