/* tokenizer_text.c — regexes, normalizers and pre-tokenizers.
 *
 * Pre-tokenizers run depth first: each stage splits the string it is given and
 * hands every piece to the next stage, the last stage to the model. tokenizers
 * runs them breadth first (every split through stage 1, then stage 2...), which
 * gives the same pieces because every pre-tokenizer treats its splits one by one.
 * Each stage owns its buffers in tk_state, so nothing is allocated per piece.
 *
 * Regexes: tokenizers compiles its patterns with Oniguruma (Ruby syntax). PCRE2
 * with UTF+UCP agrees on the constructs these files use once Oniguruma's classes
 * are spelled out: \s \w \d and the general categories (\p{L}...) become ranges
 * of code points from the reference's tables (tokenizer_unicode.c: Oniguruma's
 * Unicode 16, where PCRE2 10.42 has 14), \h is a hex digit, and ^ $ match at line
 * boundaries. The translation is in onig_to_pcre2(). Spelling the classes out
 * rather than keeping PCRE2's \p{..} and patching the difference keeps the
 * result independent of the PCRE2 build: the pattern alone says what matches.
 *
 * Other Unicode data are the reference's too: Digits, Punctuation, StripAccents,
 * Lowercase, WhitespaceSplit and Whitespace class by tokenizer_unicode.c, and
 * normalization uses utf8proc only where tokenizers' older tables agree with it
 * (nz_utf8proc).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/error.h"
#include "text/tokenizer_int.h"

/* ---- regexes ------------------------------------------------------------------------ */
/* A set of code points by the reference's properties: the union of its terms, each
 * the general categories in gc (bit k: enum tk_gc k) or any of flags, or the
 * complement of that. Surrogates are in no set (UTF-8 cannot hold them). */
typedef struct uset {
	struct {
		uint32_t gc;
		unsigned flags;
		int negate;
	} term[8];
	int n;
} uset;

#define GC(x) (1u << TK_GC_##x)
#define GC_L (GC(LU) | GC(LL) | GC(LT) | GC(LM) | GC(LO))
#define GC_M (GC(MN) | GC(MC) | GC(ME))
#define GC_N (GC(ND) | GC(NL) | GC(NO))
#define GC_P (GC(PC) | GC(PD) | GC(PS) | GC(PE) | GC(PI) | GC(PF) | GC(PO))
#define GC_S (GC(SM) | GC(SC) | GC(SK) | GC(SO))
#define GC_Z (GC(ZS) | GC(ZL) | GC(ZP))
#define GC_C (GC(CC) | GC(CF) | GC(CS) | GC(CO) | GC(CN))

/* Oniguruma's general-category property names, matched as it matches them:
 * case, spaces, '-' and '_' ignored. */
static const struct {
	const char *name;
	uint32_t gc;
} gc_names[] = {
	{"l", GC_L},
	{"letter", GC_L},
	{"lu", GC(LU)},
	{"uppercaseletter", GC(LU)},
	{"ll", GC(LL)},
	{"lowercaseletter", GC(LL)},
	{"lt", GC(LT)},
	{"titlecaseletter", GC(LT)},
	{"lc", GC(LU) | GC(LL) | GC(LT)},
	{"casedletter", GC(LU) | GC(LL) | GC(LT)},
	{"lm", GC(LM)},
	{"modifierletter", GC(LM)},
	{"lo", GC(LO)},
	{"otherletter", GC(LO)},
	{"m", GC_M},
	{"mark", GC_M},
	{"combiningmark", GC_M},
	{"mn", GC(MN)},
	{"nonspacingmark", GC(MN)},
	{"mc", GC(MC)},
	{"spacingmark", GC(MC)},
	{"me", GC(ME)},
	{"enclosingmark", GC(ME)},
	{"n", GC_N},
	{"number", GC_N},
	{"nd", GC(ND)},
	{"decimalnumber", GC(ND)},
	{"nl", GC(NL)},
	{"letternumber", GC(NL)},
	{"no", GC(NO)},
	{"othernumber", GC(NO)},
	{"p", GC_P},
	{"punctuation", GC_P},
	{"pc", GC(PC)},
	{"connectorpunctuation", GC(PC)},
	{"pd", GC(PD)},
	{"dashpunctuation", GC(PD)},
	{"ps", GC(PS)},
	{"openpunctuation", GC(PS)},
	{"pe", GC(PE)},
	{"closepunctuation", GC(PE)},
	{"pi", GC(PI)},
	{"initialpunctuation", GC(PI)},
	{"pf", GC(PF)},
	{"finalpunctuation", GC(PF)},
	{"po", GC(PO)},
	{"otherpunctuation", GC(PO)},
	{"s", GC_S},
	{"symbol", GC_S},
	{"sm", GC(SM)},
	{"mathsymbol", GC(SM)},
	{"sc", GC(SC)},
	{"currencysymbol", GC(SC)},
	{"sk", GC(SK)},
	{"modifiersymbol", GC(SK)},
	{"so", GC(SO)},
	{"othersymbol", GC(SO)},
	{"z", GC_Z},
	{"separator", GC_Z},
	{"zs", GC(ZS)},
	{"spaceseparator", GC(ZS)},
	{"zl", GC(ZL)},
	{"lineseparator", GC(ZL)},
	{"zp", GC(ZP)},
	{"paragraphseparator", GC(ZP)},
	{"c", GC_C},
	{"other", GC_C},
	{"cc", GC(CC)},
	{"control", GC(CC)},
	{"cf", GC(CF)},
	{"format", GC(CF)},
	{"cs", GC(CS)},
	{"surrogate", GC(CS)},
	{"co", GC(CO)},
	{"privateuse", GC(CO)},
	{"cn", GC(CN)},
	{"unassigned", GC(CN)},
	{"any", ~0u},
	{"assigned", ~0u & ~GC(CN)},
};

/* The categories of a \p{...} name, or 0 for a property that is not one. */
static uint32_t gc_by_name(const char *p, size_t n)
{
	char key[32];
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (c == ' ' || c == '_' || c == '-')
			continue;
		if (k + 1 == sizeof key)
			return 0;
		key[k++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	key[k] = 0;
	for (size_t i = 0; i < sizeof gc_names / sizeof gc_names[0]; i++)
		if (strcmp(key, gc_names[i].name) == 0)
			return gc_names[i].gc;
	return 0;
}

static int uset_add(uset *u, uint32_t gc, unsigned flags, int negate)
{
	if (u->n == (int)(sizeof u->term / sizeof u->term[0]))
		return 0;
	u->term[u->n].gc = gc;
	u->term[u->n].flags = flags;
	u->term[u->n].negate = negate;
	u->n++;
	return 1;
}

static int uset_has(const uset *u, unsigned props)
{
	unsigned g = props & TK_U_GC;
	if (g == TK_GC_CS)
		return 0;
	for (int k = 0; k < u->n; k++) {
		int in = ((u->term[k].gc >> g) & 1) || (props & u->term[k].flags);
		if (in != u->term[k].negate)
			return 1;
	}
	return 0;
}

static int regex_compile_raw(tk_regex *r, const char *pat, size_t len, const char *what);

typedef struct urange {
	uint32_t lo, hi;
} urange;

static int by_size(const void *a, const void *b)
{
	const urange *x = a, *y = b;
	uint32_t nx = x->hi - x->lo, ny = y->hi - y->lo;
	if (nx != ny)
		return nx > ny ? -1 : 1;
	return x->lo < y->lo ? -1 : 1;
}

#define N_CP 0x110000

/* A growing list of code point ranges. */
typedef struct uranges {
	urange *r;
	size_t n, cap;
} uranges;

/* Adds [lo, hi] to o, merged with the last range when they touch. */
static int uranges_add(uranges *o, uint32_t lo, uint32_t hi)
{
	if (o->n && o->r[o->n - 1].hi + 1 == lo) {
		o->r[o->n - 1].hi = hi;
		return RL_OK;
	}
	if (o->n == o->cap) {
		size_t cap = o->cap ? 2 * o->cap : 64;
		urange *m = rl_realloc_array(o->r, cap, sizeof *m);
		if (!m)
			return RL_ESYS;
		o->r = m;
		o->cap = cap;
	}
	o->r[o->n++] = (urange){lo, hi};
	return RL_OK;
}

/* Appends the ranges as class items (\x{A}-\x{B}...), the largest first:
 * PCRE2 10.42's JIT tries a class's ranges one after the other, and the large
 * ones (CJK, Hangul) hold most text. Frees them. */
static int uranges_items(uranges *rs, tk_buf *o)
{
	if (rs->n)
		qsort(rs->r, rs->n, sizeof *rs->r, by_size);
	int rc = RL_OK;
	for (size_t i = 0; i < rs->n && !rc; i++) {
		char item[40];
		const urange *r = &rs->r[i];
		int k = r->lo == r->hi ? snprintf(item, sizeof item, "\\x{%X}", (unsigned)r->lo)
				       : snprintf(item, sizeof item, "\\x{%X}-\\x{%X}",
						  (unsigned)r->lo, (unsigned)r->hi);
		rc = tk_buf_add(o, item, (size_t)k);
	}
	free(rs->r);
	*rs = (uranges){0};
	return rc;
}

/* Appends the code points set in map (one byte each) as class items; sets *n to
 * how many ranges. */
static int map_items(const uint8_t *map, tk_buf *o, size_t *n)
{
	uranges rs = {0};
	int rc = RL_OK;
	for (uint32_t c = 0; c < N_CP && !rc; c++)
		if (map[c])
			rc = uranges_add(&rs, c, c);
	*n = rs.n;
	if (rc) {
		free(rs.r);
		return rc;
	}
	return uranges_items(&rs, o);
}

/* The code points of u, less those whose category is in skip, as ranges: built
 * from the property runs, not code point by code point (a tokenizer's
 * pre-tokenizer has a dozen classes; loading it stays fast). */
static int uset_ranges(const uset *u, uint32_t skip, uranges *o)
{
	for (size_t i = 0; i < tk_uni_n; i++)
		if (uset_has(u, tk_uni_props[i]) && !((skip >> (tk_uni_props[i] & TK_U_GC)) & 1)) {
			uint32_t hi = i + 1 < tk_uni_n ? tk_uni_start[i + 1] : N_CP;
			if (uranges_add(o, tk_uni_start[i], hi - 1))
				return RL_ESYS;
		}
	return RL_OK;
}

/* PCRE2's own spelling of the categories in mask ("\p{L}\p{Nd}"). */
static int native_items(uint32_t mask, tk_buf *o)
{
	static const struct {
		const char *name;
		uint32_t gc;
	} groups[] = {{"L", GC_L}, {"M", GC_M}, {"N", GC_N}, {"P", GC_P},
		      {"S", GC_S}, {"Z", GC_Z}, {"C", GC_C}};
	static const char *const names[TK_GC_COUNT] = {
		"Cn", "Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd",
		"Nl", "No", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm",
		"Sc", "Sk", "So", "Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co"};
	char item[16];
	for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++)
		if ((mask & groups[g].gc) == groups[g].gc) {
			if (tk_buf_add(
				    o, item,
				    (size_t)snprintf(item, sizeof item, "\\p{%s}", groups[g].name)))
				return RL_ESYS;
			mask &= ~groups[g].gc;
		}
	for (int k = 0; k < TK_GC_COUNT; k++)
		if (mask >> k & 1) {
			if (tk_buf_add(o, item,
				       (size_t)snprintf(item, sizeof item, "\\p{%s}", names[k])))
				return RL_ESYS;
		}
	return RL_OK;
}

/* Sets map[c] for every code point PCRE2's class [items] matches, by matching it
 * against all of them. */
static int pcre2_map(const char *items, size_t n, uint8_t *map)
{
	tk_buf pat = {0}, all = {0};
	tk_regex r = {0};
	int rc = RL_OK;
	if (tk_buf_add(&pat, "[", 1) || tk_buf_add(&pat, items, n) || tk_buf_add(&pat, "]+", 2) ||
	    tk_buf_reserve(&all, 4 * N_CP))
		rc = RL_ESYS;
	for (uint32_t c = 0; !rc && c < N_CP; c++)
		if (c < 0xD800 || c > 0xDFFF)
			all.n += (size_t)tk_utf8_put(all.p + all.n, c);
	pcre2_match_data *md = rc ? NULL : pcre2_match_data_create(1, NULL);
	if (!rc && !md)
		rc = rl_error(RL_ESYS, "out of memory");
	if (!rc)
		rc = regex_compile_raw(&r, pat.p, pat.n, "character class");
	for (size_t at = 0; !rc && at < all.n;) {
		int m = pcre2_match(r.code, (PCRE2_SPTR)all.p, all.n, at, PCRE2_NO_UTF_CHECK, md,
				    NULL);
		if (m == PCRE2_ERROR_NOMATCH)
			break;
		if (m < 0) {
			rc = rl_error(RL_ESYS, "character class probe failed (%d)", m);
			break;
		}
		PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
		for (size_t i = ov[0]; i < ov[1];) {
			uint32_t c;
			i += (size_t)tk_utf8_next(all.p + i, ov[1] - i, &c);
			map[c] = 1;
		}
		at = ov[1];
	}
	if (md)
		pcre2_match_data_free(md);
	tk_regex_free(&r);
	tk_buf_free(&pat);
	tk_buf_free(&all);
	return rc;
}

/* What PCRE2 needs added to its own class to be the reference's, per class:
 * measured once per process (it depends on the PCRE2 build only). */
typedef struct native_fix {
	uint32_t mask;
	int usable;  /* PCRE2 has no code point the reference leaves out */
	char *extra; /* the reference's code points PCRE2 lacks, as items */
	struct native_fix *next;
} native_fix;

static native_fix *native_fixes;
static pthread_mutex_t native_lock = PTHREAD_MUTEX_INITIALIZER;

static int native_fix_get(uint32_t mask, const native_fix **out)
{
	pthread_mutex_lock(&native_lock);
	native_fix *f = native_fixes;
	while (f && f->mask != mask)
		f = f->next;
	int rc = RL_OK;
	if (!f) {
		uset u = {.n = 0};
		uset_add(&u, mask, 0, 0);
		tk_buf nat = {0}, extra = {0};
		uint8_t *ref = rl_calloc(N_CP, 1), *got = rl_calloc(N_CP, 1);
		f = rl_calloc(1, sizeof *f);
		rc = ref && got && f ? native_items(mask, &nat) : RL_ESYS;
		if (!rc)
			rc = pcre2_map(nat.p, nat.n, got);
		if (!rc) {
			for (size_t i = 0; i < tk_uni_n; i++)
				if (uset_has(&u, tk_uni_props[i])) {
					uint32_t hi = i + 1 < tk_uni_n ? tk_uni_start[i + 1] : N_CP;
					memset(ref + tk_uni_start[i], 1, hi - tk_uni_start[i]);
				}
			f->usable = 1;
			for (uint32_t c = 0; c < N_CP; c++) {
				f->usable &= !got[c] || ref[c];
				ref[c] &= !got[c];
			}
			size_t n;
			rc = map_items(ref, &extra, &n);
		}
		if (!rc) {
			f->mask = mask;
			f->extra = extra.p ? extra.p : rl_strdup("");
			extra.p = NULL;
			rc = f->extra ? RL_OK : RL_ESYS;
		}
		if (!rc) {
			f->next = native_fixes;
			native_fixes = f;
		} else {
			free(f);
			f = NULL;
		}
		free(ref);
		free(got);
		tk_buf_free(&nat);
		tk_buf_free(&extra);
	}
	pthread_mutex_unlock(&native_lock);
	*out = f;
	return rc;
}

/* Appends u as PCRE2 class items. A set of few ranges is spelled out. A larger
 * one is PCRE2's own properties (a table lookup) for its categories plus, spelled
 * out, the code points of u they miss (characters newer than PCRE2's tables, and
 * u's other terms) when PCRE2 puts nothing in them that u leaves out; else it is
 * spelled out whole: correct, but PCRE2 10.42's JIT tries the ranges one by one.
 * An empty set is \p{Cs}, which no UTF-8 text matches. */
static int uset_items(const uset *u, tk_buf *o)
{
	uint32_t mask = 0;
	for (int k = 0; k < u->n; k++)
		if (!u->term[k].negate)
			mask |= u->term[k].gc;
	mask &= ~GC(CS);
	uranges all = {0};
	int rc = uset_ranges(u, 0, &all);
	const native_fix *f = NULL;
	if (!rc && all.n > 32 && mask)
		rc = native_fix_get(mask, &f);
	if (!rc && f && f->usable) {
		free(all.r);
		all = (uranges){0};
		rc = native_items(mask, o);
		if (!rc)
			rc = tk_buf_add(o, f->extra, strlen(f->extra));
		if (!rc)
			rc = uset_ranges(u, mask, &all);
	} else if (!rc && all.n == 0) {
		rc = tk_buf_add(o, "\\p{Cs}", 6);
	}
	if (rc) {
		free(all.r);
		return rc;
	}
	return uranges_items(&all, o);
}

/* Appends u as a whole class, "[...]". */
static int uset_class(const uset *u, tk_buf *o)
{
	if (tk_buf_add(o, "[", 1))
		return RL_ESYS;
	int rc = uset_items(u, o);
	return rc ? rc : tk_buf_add(o, "]", 1);
}

/* If p[0..n) starts with an escape for a set of code points (\s \S \w \W \d \D,
 * \p{...} \P{...} \p{^...} with a general category), adds the set to u and
 * returns the escape's length; 0 otherwise. */
static size_t set_escape(const char *p, size_t n, int in_class, uset *u)
{
	if (n < 2 || p[0] != '\\')
		return 0;
	char e = p[1];
	int neg = e >= 'A' && e <= 'Z';
	switch (e) {
	case 's':
	case 'S':
		return uset_add(u, 0, TK_U_SPACE, neg) ? 2 : 0;
	case 'w':
	case 'W':
		return uset_add(u, 0, in_class ? TK_U_CWORD : TK_U_WORD, neg) ? 2 : 0;
	case 'd':
	case 'D':
		return uset_add(u, GC(ND), 0, neg) ? 2 : 0;
	case 'p':
	case 'P': {
		const char *end = n > 3 && p[2] == '{' ? memchr(p + 3, '}', n - 3) : NULL;
		if (!end)
			return 0;
		const char *name = p + 3;
		if (*name == '^') {
			neg = !neg;
			name++;
		}
		uint32_t gc = gc_by_name(name, (size_t)(end - name));
		return gc && uset_add(u, gc, 0, neg) ? (size_t)(end - p) + 1 : 0;
	}
	default:
		return 0;
	}
}

/* Oniguruma's \h (an ASCII hex digit) and its complement, as class items. */
#define HEX_ITEMS "0-9a-fA-F"
#define NOT_HEX_ITEMS                                                                              \
	"\\x{0}-\\x{2F}\\x{3A}-\\x{40}\\x{47}-\\x{60}\\x{67}-\\x{D7FF}\\x{E000}-\\x{10FFFF}"

static int onig_to_pcre2(const char *p, size_t n, tk_buf *o)
{
	int in_class = 0;
	size_t class_start = 0;
	for (size_t i = 0; i < n;) {
		char c = p[i];
		uset u = {.n = 0};
		size_t l = set_escape(p + i, n - i, in_class, &u);
		if (l) {
			/* inside a class, a run of set escapes becomes one list of ranges */
			while (in_class && i + l < n) {
				if (u.n == (int)(sizeof u.term / sizeof u.term[0])) {
					if (uset_items(&u, o))
						return RL_ESYS;
					u.n = 0;
				}
				size_t more = set_escape(p + i + l, n - i - l, in_class, &u);
				if (!more)
					break;
				l += more;
			}
			if (u.n && (in_class ? uset_items(&u, o) : uset_class(&u, o)))
				return RL_ESYS;
			i += l;
			continue;
		}
		if (c == '\\' && i + 1 < n) {
			char d = p[i + 1];
			const char *rep = NULL;
			if (d == 'h')
				rep = in_class ? HEX_ITEMS : "[" HEX_ITEMS "]";
			else if (d == 'H')
				rep = in_class ? NOT_HEX_ITEMS : "[^" HEX_ITEMS "]";
			if (rep) {
				if (tk_buf_add(o, rep, strlen(rep)))
					return RL_ESYS;
				i += 2;
				continue;
			}
			if (d == 'u' && i + 6 <= n) {
				int hex = 1;
				for (size_t k = 2; k < 6; k++) {
					char h = p[i + k];
					hex &= (h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') ||
					       (h >= 'A' && h <= 'F');
				}
				if (hex) {
					if (tk_buf_add(o, "\\x{", 3) ||
					    tk_buf_add(o, p + i + 2, 4) || tk_buf_add(o, "}", 1))
						return RL_ESYS;
					i += 6;
					continue;
				}
			}
			uint32_t cp;
			int cl = tk_utf8_next(p + i + 1, n - i - 1, &cp);
			if (tk_buf_add(o, p + i, 1 + (size_t)cl))
				return RL_ESYS;
			i += 1 + (size_t)cl;
			continue;
		}
		if (!in_class && c == '[') {
			in_class = 1;
			if (tk_buf_add(o, p + i, 1))
				return RL_ESYS;
			i++;
			if (i < n && p[i] == '^') {
				if (tk_buf_add(o, "^", 1))
					return RL_ESYS;
				i++;
			}
			class_start = i;
			continue;
		}
		if (in_class && c == '[' && i + 1 < n && p[i + 1] == ':') {
			const char *end = memchr(p + i, ']', n - i);
			size_t pl = end ? (size_t)(end - (p + i)) + 1 : n - i;
			if (tk_buf_add(o, p + i, pl))
				return RL_ESYS;
			i += pl;
			continue;
		}
		if (in_class && c == ']' && i != class_start)
			in_class = 0;
		if (tk_buf_add(o, p + i, 1))
			return RL_ESYS;
		i++;
	}
	return tk_buf_add(o, "", 0);
}

static int regex_compile_raw(tk_regex *r, const char *pat, size_t len, const char *what)
{
	int err;
	PCRE2_SIZE off;
	memset(r, 0, sizeof *r);
	r->code = pcre2_compile((PCRE2_SPTR)pat, len, PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE, &err,
				&off, NULL);
	if (!r->code) {
		PCRE2_UCHAR msg[256];
		pcre2_get_error_message(err, msg, sizeof msg);
		return rl_error(RL_EDATA, "%s: regex '%.*s' does not compile: %s at offset %zu",
				what, (int)(len > 200 ? 200 : len), pat, (char *)msg, (size_t)off);
	}
	pcre2_jit_compile(r->code, PCRE2_JIT_COMPLETE); /* without JIT it still works */
	return RL_OK;
}

int tk_regex_compile(tk_regex *r, const char *pattern, size_t len, const char *what)
{
	tk_buf b = {0};
	int rc = onig_to_pcre2(pattern, len, &b);
	if (!rc)
		rc = regex_compile_raw(r, b.p, b.n, what);
	tk_buf_free(&b);
	return rc;
}

int tk_regex_literal(tk_regex *r, const char *s, size_t len)
{
	memset(r, 0, sizeof *r);
	r->lit = rl_malloc(len + 1);
	if (!r->lit)
		return RL_ESYS;
	memcpy(r->lit, s, len);
	r->lit[len] = 0;
	r->litlen = len;
	return RL_OK;
}

void tk_regex_free(tk_regex *r)
{
	if (r->code)
		pcre2_code_free(r->code);
	free(r->lit);
	memset(r, 0, sizeof *r);
}

static int span_push(tk_spans *a, size_t s, size_t e, int m)
{
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		tk_span *v = rl_realloc_array(a->v, cap, sizeof *v);
		if (!v)
			return RL_ESYS;
		a->v = v;
		a->cap = cap;
	}
	a->v[a->n++] = (tk_span){s, e, m};
	return RL_OK;
}

/* Appends the match (ms, me) to the spans, with the gap before it. */
static int add_match(tk_spans *out, size_t *prev, size_t ms, size_t me)
{
	if (*prev != ms && span_push(out, *prev, ms, 0))
		return RL_ESYS;
	*prev = me;
	return span_push(out, ms, me, 1);
}

int tk_regex_spans(const tk_regex *r, pcre2_match_data *md, const char *s, size_t n, tk_spans *out)
{
	out->n = 0;
	if (n == 0)
		return span_push(out, 0, 0, 0);
	size_t prev = 0;
	if (!r->code) {
		for (size_t i = 0; i + r->litlen <= n;) {
			const char *f = memmem(s + i, n - i, r->lit, r->litlen);
			if (!f)
				break;
			size_t ms = (size_t)(f - s);
			if (add_match(out, &prev, ms, ms + r->litlen))
				return RL_ESYS;
			i = ms + r->litlen;
		}
	} else {
		size_t pos = 0, last_end = SIZE_MAX;
		while (pos <= n) {
			int rc = pcre2_match(r->code, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, md,
					     NULL);
			if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
				rc = pcre2_match(r->code, (PCRE2_SPTR)s, n, pos,
						 PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md, NULL);
			if (rc == PCRE2_ERROR_NOMATCH)
				break;
			if (rc < 0) {
				PCRE2_UCHAR msg[256];
				pcre2_get_error_message(rc, msg, sizeof msg);
				return rl_error(RL_EDATA, "regex match failed: %s", (char *)msg);
			}
			PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
			size_t ms = ov[0], me = ov[1];
			if (ms == me && last_end == me) {
				/* onig's find_iter: no empty match right after the last match */
				if (pos >= n)
					break;
				uint32_t cp;
				pos += (size_t)tk_utf8_next(s + pos, n - pos, &cp);
				continue;
			}
			pos = me;
			last_end = me;
			if (add_match(out, &prev, ms, me))
				return RL_ESYS;
		}
	}
	if (prev != n)
		return span_push(out, prev, n, 0);
	return RL_OK;
}

/* Spans of a char predicate: every matching char alone, the runs between merged. */
static int pred_spans(int (*pred)(uint32_t, uint32_t), uint32_t arg, const char *s, size_t n,
		      tk_spans *out)
{
	out->n = 0;
	if (n == 0)
		return span_push(out, 0, 0, 0);
	size_t last = 0;
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		int l = tk_utf8_next(s + i, n - i, &cp);
		if (pred(cp, arg)) {
			if (last < i && span_push(out, last, i, 0))
				return RL_ESYS;
			if (span_push(out, i, i + (size_t)l, 1))
				return RL_ESYS;
			last = i + (size_t)l;
		}
		i += (size_t)l;
	}
	if (n > last)
		return span_push(out, last, n, 0);
	return RL_OK;
}

static int pred_ws(uint32_t c, uint32_t arg)
{
	(void)arg;
	return tk_is_whitespace(c);
}
static int pred_num(uint32_t c, uint32_t arg)
{
	(void)arg;
	return tk_is_numeric(c);
}
static int pred_punct(uint32_t c, uint32_t arg)
{
	(void)arg;
	return tk_is_punct(c);
}
static int pred_eq(uint32_t c, uint32_t arg)
{
	return c == arg;
}

/* NormalizedString::split: applies the behaviour; m = 1 marks a removed span. */
static int apply_behavior(const tk_spans *in, int behavior, int invert, tk_spans *out)
{
	out->n = 0;
	int prev = 0;
	if (behavior == B_MERGED_NEXT) {
		for (size_t k = in->n; k-- > 0;) {
			tk_span sp = in->v[k];
			int m = sp.m ^ invert;
			if (m && !prev && out->n)
				out->v[out->n - 1].s = sp.s;
			else if (span_push(out, sp.s, sp.e, 0))
				return RL_ESYS;
			prev = m;
		}
		for (size_t a = 0, b = out->n ? out->n - 1 : 0; a < b; a++, b--) {
			tk_span x = out->v[a];
			out->v[a] = out->v[b];
			out->v[b] = x;
		}
		return RL_OK;
	}
	for (size_t k = 0; k < in->n; k++) {
		tk_span sp = in->v[k];
		int m = sp.m ^ invert;
		switch (behavior) {
		case B_ISOLATED:
			if (span_push(out, sp.s, sp.e, 0))
				return RL_ESYS;
			break;
		case B_REMOVED:
			if (span_push(out, sp.s, sp.e, m))
				return RL_ESYS;
			break;
		case B_CONTIGUOUS:
			if (m == prev && out->n)
				out->v[out->n - 1].e = sp.e;
			else if (span_push(out, sp.s, sp.e, 0))
				return RL_ESYS;
			break;
		case B_MERGED_PREV:
			if (m && !prev && out->n)
				out->v[out->n - 1].e = sp.e;
			else if (span_push(out, sp.s, sp.e, 0))
				return RL_ESYS;
			break;
		default:
			return rl_error(RL_EDATA, "unknown split behaviour");
		}
		prev = m;
	}
	return RL_OK;
}

/* ---- normalizers ---------------------------------------------------------------------- */
/* 1 if utf8proc (Unicode 15) would decompose, reorder or compose cp but the
 * reference's normalizer (Unicode 9) has no data for it: to the reference, cp is
 * an unassigned character. */
static int norm_unknown(uint32_t cp)
{
	if (cp < 0x80)
		return 0;
	const utf8proc_property_t *p = utf8proc_get_property((utf8proc_int32_t)cp);
	if (p->decomp_seqindex == UINT16_MAX && p->combining_class == 0 &&
	    p->comb_index == UINT16_MAX)
		return 0;
	return !(tk_uni(cp) & TK_U_NORM);
}

static int nz_utf8proc_run(const char *s, size_t n, int opts, tk_buf *o)
{
	utf8proc_uint8_t *dst = NULL;
	utf8proc_ssize_t k = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &dst,
					  (utf8proc_option_t)(UTF8PROC_STABLE | opts));
	if (k < 0)
		return rl_error(RL_EDATA, "unicode normalization failed: %s", utf8proc_errmsg(k));
	int rc = tk_buf_add(o, dst, (size_t)k);
	free(dst);
	return rc;
}

/* Normalizes as the reference does: an unassigned character has combining class
 * 0 and no decomposition and composes with nothing, so nothing reorders or
 * composes across it. The text between two such characters normalizes on its own
 * and the characters themselves stay as they are. */
static int nz_utf8proc(const char *s, size_t n, int opts, tk_buf *o)
{
	size_t start = 0;
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t l = (size_t)tk_utf8_next(s + i, n - i, &cp);
		if (norm_unknown(cp)) {
			int rc = i > start ? nz_utf8proc_run(s + start, i - start, opts, o) : RL_OK;
			if (rc || (rc = tk_buf_add(o, s + i, l)))
				return rc;
			start = i + l;
		}
		i += l;
	}
	if (n > start)
		return nz_utf8proc_run(s + start, n - start, opts, o);
	return tk_buf_add(o, "", 0);
}

static int nz_one(const rl_tokenizer *t, pcre2_match_data *md, tk_spans *sp, const tk_norm *z,
		  const char *s, size_t n, tk_buf *o)
{
	o->n = 0;
	switch (z->kind) {
	case NZ_NFC:
		return nz_utf8proc(s, n, UTF8PROC_COMPOSE, o);
	case NZ_NFD:
		return nz_utf8proc(s, n, UTF8PROC_DECOMPOSE, o);
	case NZ_NFKC:
		return nz_utf8proc(s, n, UTF8PROC_COMPOSE | UTF8PROC_COMPAT, o);
	case NZ_NFKD:
		return nz_utf8proc(s, n, UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT, o);
	case NZ_LOWER:
	case NZ_STRIP_ACCENTS:
		if (tk_buf_reserve(o, n + 8))
			return RL_ESYS;
		for (size_t i = 0; i < n;) {
			uint32_t cp;
			int l = tk_utf8_next(s + i, n - i, &cp);
			i += (size_t)l;
			if (z->kind == NZ_STRIP_ACCENTS) {
				if (!tk_is_mark(cp) && tk_buf_add(o, s + i - l, (size_t)l))
					return RL_ESYS;
				continue;
			}
			char u[8];
			int k;
			if (cp == 0x130) { /* the one unconditional multi-char lowercase */
				memcpy(u, "i\xCC\x87", 3);
				k = 3;
			} else {
				k = tk_utf8_put(u, tk_lowercase(cp));
			}
			if (tk_buf_add(o, u, (size_t)k))
				return RL_ESYS;
		}
		return tk_buf_add(o, "", 0);
	case NZ_STRIP: {
		size_t a = 0, b = n;
		if (z->left)
			while (a < b) {
				uint32_t cp;
				int l = tk_utf8_next(s + a, b - a, &cp);
				if (!tk_is_whitespace(cp))
					break;
				a += (size_t)l;
			}
		if (z->right)
			while (b > a) {
				size_t k = b - 1;
				while (k > a && ((unsigned char)s[k] & 0xC0) == 0x80)
					k--;
				uint32_t cp;
				tk_utf8_next(s + k, b - k, &cp);
				if (!tk_is_whitespace(cp))
					break;
				b = k;
			}
		return tk_buf_add(o, s + a, b - a);
	}
	case NZ_PREPEND:
		if (n && tk_buf_add(o, z->content, z->content_len))
			return RL_ESYS;
		return tk_buf_add(o, s, n);
	case NZ_REPLACE: {
		int rc = tk_regex_spans(&z->re, md, s, n, sp);
		if (rc)
			return rc;
		if (tk_buf_reserve(o, n))
			return RL_ESYS;
		for (size_t k = 0; k < sp->n; k++) {
			tk_span x = sp->v[k];
			if (x.m ? tk_buf_add(o, z->content, z->content_len)
				: tk_buf_add(o, s + x.s, x.e - x.s))
				return RL_ESYS;
		}
		return tk_buf_add(o, "", 0);
	}
	case NZ_BYTELEVEL:
		if (tk_buf_reserve(o, 2 * n))
			return RL_ESYS;
		for (size_t i = 0; i < n; i++)
			if (tk_buf_add(o, t->bl_char[(uint8_t)s[i]], t->bl_len[(uint8_t)s[i]]))
				return RL_ESYS;
		return RL_OK;
	default:
		return rl_error(RL_EDATA, "unknown normalizer");
	}
}

int tk_normalize(tk_state *st, const char *s, size_t n, const char **out, size_t *out_n)
{
	const rl_tokenizer *t = st->t;
	*out = s;
	*out_n = n;
	tk_buf *bufs[2] = {&st->nbuf, &st->nbuf2};
	for (size_t k = 0; k < t->n_norms; k++) {
		tk_buf *o = bufs[k & 1];
		int rc = nz_one(t, st->md, &st->tmp_spans, &t->norms[k], *out, *out_n, o);
		if (rc)
			return rc;
		*out = o->p ? o->p : "";
		*out_n = o->n;
	}
	return RL_OK;
}

int tk_normalize_string(const rl_tokenizer *t, const char *s, size_t n, tk_buf *out)
{
	tk_state st = {.t = t};
	st.md = pcre2_match_data_create(1, NULL);
	if (!st.md)
		return rl_error(RL_ESYS, "out of memory");
	const char *o;
	size_t on;
	int rc = tk_normalize(&st, s, n, &o, &on);
	if (!rc) {
		out->n = 0;
		rc = tk_buf_add(out, o, on);
	}
	tk_state_free(&st);
	return rc;
}

void tk_norm_free(tk_norm *z)
{
	free(z->content);
	tk_regex_free(&z->re);
}

/* ---- pre-tokenizers ------------------------------------------------------------------- */
/* Recurses into each kept span of str (spans with m = 0 and non-empty). */
static int each_piece(tk_state *st, size_t stage, const char *str, const tk_spans *sp, int orig0)
{
	for (size_t k = 0; k < sp->n; k++) {
		tk_span x = sp->v[k];
		if (x.m || x.e == x.s)
			continue;
		int rc = tk_pretokenize(st, stage + 1, str + x.s, x.e - x.s, orig0 && x.s == 0);
		if (rc)
			return rc;
	}
	return RL_OK;
}

static int bytelevel_piece(tk_state *st, size_t stage, const char *s, size_t n, int orig0)
{
	const rl_tokenizer *t = st->t;
	tk_buf *m = &st->stage_buf[stage * 2 + 1];
	m->n = 0;
	if (tk_buf_reserve(m, 2 * n))
		return RL_ESYS;
	for (size_t i = 0; i < n; i++) {
		uint8_t b = (uint8_t)s[i];
		memcpy(m->p + m->n, t->bl_char[b], t->bl_len[b]);
		m->n += t->bl_len[b];
	}
	return tk_pretokenize(st, stage + 1, m->p, m->n, orig0);
}

int tk_pretokenize(tk_state *st, size_t stage, const char *s, size_t n, int orig0)
{
	const rl_tokenizer *t = st->t;
	if (n == 0)
		return RL_OK;
	if (stage == t->n_pretoks)
		return st->piece_fn ? st->piece_fn(st->piece_ctx, s, n) : tk_model_piece(st, s, n);
	const tk_pretok *p = &t->pretoks[stage];
	tk_buf *buf = &st->stage_buf[stage * 2];
	tk_spans *sp = &st->stage_spans[stage], *tmp = &st->tmp_spans;
	int rc;
	switch (p->kind) {
	case PT_BYTELEVEL: {
		const char *str = s;
		size_t len = n;
		if (p->add_prefix_space && s[0] != ' ') {
			buf->n = 0;
			if (tk_buf_add(buf, " ", 1) || tk_buf_add(buf, s, n))
				return RL_ESYS;
			str = buf->p;
			len = buf->n;
		}
		if (!p->use_regex)
			return bytelevel_piece(st, stage, str, len, orig0);
		if ((rc = tk_regex_spans(&t->re_bytelevel, st->md, str, len, sp)))
			return rc;
		for (size_t k = 0; k < sp->n; k++) {
			tk_span x = sp->v[k];
			if (x.e > x.s && (rc = bytelevel_piece(st, stage, str + x.s, x.e - x.s,
							       orig0 && x.s == 0)))
				return rc;
		}
		return RL_OK;
	}
	case PT_SPLIT:
		if ((rc = tk_regex_spans(&p->re, st->md, s, n, tmp)) ||
		    (rc = apply_behavior(tmp, p->behavior, p->invert, sp)))
			return rc;
		return each_piece(st, stage, s, sp, orig0);
	case PT_METASPACE: {
		char rep[4];
		int rl = tk_utf8_put(rep, p->ch);
		buf->n = 0;
		if (tk_buf_reserve(buf, n * 3 + 4))
			return RL_ESYS;
		int starts = 0;
		for (size_t i = 0; i < n; i++) {
			if (s[i] == ' ') {
				if (tk_buf_add(buf, rep, (size_t)rl))
					return RL_ESYS;
			} else if (tk_buf_add(buf, s + i, 1)) {
				return RL_ESYS;
			}
		}
		starts = buf->n >= (size_t)rl && memcmp(buf->p, rep, (size_t)rl) == 0;
		if (!starts && (p->scheme == PS_ALWAYS || (p->scheme == PS_FIRST && orig0))) {
			if (tk_buf_reserve(buf, (size_t)rl))
				return RL_ESYS;
			memmove(buf->p + rl, buf->p, buf->n + 1);
			memcpy(buf->p, rep, (size_t)rl);
			buf->n += (size_t)rl;
		}
		if (!p->split)
			return tk_pretokenize(st, stage + 1, buf->p, buf->n, orig0);
		if ((rc = pred_spans(pred_eq, p->ch, buf->p, buf->n, tmp)) ||
		    (rc = apply_behavior(tmp, B_MERGED_NEXT, 0, sp)))
			return rc;
		return each_piece(st, stage, buf->p, sp, orig0);
	}
	case PT_WHITESPACE:
		if ((rc = tk_regex_spans(&t->re_whitespace, st->md, s, n, tmp)) ||
		    (rc = apply_behavior(tmp, B_REMOVED, 1, sp)))
			return rc;
		return each_piece(st, stage, s, sp, orig0);
	case PT_WSPLIT:
		if ((rc = pred_spans(pred_ws, 0, s, n, tmp)) ||
		    (rc = apply_behavior(tmp, B_REMOVED, 0, sp)))
			return rc;
		return each_piece(st, stage, s, sp, orig0);
	case PT_DIGITS:
		if ((rc = pred_spans(pred_num, 0, s, n, tmp)) ||
		    (rc = apply_behavior(tmp, p->individual ? B_ISOLATED : B_CONTIGUOUS, 0, sp)))
			return rc;
		return each_piece(st, stage, s, sp, orig0);
	case PT_PUNCT:
		if ((rc = pred_spans(pred_punct, 0, s, n, tmp)) ||
		    (rc = apply_behavior(tmp, p->behavior, 0, sp)))
			return rc;
		return each_piece(st, stage, s, sp, orig0);
	case PT_CHARDELIM:
		if ((rc = pred_spans(pred_eq, p->ch, s, n, tmp)) ||
		    (rc = apply_behavior(tmp, B_REMOVED, 0, sp)))
			return rc;
		return each_piece(st, stage, s, sp, orig0);
	default:
		return rl_error(RL_EDATA, "unknown pre-tokenizer");
	}
}

void tk_pretok_free(tk_pretok *p)
{
	tk_regex_free(&p->re);
}

/* GPT-2's byte-to-unicode table: printable bytes stand for themselves, the others
 * for U+0100 + n in byte order. */
void tk_bytelevel_init(rl_tokenizer *t)
{
	int n = 0;
	for (int i = 0; i < 512; i++)
		t->bl_byte[i] = -1;
	for (int b = 0; b < 256; b++) {
		int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
		uint32_t cp = printable ? (uint32_t)b : 256u + (uint32_t)n++;
		t->bl_len[b] = (uint8_t)tk_utf8_put(t->bl_char[b], cp);
		t->bl_byte[cp] = (int16_t)b;
	}
}

int tk_builtin_regexes(rl_tokenizer *t)
{
	int need_bl = 0, need_ws = 0;
	for (size_t k = 0; k < t->n_pretoks; k++) {
		need_bl |= t->pretoks[k].kind == PT_BYTELEVEL && t->pretoks[k].use_regex;
		need_ws |= t->pretoks[k].kind == PT_WHITESPACE;
	}
	static const char gpt2[] =
		"'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|"
		"\\s+(?!\\S)|\\s+";
	int rc = RL_OK;
	if (need_bl && !t->re_bytelevel.code)
		rc = tk_regex_compile(&t->re_bytelevel, gpt2, sizeof gpt2 - 1, "ByteLevel");
	if (!rc && need_ws && !t->re_whitespace.code) {
		/* \w+|[^\w\s]+ with the regex crate's \w and \s */
		uset word = {.n = 0}, other = {.n = 0};
		uset_add(&word, 0, TK_U_RWORD, 0);
		uset_add(&other, 0, TK_U_RWORD | TK_U_SPACE, 1);
		tk_buf b = {0};
		if (uset_class(&word, &b) || tk_buf_add(&b, "+|", 2) || uset_class(&other, &b) ||
		    tk_buf_add(&b, "+", 1))
			rc = RL_ESYS;
		else
			rc = regex_compile_raw(&t->re_whitespace, b.p, b.n, "Whitespace");
		tk_buf_free(&b);
	}
	return rc;
}
