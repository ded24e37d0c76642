#!/usr/bin/env python3
"""Fixtures for lib/stem.c and lib/metric.c: NLTK's Porter stems and Google's
rouge_score ROUGE-1/2/L scores, the references realign's ROUGE must equal.

Writes tests/fixtures/rouge/stems.tsv (word TAB stem, one a line) and
tests/fixtures/rouge/cases.jsonl ({"ref","resp","tokens_ref","tokens_resp",
"rouge1":[P,R,F],"rouge2":[...],"rougeL":[...]}). Needs: pip install rouge_score
(which brings nltk). Deterministic (seeded); words come from synthetic
stems + every suffix the stemmer's rules know, and from the licence texts
Debian ships (plain English prose), so no data set is involved.
"""
import glob
import json
import os
import random
import re

from nltk.stem import porter
from rouge_score import rouge_scorer, tokenize

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "rouge")
rng = random.Random(20250406)
stemmer = porter.PorterStemmer()  # rouge_score's DefaultTokenizer uses this

SUFFIXES = """sses ies ss s eed ed ing ied at atted ating bl bled bling iz ized izing y ies ied
ational tional enci anci izer bli abli alli entli eli ousli ization ation ator alism iveness
fulness ousness aliti iviti biliti fulli logi icate ative alize iciti ical ful ness al ance ence
er ic able ible ant ement ment ent sion tion ion ou ism ate iti ous ive ize e ll lle lled
alliance allies ally ly ies ying ye yed yy yying yyed""".split()
IRREGULAR = """sky skies dying lying tying news innings inning outings outing cannings
canning howe proceed exceed succeed proceeding exceeded succeeds""".split()
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def syllable():
    c = rng.choice("bcdfghjklmnprstvwxyzy")
    v = rng.choice("aeiouy")
    return (c if rng.random() < 0.8 else "") + v + (rng.choice("bcdfglmnrstwxyz") if rng.random() < 0.5 else "")


def synthetic_words():
    words = set()
    for _ in range(3000):
        stem = "".join(syllable() for _ in range(rng.randint(0, 3)))
        if rng.random() < 0.1:
            stem = "".join(rng.choice(LETTERS) for _ in range(rng.randint(1, 5)))
        w = stem + rng.choice(SUFFIXES)
        if rng.random() < 0.2:
            w += rng.choice(SUFFIXES)
        words.add(w)
    for s in SUFFIXES:  # each suffix alone and on a one-letter stem
        words.add(s)
        for c in "bcdty":
            words.add(c + s)
    for n in range(1, 9):
        words.add("y" * n)
        words.add("a" + "y" * n)
        words.add("y" * n + "ing")
    words.update(["3pm", "2nd", "1990s", "mp3s", "4ever", "a1b2c3", "ties", "dies", "lies",
                  "agreed", "feed", "bled", "hopping", "falling", "hissing", "fizzed", "failing",
                  "filing", "happy", "enjoy", "spy", "relational", "rational", "radically",
                  "generalization", "controlling", "roll", "probate", "rate", "cease"])
    return words


def prose_words():
    words = set()
    for path in sorted(glob.glob("/usr/share/common-licenses/*")):
        if os.path.isfile(path):
            with open(path, encoding="utf-8", errors="replace") as f:
                words.update(re.findall(r"[a-z0-9]+", f.read().lower()))
    return words


def write_stems():
    words = sorted(synthetic_words() | set(sorted(prose_words())[:: 2]) | set(IRREGULAR))
    with open(os.path.join(OUT, "stems.tsv"), "w") as f:
        for w in words:
            f.write("%s\t%s\n" % (w, stemmer.stem(w)))
    return words


def sentence(vocab):
    parts = []
    for _ in range(rng.randint(0, 25)):
        w = rng.choice(vocab)
        r = rng.random()
        if r < 0.15:
            w = w.capitalize()
        elif r < 0.2:
            w = w.upper()
        parts.append(w)
        r = rng.random()
        if r < 0.1:
            parts.append(rng.choice([",", ".", "!", "?", ";", " -", "'s", "n't", "...", ":"]))
    sep = rng.choice([" ", " ", " ", "  ", "\n", "\t"])
    return sep.join(parts)


def main():
    os.makedirs(OUT, exist_ok=True)
    words = write_stems()
    vocab = [w for w in words if len(w) < 14][:: 7][:400] + ["the", "a", "of", "and", "to"] * 10
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    cases = [
        ("", ""), ("", "hello"), ("hello", ""), ("!!! ...", "?"),
        ("The cat sat on the mat.", "The cat sat on the mat."),
        ("The cat sat on the mat.", "the mat sat on the cat"),
        ("The quick brown fox jumps over the lazy dog",
         "The quick brown dog jumps on the log."),
        ("Running runners ran; the runner runs.", "run RUN Runs running!"),
        ("\u0130stanbul is big", "istanbul is big"),  # U+0130 lowers to i + U+0307
        ("\u212aelvin scale", "kelvin SCALE"),        # KELVIN SIGN lowers to k
        ("caf\u00e9 na\u00efve r\u00e9sum\u00e9", "cafe naive resume"),
        ("\u4e2d\u6587 text 123", "text 123 \u4e2d\u6587"),
        ("a a a a b", "a b b b"), ("x y z", "z y x"),
        ("It's 3pm, isn't it?", "its 3 pm isnt it"),
        ("generalizations of relational hopefulness", "generalize relate hopeful"),
    ]
    for _ in range(300):
        ref = sentence(vocab)
        resp = sentence(vocab) if rng.random() < 0.5 else (
            ref if rng.random() < 0.2 else ref + " " + sentence(vocab))
        cases.append((ref, resp))
    with open(os.path.join(OUT, "cases.jsonl"), "w") as f:
        for ref, resp in cases:
            s = scorer.score(ref, resp)  # score(target, prediction)
            rec = {
                "ref": ref, "resp": resp,
                "tokens_ref": tokenize.tokenize(ref, stemmer),
                "tokens_resp": tokenize.tokenize(resp, stemmer),
            }
            for k in ("rouge1", "rouge2", "rougeL"):
                rec[k] = [s[k].precision, s[k].recall, s[k].fmeasure]
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    print("wrote %d stems, %d ROUGE cases under %s" % (len(words), len(cases), OUT))


if __name__ == "__main__":
    main()
