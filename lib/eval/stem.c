/* stem.c — Porter stemmer, NLTK_EXTENSIONS mode (see stem.h).
 *
 * The code follows nltk/stem/porter.py function by function so the two can be
 * read side by side: _apply_rule_list's rule "the first rule whose suffix
 * matches decides, even when its condition fails" is rule_list() here, and
 * every condition is evaluated on the same substring NLTK evaluates it on.
 * The word lives in one buffer; k is its current length.
 */
#include <string.h>

#include "eval/stem.h"

static int is_vowel(char c)
{
	return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u';
}

/* _is_consonant(word, i): a letter other than a vowel, and y only when the
 * letter before it is not a consonant (the walk back over a run of y's). */
static int cons(const char *w, size_t i)
{
	if (is_vowel(w[i]))
		return 0;
	if (w[i] != 'y')
		return 1;
	int negate = 0;
	while (i > 0 && w[i] == 'y') {
		negate = !negate;
		i--;
	}
	return (!is_vowel(w[i])) != negate;
}

/* _measure(stem): m in [C](VC){m}[V] for the first k letters, in one pass
 * (a 'y' is a consonant iff the previous letter is a vowel or it starts). */
static int measure(const char *w, size_t k)
{
	int m = 0, prev = -1; /* prev: consonant flag of the previous letter */
	for (size_t i = 0; i < k; i++) {
		int c = is_vowel(w[i]) ? 0 : w[i] == 'y' ? (i == 0 ? 1 : !prev) : 1;
		if (c && prev == 0)
			m++;
		prev = c;
	}
	return m;
}

static int contains_vowel(const char *w, size_t k)
{
	int prev = -1;
	for (size_t i = 0; i < k; i++) {
		int c = is_vowel(w[i]) ? 0 : w[i] == 'y' ? (i == 0 ? 1 : !prev) : 1;
		if (!c)
			return 1;
		prev = c;
	}
	return 0;
}

/* *d: ends with a double consonant. */
static int ends_double(const char *w, size_t k)
{
	return k >= 2 && w[k - 1] == w[k - 2] && cons(w, k - 1);
}

/* *o: ends consonant-vowel-consonant, the last not w, x or y; NLTK adds a
 * two-letter vowel-consonant word (without the w/x/y exception). */
static int ends_cvc(const char *w, size_t k)
{
	if (k >= 3 && cons(w, k - 3) && !cons(w, k - 2) && cons(w, k - 1) && w[k - 1] != 'w' &&
	    w[k - 1] != 'x' && w[k - 1] != 'y')
		return 1;
	return k == 2 && !cons(w, 0) && cons(w, 1);
}

static int ends(const char *w, size_t k, const char *s, size_t *sl)
{
	size_t n = strlen(s);
	*sl = n;
	return k >= n && memcmp(w + k - n, s, n) == 0;
}

enum cond {
	C_NONE,
	C_M0,	/* measure(stem) > 0 */
	C_M1,	/* measure(stem) > 1 */
	C_ION,	/* measure(stem) > 1 and stem ends in s or t */
	C_LOGI, /* measure(word minus its last 3 letters) > 0 */
};

struct rule {
	const char *suffix, *repl;
	enum cond cond;
};

static int cond_ok(const char *w, size_t k, size_t stem_len, enum cond c)
{
	switch (c) {
	case C_NONE:
		return 1;
	case C_M0:
		return measure(w, stem_len) > 0;
	case C_M1:
		return measure(w, stem_len) > 1;
	case C_ION:
		return measure(w, stem_len) > 1 &&
		       (w[stem_len - 1] == 's' || w[stem_len - 1] == 't');
	case C_LOGI:
		return measure(w, k - 3) > 0;
	}
	return 0;
}

/* _apply_rule_list without the "*d" and "" rules (step 1b handles those). */
static size_t rule_list(char *w, size_t k, const struct rule *r, size_t nr)
{
	for (size_t i = 0; i < nr; i++) {
		size_t sl;
		if (!ends(w, k, r[i].suffix, &sl))
			continue;
		size_t stem = k - sl;
		if (!cond_ok(w, k, stem, r[i].cond))
			return k;
		size_t rl = strlen(r[i].repl);
		memcpy(w + stem, r[i].repl, rl); /* rl <= sl for every rule */
		return stem + rl;
	}
	return k;
}

#define NRULES(a) (sizeof(a) / sizeof((a)[0]))

static size_t step1a(char *w, size_t k)
{
	static const struct rule r[] = {{"sses", "ss", C_NONE},
					{"ies", "i", C_NONE},
					{"ss", "ss", C_NONE},
					{"s", "", C_NONE}};
	size_t sl;
	if (k == 4 && ends(w, k, "ies", &sl))
		return k - 1; /* "ties" -> "tie" */
	return rule_list(w, k, r, NRULES(r));
}

static size_t step1b(char *w, size_t k)
{
	size_t sl;
	if (ends(w, k, "ied", &sl))
		return k == 4 ? k - 1 : k - 2; /* -> "ie" / "i" */
	if (ends(w, k, "eed", &sl))
		return measure(w, k - 3) > 0 ? k - 1 : k;
	size_t s = 0;
	if (ends(w, k, "ed", &sl) && contains_vowel(w, k - 2))
		s = k - 2;
	else if (ends(w, k, "ing", &sl) && contains_vowel(w, k - 3))
		s = k - 3;
	else
		return k;
	/* On the intermediate stem w[0..s): at -> ate, bl -> ble, iz -> ize, a
	 * double consonant other than l, s, z loses a letter, and m = 1 with *o
	 * gains an e. The first rule whose pattern matches decides. */
	if (ends(w, s, "at", &sl) || ends(w, s, "bl", &sl) || ends(w, s, "iz", &sl)) {
		w[s] = 'e';
		return s + 1;
	}
	if (ends_double(w, s)) {
		char last = w[s - 1];
		return (last != 'l' && last != 's' && last != 'z') ? s - 1 : s;
	}
	if (measure(w, s) == 1 && ends_cvc(w, s)) {
		w[s] = 'e';
		return s + 1;
	}
	return s;
}

static size_t step1c(char *w, size_t k)
{
	/* y -> i when preceded by a consonant that is not the whole stem. */
	if (k >= 1 && w[k - 1] == 'y') {
		size_t stem = k - 1;
		if (stem > 1 && cons(w, stem - 1))
			w[k - 1] = 'i';
	}
	return k;
}

static size_t step2(char *w, size_t k)
{
	static const struct rule r[] = {
		{"ational", "ate", C_M0}, {"tional", "tion", C_M0}, {"enci", "ence", C_M0},
		{"anci", "ance", C_M0},	  {"izer", "ize", C_M0},    {"bli", "ble", C_M0},
		{"alli", "al", C_M0},	  {"entli", "ent", C_M0},   {"eli", "e", C_M0},
		{"ousli", "ous", C_M0},	  {"ization", "ize", C_M0}, {"ation", "ate", C_M0},
		{"ator", "ate", C_M0},	  {"alism", "al", C_M0},    {"iveness", "ive", C_M0},
		{"fulness", "ful", C_M0}, {"ousness", "ous", C_M0}, {"aliti", "al", C_M0},
		{"iviti", "ive", C_M0},	  {"biliti", "ble", C_M0},  {"fulli", "ful", C_M0},
		{"logi", "log", C_LOGI},
	};
	size_t sl;
	if (ends(w, k, "alli", &sl) && measure(w, k - 4) > 0)
		return step2(w, k - 2); /* "alli" -> "al", then step 2 again */
	return rule_list(w, k, r, NRULES(r));
}

static size_t step3(char *w, size_t k)
{
	static const struct rule r[] = {
		{"icate", "ic", C_M0}, {"ative", "", C_M0},  {"alize", "al", C_M0},
		{"iciti", "ic", C_M0}, {"ical", "ic", C_M0}, {"ful", "", C_M0},
		{"ness", "", C_M0},
	};
	return rule_list(w, k, r, NRULES(r));
}

static size_t step4(char *w, size_t k)
{
	static const struct rule r[] = {
		{"al", "", C_M1},    {"ance", "", C_M1}, {"ence", "", C_M1}, {"er", "", C_M1},
		{"ic", "", C_M1},    {"able", "", C_M1}, {"ible", "", C_M1}, {"ant", "", C_M1},
		{"ement", "", C_M1}, {"ment", "", C_M1}, {"ent", "", C_M1},  {"ion", "", C_ION},
		{"ou", "", C_M1},    {"ism", "", C_M1},	 {"ate", "", C_M1},  {"iti", "", C_M1},
		{"ous", "", C_M1},   {"ive", "", C_M1},	 {"ize", "", C_M1},
	};
	return rule_list(w, k, r, NRULES(r));
}

static size_t step5a(char *w, size_t k)
{
	if (k >= 1 && w[k - 1] == 'e') {
		int m = measure(w, k - 1);
		if (m > 1 || (m == 1 && !ends_cvc(w, k - 1)))
			return k - 1;
	}
	return k;
}

static size_t step5b(char *w, size_t k)
{
	/* "ll" -> "l" when measure(word minus its last letter) > 1. */
	if (k >= 2 && w[k - 1] == 'l' && w[k - 2] == 'l' && measure(w, k - 1) > 1)
		return k - 1;
	return k;
}

/* NLTK's irregular forms, looked up before any rule. */
static const char *const irregular[][2] = {
	{"sky", "sky"},		{"skies", "sky"},	 {"dying", "die"},
	{"lying", "lie"},	{"tying", "tie"},	 {"news", "news"},
	{"innings", "inning"},	{"inning", "inning"},	 {"outings", "outing"},
	{"outing", "outing"},	{"cannings", "canning"}, {"canning", "canning"},
	{"howe", "howe"},	{"proceed", "proceed"},	 {"exceed", "exceed"},
	{"succeed", "succeed"},
};

size_t rl_porter_stem(char *w, size_t n)
{
	for (size_t i = 0; i < NRULES(irregular); i++) {
		size_t l = strlen(irregular[i][0]);
		if (l == n && memcmp(w, irregular[i][0], n) == 0) {
			size_t r = strlen(irregular[i][1]);
			memcpy(w, irregular[i][1], r);
			return r;
		}
	}
	if (n <= 2)
		return n;
	size_t k = n;
	k = step1a(w, k);
	k = step1b(w, k);
	k = step1c(w, k);
	k = step2(w, k);
	k = step3(w, k);
	k = step4(w, k);
	k = step5a(w, k);
	k = step5b(w, k);
	return k;
}
