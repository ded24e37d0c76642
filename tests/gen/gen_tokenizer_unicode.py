#!/usr/bin/env python3
"""Every code point through HuggingFace tokenizers: tests/fixtures/tokenizer/unicode.jsonl.xz.

The truth for tests/unit/test_tokenizer_unicode.c, which builds the same probe strings
(the constructions below; keep both in step) and checks realign against each line:

  {"pieces": NAME, "runs": [[first, last, [n, ...]], ...]}
        for each of the five real tokenizers and every code point c (surrogates
        aside), the UTF-8 lengths of the pieces of
        pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(piece_probe(c)));
        consecutive code points with the same lengths share a run
  {"regex": PATTERN, "ranges": [[first, last], ...]}
        the code points a Split regex (Oniguruma) matches, from one split of all of
        them with behavior "removed"
  {"norm": FORM, "cp": c, "out": [s or null, ...]}
        FORM (NFC, NFD, NFKC, NFKD) of each norm_probe(c), null where it is the
        probe itself; a code point with no line is unchanged in every probe
  {"norm_in": s, "NFC": s, "NFD": s, "NFKC": s, "NFKD": s}
        the four forms of a canonical decomposition (of every character Python's
        unicodedata decomposes, Hangul syllables aside): do the parts compose?
  {"digits" | "punctuation" | "whitespace_split" | "strip_accents": [[first, last], ...]}
        the code points Digits(individual_digits) and Punctuation isolate between
        'a's, WhitespaceSplit and StripAccents remove
  {"whitespace": [[first, last], ...], "whitespace_space": [[first, last], ...]}
        Whitespace (regex crate): the code points that stay with a following 'a'
        (\\w), and those that vanish (\\s)
  {"lowercase": [[c, s], ...]}  Lowercase, where it changes the character
  {"tok": NAME, "s": [cp, ...], "ids": [...], "dec": [cp, ...]}
        encode(s) and decode(ids) for a sample of code points in three contexts,
        and strings with U+0000 (strings as code point lists: the C test reads
        JSON with cJSON, which stops a string at U+0000)

Run by `make fixtures` (about 15 minutes). Needs tokenizers (PyPI); Llama 3.2 and
Gemma 3 come from shared/tokenizers (gen_tokenizer.py says where it looks).
"""
import json
import lzma
import os
import sys
import unicodedata

import tokenizers
from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from gen_tokenizer import NAMES, OUT, shared_dir  # noqa: E402

CPS = [c for c in range(0x110000) if not 0xD800 <= c < 0xE000]
ALL = "".join(map(chr, CPS))
FORMS = ["NFC", "NFD", "NFKC", "NFKD"]
# Each class the real regexes tell apart shows in one of these: letters glue to
# "a", upper case starts NeMo's words, digits stand alone, White_Space lets "!"
# go, "'" starts a contraction.
PIECE_CONTEXTS = ["%s", "a%sb", "A%sb", "%sAb", "%s!", "1%s2", "'%s", " %s%s"]
# Reordering next to U+0334 (class 1) and after U+0301 (class 230) shows a
# character's combining class; after "a" whether it composes.
NORM_CONTEXTS = ["%s", "a%s\u0334", "\u0301%s", "a%s"]
REGEXES = [r"\p{L}", r"\p{Lu}", r"\p{Ll}", r"\p{Lt}", r"\p{Lm}", r"\p{Lo}", r"\p{M}", r"\p{Mn}",
           r"\p{Mc}", r"\p{Me}", r"\p{N}", r"\p{Nd}", r"\p{Nl}", r"\p{No}", r"\p{P}", r"\p{Pc}",
           r"\p{Pd}", r"\p{Ps}", r"\p{Pe}", r"\p{Pi}", r"\p{Pf}", r"\p{Po}", r"\p{S}", r"\p{Sm}",
           r"\p{Sc}", r"\p{Sk}", r"\p{So}", r"\p{Z}", r"\p{Zs}", r"\p{C}", r"\p{Cc}", r"\p{Cf}",
           r"\p{Co}", r"\p{Cn}", r"\s", r"\S", r"\w", r"\W", r"\d", r"\D", r"\h", r"\H",
           r"[\S]", r"[\W\d]", r"[^\w\s]", r"\P{L}", r"\p{^N}", r"[\P{L}a]", r"\p{Letter}",
           r"\p{Cased_Letter}", r"\p{Combining_Mark}", r"\p{uppercase letter}",
           r"\p{Any}", r"\p{Assigned}", r"[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]"]
ID_CONTEXTS = ["%s", "a%sb", " %s%s"]
NUL_STRINGS = ["\0", "a\0b", "\0\0\0", " \0", "\0 ", "\0\n\0", "<s>\0</s>", "\0<|im_start|>",
               "x\0\u0301", "\0a\u0301", "Hello\0world", "\0" * 17]


def piece_probe(c):
    return "\n".join(f.replace("%s", chr(c)) for f in PIECE_CONTEXTS)


def ranges(cps):
    out = []
    for c in sorted(cps):
        if out and out[-1][1] + 1 == c:
            out[-1][1] = c
        else:
            out.append([c, c])
    return out


def kept(pieces):
    s = set()
    for p, _ in pieces:
        s.update(map(ord, p))
    return s


def line(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def pieces_runs(tok):
    nz, pt = tok.normalizer, tok.pre_tokenizer
    runs = []
    for c in CPS:
        s = piece_probe(c)
        if nz:
            s = nz.normalize_str(s)
        lens = [len(p.encode()) for p, _ in pt.pre_tokenize_str(s)] if pt else [len(s.encode())]
        if runs and runs[-1][2] == lens:  # the run's last is the code point before c
            runs[-1][1] = c
        else:
            runs.append([c, c, lens])
    return runs


def main():
    src = shared_dir()
    rows = []
    print("tokenizers %s" % tokenizers.__version__, flush=True)
    for name in NAMES:
        tok = Tokenizer.from_file(os.path.join(src, name, "tokenizer.json"))
        runs = pieces_runs(tok)
        rows.append(line({"pieces": name, "runs": runs}))
        print("pieces %-13s %d runs" % (name, len(runs)), flush=True)
    for pat in REGEXES:
        split = pre_tokenizers.Split(Regex(pat), behavior="removed")
        rows.append(line({"regex": pat, "ranges": ranges(set(CPS) - kept(split.pre_tokenize_str(ALL)))}))
    print("%d regexes" % len(REGEXES), flush=True)
    nzs = {f: getattr(normalizers, f)() for f in FORMS}
    for c in CPS:
        for f in FORMS:
            outs = []
            for ctx in NORM_CONTEXTS:
                s = ctx.replace("%s", chr(c))
                o = nzs[f].normalize_str(s)
                outs.append(o if o != s else None)
            if any(o is not None for o in outs):
                rows.append(line({"norm": f, "cp": c, "out": outs}))
    extra = sorted({unicodedata.normalize("NFD", chr(c)) for c in CPS if not 0xAC00 <= c <= 0xD7A3}
                   - set(ALL))
    for s in extra:
        rows.append(line(dict({"norm_in": s}, **{f: nzs[f].normalize_str(s) for f in FORMS})))
    print("normalization: %d decompositions" % len(extra), flush=True)
    between_a = "a" + "a".join(map(chr, CPS)) + "a"

    def isolated(pretok):
        return ranges({ord(p) for p, _ in pretok.pre_tokenize_str(between_a) if len(p) == 1 and p != "a"})
    rows.append(line({"digits": isolated(pre_tokenizers.Digits(individual_digits=True))}))
    rows.append(line({"punctuation": isolated(pre_tokenizers.Punctuation(behavior="isolated"))}))
    rows.append(line({"whitespace_split": ranges(set(CPS) - kept(
        pre_tokenizers.WhitespaceSplit().pre_tokenize_str(between_a)))}))
    pieces = pre_tokenizers.Whitespace().pre_tokenize_str("".join(" %sa" % chr(c) for c in CPS))
    word = {ord(p[0]) for p, _ in pieces if len(p) == 2 and p[1] == "a"}
    rows.append(line({"whitespace": ranges(word), "whitespace_space": ranges(set(CPS) - kept(pieces))}))
    stripped = normalizers.StripAccents().normalize_str(ALL)
    rows.append(line({"strip_accents": ranges(set(CPS) - set(map(ord, stripped)))}))
    low = normalizers.Lowercase()
    rows.append(line({"lowercase": [[c, low.normalize_str(chr(c))] for c in CPS
                                    if low.normalize_str(chr(c)) != chr(c)]}))
    sample = [c for c in range(0x80)] + CPS[::4999]
    n_ids = 0
    for name in NAMES:
        tok = Tokenizer.from_file(os.path.join(src, name, "tokenizer.json"))
        strings = [ctx.replace("%s", chr(c)) for c in sample for ctx in ID_CONTEXTS] + NUL_STRINGS
        for s in strings:
            ids = tok.encode(s, add_special_tokens=False).ids
            dec = tok.decode(ids, skip_special_tokens=False)
            rows.append(json.dumps({"tok": name, "s": list(map(ord, s)), "ids": ids,
                                    "dec": list(map(ord, dec))}, separators=(",", ":")))
            n_ids += 1
    print("ids: %d strings" % n_ids, flush=True)
    path = os.path.join(OUT, "unicode.jsonl.xz")
    with open(path, "wb") as f:
        f.write(lzma.compress(("\n".join(rows) + "\n").encode(), preset=9 | lzma.PRESET_EXTREME))
    print("wrote %s: %d lines, %d bytes" % (os.path.relpath(path), len(rows), os.path.getsize(path)))


if __name__ == "__main__":
    main()
