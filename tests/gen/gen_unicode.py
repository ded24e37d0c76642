#!/usr/bin/env python3
"""The Unicode data HuggingFace tokenizers classes characters by, as a C table.

tokenizers does not take its character classes from one Unicode version: Split and
Replace regexes (and the ByteLevel regex) run on Oniguruma (the onig crate; 6.9.10,
Unicode 16.0 in tokenizers 0.23.3), NFC/NFD/NFKC/NFKD and StripAccents on
unicode-normalization-alignments (Unicode 9.0), Digits on Rust's char::is_numeric,
Punctuation on the unicode_categories crate, the Whitespace pre-tokenizer on the
regex crate. realign's own libraries have others (PCRE2 10.42: Unicode 14;
utf8proc 2.8: Unicode 15). So this script asks tokenizers itself, code point by
code point, through the components that use each table, and writes what it
answers as runs (first code point, properties) to lib/text/tokenizer_unicode.c:

  general category     \\p{Lu} ... \\p{Co} through a Split regex (Oniguruma);
                       unassigned (Cn) is what none of them matches
  TK_U_WORD            Oniguruma's \\w (Alphabetic, M, Nd, Pc, Join_Control, and
                       U+00B2 U+00B3 U+00B9 U+00BC-U+00BE)
  TK_U_CWORD           Oniguruma's \\w inside brackets, [\\w]: without those six
  TK_U_SPACE           White_Space: Oniguruma's \\s, which the script checks to be
                       Rust's char::is_whitespace (WhitespaceSplit) and the regex
                       crate's \\s (Whitespace) as well
  TK_U_NORM            the normalizer has data for it: a decomposition, a nonzero
                       combining class, or a part in a composition (NFD, NFKD and
                       reordering probes)
  TK_U_NUMERIC         Digits' char::is_numeric
  TK_U_PUNCT           Punctuation's is_punc
  TK_U_MARK            StripAccents' is_combining_mark
  TK_U_RWORD           the Whitespace pre-tokenizer's \\w (regex crate)

and the Lowercase normalizer's mapping (Rust's char::to_lowercase) where it is
not the identity. The table is the reference's data, not a Unicode release's:
regenerate it with the tokenizers version the goldens come from. Run by
`make fixtures` (about 5 minutes); needs tokenizers (PyPI) and clang-format.
"""
import os
import subprocess
import sys

import tokenizers
from tokenizers import Regex, normalizers, pre_tokenizers

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "lib", "text", "tokenizer_unicode.c")

# enum tk_gc in lib/text/tokenizer_int.h, in this order (Cn first: unassigned).
GCS = ("Cn Lu Ll Lt Lm Lo Mn Mc Me Nd Nl No Pc Pd Ps Pe Pi Pf Po Sm Sc Sk So Zs Zl Zp Cc "
       "Cf Cs Co").split()
FLAGS = ["WORD", "SPACE", "NORM", "NUMERIC", "PUNCT", "MARK", "RWORD", "CWORD"]  # bits 5, 6, ...
CPS = [c for c in range(0x110000) if not 0xD800 <= c < 0xE000]  # what a Rust str holds
ALL = "".join(map(chr, CPS))


def kept_chars(pieces):
    s = set()
    for piece, _ in pieces:
        s.update(map(ord, piece))
    return s


def regex_members(pattern):
    """Code points a Split regex matches (Oniguruma, as tokenizers compiles it)."""
    split = pre_tokenizers.Split(Regex(pattern), behavior="removed")
    return set(CPS) - kept_chars(split.pre_tokenize_str(ALL))


def isolated_members(pretok):
    """Code points a pre-tokenizer that isolates its matches puts alone, each probed
    between two 'a's (which no such pre-tokenizer matches)."""
    pieces = pretok.pre_tokenize_str("a" + "a".join(map(chr, CPS)) + "a")
    return {ord(p) for p, _ in pieces if len(p) == 1 and p != "a"}


def normalizer_known():
    nfd, nfkd, nfc = normalizers.NFD(), normalizers.NFKD(), normalizers.NFC()
    known = set()
    for c in CPS:
        ch = chr(c)
        d = nfd.normalize_str(ch)
        if d != ch or nfkd.normalize_str(ch) != ch:
            known.add(c)
            if nfc.normalize_str(ch) == ch:  # a primary composite: its parts compose
                known.update(map(ord, d))
        # a nonzero combining class shows as reordering next to U+0334 (class 1)
        # or after U+0301 (class 230)
        if nfd.normalize_str(ch + "\u0334") != d + "\u0334" or \
                nfd.normalize_str("\u0301" + ch) != "\u0301" + d:
            known.add(c)
    return known


def whitespace_split_members():
    return set(CPS) - kept_chars(pre_tokenizers.WhitespaceSplit().pre_tokenize_str(
        "a" + "a".join(map(chr, CPS)) + "a"))


def regex_crate_classes():
    """The Whitespace pre-tokenizer (\\w+|[^\\w\\s]+, regex crate): each code point
    followed by 'a', space-separated. A \\w char stays with its 'a'; a \\s char
    vanishes; any other char is a piece of its own."""
    pieces = pre_tokenizers.Whitespace().pre_tokenize_str("".join(" %sa" % chr(c) for c in CPS))
    word, seen = set(), set()
    for p, _ in pieces:
        if len(p) == 2 and p[1] == "a":
            word.add(ord(p[0]))
        seen.update(map(ord, p))
    return word, set(CPS) - seen


def lowercase_map():
    low = normalizers.Lowercase()
    out = {}
    for c in CPS:
        lc = low.normalize_str(chr(c))
        if lc != chr(c):
            out[c] = lc
    return out


def main():
    print("tokenizers %s: probing every code point" % tokenizers.__version__, flush=True)
    gc = {}
    for k, g in enumerate(GCS):
        if g in ("Cn", "Cs"):
            continue
        for c in regex_members(r"\p{%s}" % g):
            assert c not in gc, "U+%04X is in \\p{%s} and \\p{%s}" % (c, GCS[gc[c]], g)
            gc[c] = k
    print("general categories: %d assigned" % len(gc), flush=True)
    space = regex_members(r"\s")
    rword, rspace = regex_crate_classes()
    assert space == whitespace_split_members() == rspace, "White_Space differs between engines"
    flags = {
        "WORD": regex_members(r"\w"),
        "SPACE": space,
        "NORM": normalizer_known(),
        "NUMERIC": isolated_members(pre_tokenizers.Digits(individual_digits=True)),
        "PUNCT": isolated_members(pre_tokenizers.Punctuation(behavior="isolated")),
        "MARK": set(CPS) - kept_chars([(normalizers.StripAccents().normalize_str(ALL), None)]),
        "RWORD": rword,
        "CWORD": regex_members(r"[\w]"),
    }
    for f in FLAGS:
        print("%-8s %7d code points" % (f, len(flags[f])), flush=True)
    lower = lowercase_map()
    multi = {c: s for c, s in lower.items() if len(s) != 1}
    # tokenizer_text.c writes the one multi-char lowercase (U+0130) itself
    assert multi == {0x130: "i\u0307"}, multi
    print("lowercase: %d code points change" % len(lower), flush=True)

    def props(c):
        p = gc.get(c, GCS.index("Cs") if 0xD800 <= c < 0xE000 else 0)
        for b, f in enumerate(FLAGS):
            if c in flags[f]:
                p |= 1 << (5 + b)
        return p

    starts, values, prev = [], [], None
    for c in range(0x110000):
        p = props(c)
        if p != prev:
            starts.append(c)
            values.append(p)
            prev = p
    # lowercase as runs of code points with the same offset, every code point or
    # every other (Latin Extended's upper/lower pairs alternate)
    low = sorted((c, ord(s) - c) for c, s in lower.items() if c != 0x130)
    lruns = []
    for c, d in low:
        if lruns:
            first, last, step, delta = lruns[-1]
            if delta == d and (c - last == step or (step == 0 and c - last in (1, 2))):
                lruns[-1] = (first, c, c - first if step == 0 else step, delta)
                continue
        lruns.append((c, c, 0, d))
    print("%d runs of properties, %d runs of lowercase mappings" % (len(starts), len(lruns)))

    def rows(items, per):
        return "\n".join("\t" + " ".join(items[i:i + per]) for i in range(0, len(items), per))

    with open(OUT, "w", encoding="utf-8") as f:
        f.write("/* tokenizer_unicode.c — the Unicode data of HuggingFace tokenizers %s.\n"
                " *\n"
                " * Generated by tests/gen/gen_unicode.py, which asks tokenizers about every\n"
                " * code point through the component that uses each property (its docstring\n"
                " * says which); do not edit. tokenizer_int.h describes the encoding.\n"
                " */\n" % tokenizers.__version__)
        f.write('#include "text/tokenizer_int.h"\n\n')
        for k, g in enumerate(GCS):
            f.write('_Static_assert(TK_GC_%s == %d, "enum tk_gc is the generator\'s order");\n'
                    % (g.upper(), k))
        for b, fl in enumerate(FLAGS):
            f.write('_Static_assert(TK_U_%s == 1 << %d, "flag bits are the generator\'s");\n'
                    % (fl, 5 + b))
        f.write("\nconst size_t tk_uni_n = %d;\n\n" % len(starts))
        f.write("const uint32_t tk_uni_start[] = {\n%s\n};\n\n"
                % rows(["0x%X," % s for s in starts], 10))
        f.write("const uint16_t tk_uni_props[] = {\n%s\n};\n\n"
                % rows(["0x%X," % v for v in values], 12))
        f.write("const size_t tk_lower_n = %d;\n\n" % len(lruns))
        f.write("const tk_lower_run tk_lower[] = {\n%s\n};\n"
                % rows(["{0x%X, 0x%X, %d, %d}," % r for r in lruns], 4))
    subprocess.run(["clang-format", "-i", OUT], check=True)
    print("wrote %s" % os.path.relpath(OUT, ROOT))


if __name__ == "__main__":
    sys.exit(main())
