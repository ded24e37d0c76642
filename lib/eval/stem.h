/* stem.h — the Porter stemmer, exactly as NLTK's PorterStemmer() (its default
 * NLTK_EXTENSIONS mode), which Google's rouge_score uses for stemmed ROUGE.
 *
 * That mode is Porter's 1980 algorithm plus the extensions Martin Porter later
 * endorsed and a few of NLTK's own: a dictionary of irregular forms (dying ->
 * die, skies -> sky, news -> news, ...), words of at most two letters left
 * alone, "ies"/"ied" of four letters -> "ie", y -> i only after a consonant
 * that is not the whole stem, "alli" handled recursively, "bli" -> "ble",
 * "fulli" -> "ful", "logi" -> "log", and a two-letter vc stem counting as *o.
 * tests/gen/gen_rouge.py checks every rule against NLTK word for word.
 *
 * Words are lowercase ASCII letters and digits (what the ROUGE tokeniser
 * produces); any other byte counts as a consonant, as it does in NLTK.
 */
#ifndef RL_STEM_H
#define RL_STEM_H

#include <stddef.h>

/* Stems the n bytes at w in place and returns the stem's length. A stem is
 * never longer than its word (every rule that appends letters first removes
 * at least as many), so no extra room is needed. Linear in n. */
size_t rl_porter_stem(char *w, size_t n);

#endif
