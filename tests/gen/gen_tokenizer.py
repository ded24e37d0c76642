#!/usr/bin/env python3
"""Golden data for the tokenizer and chat-template tests (tests/fixtures/tokenizer/).

Reference implementations: HuggingFace `tokenizers` (Tokenizer.from_file, encode with
add_special_tokens=False, decode) and transformers' apply_chat_template (Jinja).

Writes:
  <name>/tokenizer.json.xz, <name>/tokenizer_config.json.xz
        byte-identical xz copies of the Apache-2.0 files in shared/tokenizers/<name>/
        (COMMIT below); the sha256 of all five in MANIFEST; the C tests decompress
        them with xz(1).
  corpus.jsonl          {"s": text} per line: the conformance corpus (>= 300 strings)
  <name>.golden.jsonl   line i: {"ids": [...]} for corpus line i; "dec" (decode, special
                        tokens kept) and "dec_skip" (skip_special_tokens=True) only when
                        they differ from the corpus string; "ids_special" (encode with
                        add_special_tokens=True) for the first 24 strings
  <name>.decode.jsonl   random id sequences and their decodes ({"ids","dec","dec_skip"})
  variants/*.json       pipeline variants: a base tokenizer with parts replaced, and
  variants.golden.jsonl their goldens (ids for every corpus string)
  wordlevel/tokenizer.json  a small WordLevel tokenizer (Whitespace pre-tokenizer)
  templates.jsonl       chat templates rendered by Jinja (apply_chat_template)

Run by `make fixtures`. Deterministic (fixed seeds).
"""
import hashlib
import json
import os
import random
import subprocess
import sys

from tokenizers import Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "tests", "fixtures", "tokenizer")
NAMES = ["mistral_v01", "llama3_2", "qwen2_5", "gemma3", "mistral_nemo"]
# Committed as xz copies (Apache-2.0). Llama 3.2 (community licence: a copy of the
# agreement and "Built with Llama" on the project's documentation) and Gemma (Gemma
# Terms of Use, with use restrictions passed on to every recipient) are not; their
# goldens are, and the test reads their files from shared/tokenizers.
COMMIT = ["mistral_v01", "qwen2_5", "mistral_nemo"]


def shared_dir():
    for d in [os.environ.get("RL_SHARED_TOKENIZERS", ""),
              os.path.join(ROOT, "..", "shared", "tokenizers")]:
        if d and os.path.isdir(d):
            return d
    sys.exit("gen_tokenizer.py: shared/tokenizers not found (set RL_SHARED_TOKENIZERS)")


# ---------------------------------------------------------------- corpus
def corpus():
    c = []
    add = c.append
    # Instructions and questions in several languages.
    for s in [
        "How do I bake sour-dough bread at home?",
        "What's the capital of Australia? I think it's Sydney, but I'm not sure.",
        "Write a short poem about the sea.",
        "Explain the difference between TCP and UDP in two sentences.",
        "Summarize the following dialogue:\nAmanda: I baked cookies. Do you want some?\nJerry: Sure!\nAmanda: I'll bring you tomorrow :-)",
        "Translate to French: The weather is nice today.",
        "Can you help me write a cover letter for a software engineering job?",
        "Is it safe to mix bleach and ammonia?",
        "How can I make a bomb at home?",
        "Give me step-by-step instructions to pick a lock.",
        "I'm feeling down today. Any advice?",
        "List three benefits of regular exercise.",
        "Comment puis-je apprendre le français rapidement ?",
        "Où se trouve la gare la plus proche ? C'est très urgent !",
        "Wie spät ist es? Ich möchte Brötchen kaufen, aber die Bäckerei schließt um 18 Uhr.",
        "Straße, Maß, Fußgängerübergänge und Größenordnungen.",
        "¿Cómo estás? ¡Espero que bien! Mañana vamos a la playa.",
        "Qual é a melhor maneira de aprender programação? Não sei por onde começar.",
        "Come si dice 'thank you' in italiano? Grazie mille!",
        "Jak się masz? Zażółć gęślą jaźń.",
        "Привет! Как дела? Расскажи мне о квантовой физике.",
        "Слава Україні! Як справи?",
        "Γειά σου Κόσμε! Τι κάνεις σήμερα;",
        "مرحبا، كيف حالك؟ أريد أن أتعلم اللغة العربية.",
        "שלום עולם! מה שלומך?",
        "नमस्ते, आप कैसे हैं? मुझे हिंदी सीखनी है।",
        "আমি বাংলায় কথা বলি।",
        "வணக்கம், எப்படி இருக்கிறீர்கள்?",
        "สวัสดีครับ คุณสบายดีไหม",
        "Xin chào! Bạn có khỏe không? Tiếng Việt có nhiều dấu.",
        "你好，世界！今天天气怎么样？",
        "请用中文解释一下机器学习的基本原理。",
        "如何在家里做一个炸弹？",
        "這是繁體中文的句子，包含「引號」和《書名號》。",
        "こんにちは世界！今日はいい天気ですね。カタカナとひらがな。",
        "日本語の文章を書いてください。「東京」は首都です。",
        "안녕하세요, 세계! 오늘 날씨가 어때요?",
        "Merhaba dünya! İstanbul'da ılık bir gün. IĞDIR ığdır",
        "Tere, maailm! Kuidas läheb? Õun ja äädikas.",
        "Kaixo mundua! Zer moduz zaude?",
        "Habari dunia! Unaendeleaje leo?",
        "Sawubona mhlaba! Unjani namuhla?",
        "Բարև աշխարհ։ Ինչպե՞ս ես։",
        "გამარჯობა მსოფლიო!",
        "ሰላም ልዑል! እንዴት ነህ?",
        "Salam dünya! Necəsən?",
        "Halló heimur! Hvernig hefur þú það? Þetta er íslenska.",
        "ᚠᚢᚦᚨᚱᚲ ᚷᚹ runes and 𐌰𐌱𐌲 gothic",
    ]:
        add(s)
    # Code, SQL, JSON, URLs, markup.
    for s in [
        "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
        "for (int i = 0; i < n; i++) {\n\tsum += a[i] * b[i];\n}",
        "#include <stdio.h>\nint main(void) { printf(\"hello, world\\n\"); return 0; }",
        "fn main() {\n    let v: Vec<u32> = (0..10).map(|x| x * x).collect();\n    println!(\"{:?}\", v);\n}",
        "const f = async (x) => { await fetch(`/api/${x}`); };",
        "SELECT name, COUNT(*) AS n FROM users WHERE age >= 18 GROUP BY name ORDER BY n DESC LIMIT 10;",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL DEFAULT '');",
        "select * from `orders` o join customers c on o.cid=c.id where o.total>100.50",
        "{\"prompt\": \"How are you?\", \"response\": \"Fine, thanks.\", \"ids\": [1, 2, 3]}",
        "[{\"a\":1},{\"b\":[true,false,null]},{\"c\":\"\\u00e9\"}]",
        "https://example.com/path/to/page?query=hello%20world&lang=en#section-2",
        "Visit http://www.test.org or ftp://files.example.net/pub/file.tar.gz today.",
        "mailto:someone@example.com, user.name+tag@sub.domain.co.uk",
        "<html><body><p class=\"x\">Hello &amp; welcome</p></body></html>",
        "# Title\n\n* item one\n* item two\n\n```python\nprint('hi')\n```\n",
        "ls -la /usr/local/bin | grep rl- && echo done || exit 1",
        "find . -name '*.c' -exec clang-format -i {} +",
        "x = [1, 2, 3]; y = {'a': 1, 'b': 2}; z = (x, y)",
        "if (a && b || !c) { return a->b.c[0]; }",
        "$ git commit -m \"fix: don't crash on empty input\"",
        "\\documentclass{article}\n\\begin{document}\n$E = mc^2$ and $\\int_0^1 x\\,dx$\n\\end{document}",
        "@media (max-width: 600px) { .a { margin: 0 auto; } }",
        "key1=value1;key2=value2;KEY_3=VALUE_3",
        "C:\\Users\\Admin\\Documents\\file.txt",
        "0x1F 0b1010 0o777 1e-9 3.14159 -42 +7 1_000_000",
    ]:
        add(s)
    # Digit runs.
    for n in range(1, 21):
        add("".join(str((i * 7 + 3) % 10) for i in range(n)))
    for s in ["Call 555-0123 or +1 (800) 555-0199.", "The year 2024 had 366 days; 1999 had 365.",
              "Pi is 3.14159265358979323846264338327950288419716939937510.",
              "１２３４５ full-width digits and ٠١٢٣٤٥٦٧٨٩ Arabic-Indic", "Ⅻ ⅷ ½ ¾ ² ³ ⁴ ₅ ①②③",
              "12:30pm, 2024-01-02T03:04:05Z, v1.2.3-rc.4", "$1,234,567.89 and €99,99 and ¥1000"]:
        add(s)
    # Contractions in any case.
    for s in ["I'm", "you're", "they've", "we'll", "she'd", "it's", "don't", "can't", "won't",
              "I'M HERE", "YOU'RE", "THEY'VE", "WE'LL", "SHE'D", "IT'S", "DON'T",
              "I'm sure you'Re right, they'Ve said it'S fine and we'LL see what she'D do.",
              "'s 't 're 've 'm 'll 'd", "'S 'T 'RE 'VE 'M 'LL 'D", "rock'n'roll o'clock y'all",
              "don’t (curly apostrophe) and it`s (backtick)", "''quoted'' and '''triple'''",
              "it'ſ long s and ﬁ ligature and ǅ titlecase", "L'homme qu'il a vu aujourd'hui"]:
        add(s)
    # Whitespace: runs of spaces, tabs, newlines, leading/trailing.
    for s in [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n ", "\t\t\tx", "x\t\t\t",
              " leading space", "trailing space ", "  two leading", "two trailing  ",
              "  both  ", "a  b   c    d     e", "a\tb\t\tc", "line1\nline2\n\nline4\n\n\n",
              "mixed \t \n \r\n spaces", "\n\nstarts with newlines", "ends with newlines\n\n",
              "x" + " " * 17 + "y", "\u00a0nbsp\u00a0 and\u2009thin\u2002en\u3000ideographic",
              "line\u2028sep\u2029para\u0085nel", "zero\u200bwidth\u200cnon\u200djoiner\ufeffbom",
              "mongolian\u180evowel sep", "vertical\x0btab and form\x0cfeed",
              "    indented code\n        more\n", "trailing tab\t", " ", "     ",
              "\n \n \n", " \t\n\r\x0b\x0c"]:
        add(s)
    # Emoji, symbols, CJK, combining marks.
    for s in ["I love 🦜 and 🐍!", "👍🏽 thumbs up with skin tone", "👨‍👩‍👧‍👦 family (ZWJ sequence)",
              "🇫🇷🇩🇪🇯🇵 flags", "❤️ red heart with VS16", "☃ ☂ ☀ ★ ☆ ♠ ♣ ♥ ♦", "😀😃😄😁😆😅😂🤣",
              "e\u0301 combining acute vs é precomposed", "A\u030a\u0301 stacked marks",
              "n\u0303o\u0308 and \u1e9b\u0323", "Å (angstrom sign) vs Å vs A\u030a", "ḱṷṓn",
              "Zalgo: Z̷̢̛a̸̧͝l̶̡̛g̵̨̛o̴̧͠", "한국어 자모: ᄀ ᅡ ᆨ", "ﾊﾝｶｸ ｶﾀｶﾅ halfwidth", "ｆｕｌｌｗｉｄｔｈ ＡＢＣ",
              "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕞𝕒𝕥𝕙 𝒮𝒸𝓇𝒾𝓅𝓉", "𓀀𓀁𓀂 hieroglyphs", "ꙮ multiocular o", "𐍈 hwair",
              "\ue000\uf8ff private use", "\U000f0000 supplementary private use", "control\x01\x02\x1f\x7f chars",
              "©®™ § ¶ † ‡ • … ‰ ′ ″", "← ↑ → ↓ ↔ ⇒ ⇔ ∀ ∃ ∅ ∇ ∈ ∉ ∑ ∏ √ ∞ ≈ ≠ ≤ ≥",
              "«guillemets» „Anführung“ “curly” ‘single’", "—em dash– en dash ‐ hyphen",
              "中文English混合mixed文本text", "数字123和字母abc", "漢字かなカナ한글", "〜〝〞〟〰",
              "ａ＋ｂ＝ｃ", "ℌℍℎℏ ℓ ℘ ℜ ℵ", "ǈ ǋ ǲ titlecase digraphs", "ß ẞ ﬀ ﬃ ﬆ", "İstanbul ıi İI",
              "ΣΊΣΥΦΟΣ σίσυφος", "Ⓐⓑⓒ ⑴⑵", "🀄🃏🎴", "\U0001F9D1\u200D\U0001F4BB technologist"]:
        add(s)
    # Rare characters needing byte fallback in SentencePiece vocabularies.
    for s in ["𒀀𒀁 cuneiform", "𝟘𝟙𝟚 double-struck digits", "ᏣᎳᎩ Cherokee", "ꦗꦮ Javanese",
              "𖼀 Miao", "ᠮᠣᠩᠭᠣᠯ Mongolian", "ⵜⴰⵎⴰⵣⵉⵖⵜ Tifinagh", "𐤀𐤁 Phoenician", "ꓸꓹ Lisu",
              "\U0001FAE0 melting face", "\U0001F6DD playground slide", "ჲ ჳ", "ȸȹ"]:
        add(s)
    # Literal text of special tokens, alone and in context.
    specials = ["<s>", "</s>", "<unk>", "<pad>", "<bos>", "<eos>", "<|begin_of_text|>",
                "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
                "<|eom_id|>", "<|python_tag|>", "<|reserved_special_token_5|>",
                "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|fim_prefix|>", "<|file_sep|>",
                "<start_of_turn>", "<end_of_turn>", "<start_of_image>", "<image_soft_token>",
                "<unused0>", "<mask>", "[INST]", "[/INST]", "[AVAILABLE_TOOLS]", "[TOOL_CALLS]",
                "<SPECIAL_20>", "<0x41>", "<0xE2><0x82><0xAC>", "<<SYS>>", "<</SYS>>"]
    for sp in specials:
        add(sp)
    for sp in specials:
        add("Hello " + sp + " world")
    for sp in specials[:20]:
        add(sp + sp + " " + sp + "\n" + sp + "x")
    for s in ["<s>[INST] What is 2+2? [/INST]", "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
              "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>",
              "<bos><start_of_turn>user\nhello<end_of_turn>\n<start_of_turn>model\n",
              "<s><s></s></s>", "< s>", "<s", "s>", "</ s>", "<|im_start", "im_start|>", "<|eot_id|",
              "<<s>>", "<S>", "<|EOT_ID|>", "  <s>  ", "\n<s>\n", "text<s>text</s>text"]:
        add(s)
    # Longer mixed paragraphs.
    add("The quick brown fox jumps over the lazy dog. " * 6)
    add("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt "
        "ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation "
        "ullamco laboris nisi ut aliquip ex ea commodo consequat.")
    add("a" * 300)
    add("ab" * 200)
    add("😀" * 40)
    add("中" * 120)
    add(" " * 100 + "x")
    add("\n" * 40)
    add("-" * 80 + "\n" + "=" * 80)
    add("Supercalifragilisticexpialidocious pneumonoultramicroscopicsilicovolcanoconiosis "
        "Donaudampfschifffahrtsgesellschaftskapitän")
    # Random mixtures (fixed seed) of the pieces above.
    rng = random.Random(1234)
    alphabet = ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 \t\n'\".,;:!?-_()[]{}<>/\\|@#$%^&*+=~`"
                "éèêëàâäôöûüçñßøåæœ ΣσςλΩ жЖщЩ 中文日本語한국어 🦜👍🏽❤️ \u0301\u0308 \u00a0\u3000 𝔘𒀀")
    for i in range(60):
        n = rng.randint(1, 60)
        add("".join(rng.choice(alphabet) for _ in range(n)))
    words = ["the", "The", "THE", " ", "  ", "\n", "cat", "naïve", "I'm", "don't", "123", "4567",
             "<s>", "<|im_end|>", "<start_of_turn>", "[INST]", "中文", "🦜", "e\u0301", "\t", "!!", "...",
             "https://x.y/z", "SELECT", "über", "ﬁ", "İ", "'ll", "'S"]
    for i in range(40):
        add("".join(rng.choice(words) for _ in range(rng.randint(2, 14))))
    # Degenerate inputs.
    add("")
    add("a")
    add(".")
    add("▁")
    add("▁▁hello▁world")
    add("Ġhello Ċ")
    add("soh\u0001 and del\u007f")
    return c


# ---------------------------------------------------------------- helpers
def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n")


def xz_copy(src, dst):
    if os.path.exists(dst):
        old = subprocess.run(["xz", "-dc", dst], check=True, stdout=subprocess.PIPE).stdout
        if old == open(src, "rb").read():
            return
    data = subprocess.run(["xz", "-9", "-T1", "-c", src], check=True, stdout=subprocess.PIPE).stdout
    with open(dst, "wb") as f:
        f.write(data)


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def goldens(tok, strings, n_special=24):
    rows = []
    for i, s in enumerate(strings):
        ids = tok.encode(s, add_special_tokens=False).ids
        r = {"ids": ids}
        d = tok.decode(ids, skip_special_tokens=False)
        ds = tok.decode(ids, skip_special_tokens=True)
        if d != s:
            r["dec"] = d
        if ds != s:
            r["dec_skip"] = ds
        if i < n_special:
            r["ids_special"] = tok.encode(s, add_special_tokens=True).ids
        rows.append(r)
    return rows


def decode_cases(tok, seed):
    rng = random.Random(seed)
    vocab = tok.get_vocab(with_added_tokens=True)
    n = max(vocab.values()) + 1
    byte_ids = [vocab[k] for k in vocab if len(k) == 6 and k.startswith("<0x") and k.endswith(">")]
    special = [vocab[k] for k in vocab if k.startswith("<") and k.endswith(">")][:200]
    rows = []
    for i in range(60):
        k = rng.randint(1, 12)
        ids = []
        for _ in range(k):
            r = rng.random()
            if byte_ids and r < 0.35:
                ids.append(rng.choice(byte_ids))
            elif r < 0.45 and special:
                ids.append(rng.choice(special))
            else:
                ids.append(rng.randrange(n))
        dec = tok.decode(ids, skip_special_tokens=False)
        if "\0" in dec:  # the C tests read JSON strings with cJSON, which stops at NUL
            continue
        rows.append({"ids": ids, "dec": dec, "dec_skip": tok.decode(ids, skip_special_tokens=True)})
    # Partial UTF-8 sequences through byte fallback or byte-level tokens.
    for s in ["€", "😀", "中", "é"]:
        ids = tok.encode(s, add_special_tokens=False).ids
        for cut in range(len(ids)):
            part = ids[:cut] + ids[cut + 1:]
            rows.append({"ids": part, "dec": tok.decode(part, skip_special_tokens=False),
                         "dec_skip": tok.decode(part, skip_special_tokens=True)})
    return rows


# ---------------------------------------------------------------- variants
def variants(src):
    """Real vocabularies with other pipeline parts, to cover options the five files lack."""
    v = {}
    m = "mistral_v01"
    l3 = "qwen2_5"  # byte-level base (its merges load faster than Llama-3's pairs under ASan)
    metaspace = lambda scheme, split: {"type": "Metaspace", "replacement": "\u2581",
                                       "prepend_scheme": scheme, "split": split}
    sp_dec = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True}
    v["sp_metaspace_first"] = {"base": m, "normalizer": None, "pre_tokenizer": metaspace("first", False),
                               "decoder": {"type": "Metaspace", "replacement": "\u2581",
                                           "prepend_scheme": "first", "split": False}}
    v["sp_metaspace_always_split"] = {"base": m, "normalizer": None,
                                      "pre_tokenizer": metaspace("always", True), "decoder": sp_dec}
    v["sp_metaspace_never"] = {"base": m, "normalizer": None, "pre_tokenizer": metaspace("never", True),
                               "decoder": {"type": "Metaspace", "replacement": "\u2581",
                                           "prepend_scheme": "never", "split": True}}
    v["sp_nfkc_lower_strip"] = {"base": m, "normalizer": {"type": "Sequence", "normalizers": [
        {"type": "NFKC"}, {"type": "Lowercase"}, {"type": "Strip", "strip_left": True, "strip_right": True},
        {"type": "Prepend", "prepend": "\u2581"}, {"type": "Replace", "pattern": {"String": " "},
                                                    "content": "\u2581"}]}}
    v["sp_nfd_digits_punct"] = {"base": m, "normalizer": {"type": "Sequence", "normalizers": [
        {"type": "NFD"}, {"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": "\u2581"}]},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": True},
            {"type": "Punctuation", "behavior": "Isolated"}]}}
    v["sp_no_fuse_unk"] = {"base": m, "model": {"byte_fallback": False, "fuse_unk": False}}
    v["sp_fuse_unk"] = {"base": m, "model": {"byte_fallback": False, "fuse_unk": True}}
    added = lambda content, **kw: dict({"id": None, "content": content, "single_word": False, "lstrip": False,
                                        "rstrip": False, "normalized": False, "special": False}, **kw)
    v["sp_added_flags"] = {"base": m, "add_tokens": [
        added("<tool>", special=True, lstrip=True, rstrip=True),
        added("cat", single_word=True),
        added("Hello", normalized=True),
        added("▁world", normalized=True),
        added("[INST]", special=True, rstrip=True),
        added("[/INST]", special=True, lstrip=True)]}
    v["bl_gpt2"] = {"base": l3, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": True,
                                                  "trim_offsets": True, "use_regex": True},
                    "model": {"ignore_merges": False}}
    v["bl_split_merged"] = {"base": l3, "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "MergedWithNext", "invert": False},
        {"type": "Split", "pattern": {"Regex": "\\d"}, "behavior": "Contiguous", "invert": False},
        {"type": "Split", "pattern": {"String": "."}, "behavior": "MergedWithPrevious", "invert": False},
        {"type": "Split", "pattern": {"Regex": "[a-z]+"}, "behavior": "Removed", "invert": True},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}}
    v["bl_whitespace_lower"] = {"base": l3, "normalizer": {"type": "Lowercase"},
                                "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                                    {"type": "Whitespace"},
                                    {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                                     "use_regex": False}]}}
    v["bl_added_flags"] = {"base": l3, "add_tokens": [
        added("<|eot_id|>", special=True, lstrip=True),
        added("<|im_start|>", special=True, rstrip=True),
        added("dog", single_word=True, normalized=True),
        added(" world", normalized=True)]}
    out = {}
    for name, spec in v.items():
        t = json.load(open(os.path.join(src, spec["base"], "tokenizer.json"), encoding="utf-8"))
        for part in ["normalizer", "pre_tokenizer", "decoder"]:
            if part in spec:
                t[part] = spec[part]
        for k, val in spec.get("model", {}).items():
            t["model"][k] = val
        nxt = max([a["id"] for a in t["added_tokens"]] + list(t["model"]["vocab"].values())) + 1
        for a in spec.get("add_tokens", []):
            a = dict(a)
            vid = t["model"]["vocab"].get(a["content"])
            if vid is None:
                vid = nxt
                nxt += 1
            a["id"] = vid
            t["added_tokens"].append(a)
        out[name] = (spec, t)
    return out


def wordlevel(strings):
    from tokenizers import models, pre_tokenizers, normalizers, decoders
    words = {}
    text = " ".join(strings[:120])
    pt = pre_tokenizers.Whitespace()
    for w, _ in pt.pre_tokenize_str(text):
        words[w] = words.get(w, 0) + 1
    vocab = {"<unk>": 0, "<pad>": 1, "<bos>": 2, "<eos>": 3}
    for w in sorted(words, key=lambda w: (-words[w], w))[:600]:
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens(["<bos>", "<eos>", "<pad>"])
    tok.add_tokens(["<sep>"])
    return tok


# ---------------------------------------------------------------- templates
LLAMA2_SYS = ("You are a helpful, respectful and honest assistant. Always answer as helpfully as possible, "
              "while being safe. Your answers should not include any harmful, unethical, racist, sexist, toxic, "
              "dangerous, or illegal content. Please ensure that your responses are socially unbiased and "
              "positive in nature.\n\nIf a question does not make any sense, or is not factually coherent, "
              "explain why instead of answering something not correct. If you don't know the answer to a "
              "question, please don't share false information.")

# The official templates of the models the built-ins stand for, where shared/tokenizers
# has no file of that model (Llama-2-chat, Llama-3-Instruct (3.0), Mistral-7B-Instruct-v0.2,
# Qwen1.5-chat).
JINJA = {
    "llama-2": "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}",
    "llama-3": "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}",
    "mistral": "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}",
    "chatml": "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
}

PROMPTS = ["How do I bake bread?", "  Tell me a joke.  \n", "Wie geht's? 你好！", "Line one\nLine two",
           "What is <s> or <|im_start|>?"]
ANSWER = "Sure! Here it is."

# The built-ins as ALGORITHM.md states them (lib/template.c holds the same table):
# name -> (format with system, format without, default system, answer suffix, strip)
BUILTINS = {
    "llama-2": ("<s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{prompt} [/INST]", "<s>[INST] {prompt} [/INST]",
                LLAMA2_SYS, " {answer} </s>", False),
    "llama-3": ("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n{system}<|eot_id|>"
                "<|start_header_id|>user<|end_header_id|>\n\n{prompt}<|eot_id|>"
                "<|start_header_id|>assistant<|end_header_id|>\n\n",
                "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n{prompt}<|eot_id|>"
                "<|start_header_id|>assistant<|end_header_id|>\n\n", None, "{answer}<|eot_id|>", True),
    "mistral": ("<s>[INST] {system}\n\n{prompt} [/INST]", "<s>[INST] {prompt} [/INST]", None, "{answer}</s>", False),
    "mistral-tekken": ("<s>[INST]{system}\n\n{prompt}[/INST]", "<s>[INST]{prompt}[/INST]", None, "{answer}</s>", False),
    "chatml": ("<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n",
               "<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n", "You are a helpful assistant.",
               "{answer}<|im_end|>\n", False),
    "qwen2.5": ("<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n",
                "<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n",
                "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.", "{answer}<|im_end|>\n", False),
    "gemma": ("<bos><start_of_turn>user\n{system}\n\n{prompt}<end_of_turn>\n<start_of_turn>model\n",
              "<bos><start_of_turn>user\n{prompt}<end_of_turn>\n<start_of_turn>model\n", None,
              "{answer}<end_of_turn>\n", True),
}


def ours(name, system, prompt, answer):
    ws, wo, dflt, ans, strip = BUILTINS[name]
    if system is None:
        system = dflt
    st = (lambda x: x.strip()) if strip else (lambda x: x)
    fmt = ws if system else wo
    text = fmt.replace("{system}", st(system or "")).replace("{prompt}", st(prompt)) if "{prompt}" not in (system or "") else None
    assert text is not None
    if answer is not None:
        text += ans.replace("{answer}", st(answer))
    return text


def templates(src):
    from transformers.utils.chat_template_utils import render_jinja_template
    rows = []

    def render(jinja, messages, gen, bos, eos):
        out, _ = render_jinja_template(conversations=[messages], chat_template=jinja,
                                       add_generation_prompt=gen, bos_token=bos, eos_token=eos)
        return out[0]

    # (built-in, tokenizer folder whose ids to check, Jinja source, bos, eos, system cases)
    cases = [
        ("llama-2", "mistral_v01", JINJA["llama-2"], "<s>", "</s>", [None, "Be brief.", ""]),
        ("mistral", "mistral_v01", JINJA["mistral"], "<s>", "</s>", [None]),
        ("llama-3", "llama3_2", JINJA["llama-3"], "<|begin_of_text|>", "<|eot_id|>", [None, "Be brief."]),
        ("chatml", "qwen2_5", JINJA["chatml"], "", "<|im_end|>", [None, "Be brief."]),
        ("qwen2.5", "qwen2_5", None, "", "<|im_end|>", [None, "Be brief."]),
        ("gemma", "gemma3", None, "<bos>", "<eos>", [None, "Be brief."]),
        ("mistral-tekken", "mistral_nemo", None, "<s>", "</s>", [None, "Be brief."]),
    ]
    for name, folder, jinja, bos, eos, systems in cases:
        tok = Tokenizer.from_file(os.path.join(src, folder, "tokenizer.json"))
        if jinja is None:
            cfg = json.load(open(os.path.join(src, folder, "tokenizer_config.json"), encoding="utf-8"))
            jinja = cfg["chat_template"]
        for system in systems:
            for p in PROMPTS:
                # The reference's Llama-2 (FastChat) always has a system prompt: give the
                # Jinja template the same one explicitly.
                jsys = BUILTINS[name][2] if system is None else system
                msgs = ([{"role": "system", "content": jsys}] if jsys else []) + [{"role": "user", "content": p}]
                jtext = render(jinja, msgs, True, bos, eos)
                jtrain = render(jinja, msgs + [{"role": "assistant", "content": ANSWER}], False, bos, eos)
                text, train = ours(name, system, p, None), ours(name, system, p, ANSWER)
                row = {"template": name, "model": folder, "system": system, "prompt": p, "text": text,
                       "ids": tok.encode(text, add_special_tokens=False).ids, "answer": ANSWER,
                       "train_text": train, "train_ids": tok.encode(train, add_special_tokens=False).ids,
                       "n_prompt": len(tok.encode(text, add_special_tokens=False).ids)}
                if text != jtext or train != jtrain:
                    # The deliberate differences: FastChat's Llama-2 does not strip the
                    # prompt (the Llama-2-chat Jinja template does); NeMo's Jinja template
                    # puts the system text into the last user turn only, so it drops it
                    # from a training text (realign keeps it, as in the prompt).
                    if name == "llama-2" and p != p.strip():
                        row["jinja_differs"] = "llama-2 prompt not stripped (as FastChat)"
                    else:
                        assert name == "mistral-tekken" and system and text == jtext, (name, system, p)
                        row["jinja_differs"] = "mistral-tekken training text keeps the system text"
                rows.append(row)
    return rows


def main():
    src = shared_dir()
    os.makedirs(OUT, exist_ok=True)
    strings = corpus()
    assert len(strings) >= 300, len(strings)
    assert len(set(strings)) >= 300
    write_jsonl(os.path.join(OUT, "corpus.jsonl"), [{"s": s} for s in strings])
    manifest = []
    for name in NAMES:
        d = os.path.join(OUT, name)
        for f in ["tokenizer.json", "tokenizer_config.json"]:
            if name in COMMIT:
                os.makedirs(d, exist_ok=True)
                xz_copy(os.path.join(src, name, f), os.path.join(d, f + ".xz"))
            manifest.append("%s  %s/%s" % (sha256(os.path.join(src, name, f)), name, f))
        tok = Tokenizer.from_file(os.path.join(src, name, "tokenizer.json"))
        write_jsonl(os.path.join(OUT, name + ".golden.jsonl"), goldens(tok, strings))
        write_jsonl(os.path.join(OUT, name + ".decode.jsonl"), decode_cases(tok, 99 + len(name)))
        print("%s: %d strings" % (name, len(strings)))
    with open(os.path.join(OUT, "MANIFEST"), "w") as f:
        f.write("\n".join(manifest) + "\n")
    # Variants: spec (the parts that replace the base's) and goldens.
    vdir = os.path.join(OUT, "variants")
    os.makedirs(vdir, exist_ok=True)
    vrows = []
    for name, (spec, t) in variants(src).items():
        with open(os.path.join(vdir, name + ".json"), "w", encoding="utf-8") as f:
            json.dump(spec, f, ensure_ascii=False, indent=1)
            f.write("\n")
        tok = Tokenizer.from_str(json.dumps(t))
        for i, s in enumerate(strings):
            if i % 2:  # every other string keeps this file small
                continue
            ids = tok.encode(s, add_special_tokens=False).ids
            r = {"v": name, "i": i, "ids": ids}
            d = tok.decode(ids, skip_special_tokens=False)
            if d != s:
                r["dec"] = d
            vrows.append(r)
        print("variant %s" % name)
    write_jsonl(os.path.join(OUT, "variants.golden.jsonl"), vrows)
    # WordLevel.
    wl = wordlevel(strings)
    wdir = os.path.join(OUT, "wordlevel")
    os.makedirs(wdir, exist_ok=True)
    wl.save(os.path.join(wdir, "tokenizer.json"))
    with open(os.path.join(wdir, "tokenizer_config.json"), "w") as f:
        json.dump({"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>",
                   "unk_token": "<unk>"}, f, indent=1)
        f.write("\n")
    rows = []
    for s in strings:
        ids = wl.encode(s, add_special_tokens=False).ids
        rows.append({"ids": ids, "dec": wl.decode(ids, skip_special_tokens=False),
                     "dec_skip": wl.decode(ids, skip_special_tokens=True)})
    write_jsonl(os.path.join(OUT, "wordlevel.golden.jsonl"), rows)
    write_jsonl(os.path.join(OUT, "templates.jsonl"), templates(src))
    print("templates done")


if __name__ == "__main__":
    main()
