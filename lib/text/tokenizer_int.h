/* tokenizer_int.h — what lib/tokenizer*.c share; not for other modules.
 *
 *   tokenizer.c       loading tokenizer.json, added tokens, the encode/decode drivers
 *   tokenizer_text.c  regexes, normalizers and pre-tokenizers
 *   tokenizer_bpe.c   the BPE and WordLevel models, the word cache
 *   tokenizer_dec.c   decoders
 *   tokenizer_buf.c   byte buffers, id arrays, string maps
 *   tokenizer_utf8.c  UTF-8 and Unicode character classes
 *   tokenizer_unicode.c  tokenizers' Unicode data (generated: tests/gen/gen_unicode.py)
 *
 * They depend on each other in that order, top down (text hands its pieces to
 * the BPE model); buf and utf8 depend on none of them but the data.
 */
#ifndef RL_TOKENIZER_INT_H
#define RL_TOKENIZER_INT_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "text/tokenizer.h"

/* ---- byte buffers ---------------------------------------------------------- */
typedef struct tk_buf {
	char *p;
	size_t n, cap;
} tk_buf;

int tk_buf_reserve(tk_buf *b, size_t extra);
int tk_buf_add(tk_buf *b, const void *s, size_t n);
void tk_buf_free(tk_buf *b);

/* ---- string -> int32 maps (open addressing over an append-only key arena) ---- */
typedef struct tk_map {
	char *arena;
	size_t arena_n, arena_cap;
	uint64_t *koff; /* key offset << 24 | key length (keys < 16 MiB) */
	int32_t *val;
	size_t n, cap;
	uint32_t *slot; /* entry index + 1; 0 = empty */
	size_t mask;
} tk_map;

/* Inserts or (overwrite) replaces; returns RL_OK or RL_ESYS. */
int tk_map_put(tk_map *m, const char *s, size_t len, int32_t val, int overwrite);
/* Value for the key, or -1. */
int32_t tk_map_get(const tk_map *m, const char *s, size_t len);
/* Key of entry e. */
const char *tk_map_key(const tk_map *m, size_t e, size_t *len);
void tk_map_free(tk_map *m);

/* ---- the reference's Unicode data (tokenizer_unicode.c) ---------------------------
 * tokenizers classes characters by several Unicode versions at once: Oniguruma's
 * for regexes, an older one for normalization, Rust's for char methods (see
 * tests/gen/gen_unicode.py, which generates the tables by asking it about every
 * code point). Properties come in runs: from tk_uni_start[i] up to the next start,
 * every code point has tk_uni_props[i]: its general category as Oniguruma sees it
 * in the low five bits (enum tk_gc), and the flags above them. */
enum tk_gc {
	TK_GC_CN,
	TK_GC_LU,
	TK_GC_LL,
	TK_GC_LT,
	TK_GC_LM,
	TK_GC_LO,
	TK_GC_MN,
	TK_GC_MC,
	TK_GC_ME,
	TK_GC_ND,
	TK_GC_NL,
	TK_GC_NO,
	TK_GC_PC,
	TK_GC_PD,
	TK_GC_PS,
	TK_GC_PE,
	TK_GC_PI,
	TK_GC_PF,
	TK_GC_PO,
	TK_GC_SM,
	TK_GC_SC,
	TK_GC_SK,
	TK_GC_SO,
	TK_GC_ZS,
	TK_GC_ZL,
	TK_GC_ZP,
	TK_GC_CC,
	TK_GC_CF,
	TK_GC_CS,
	TK_GC_CO,
	TK_GC_COUNT
};

enum {
	TK_U_GC = 0x1F,	       /* mask of the general category */
	TK_U_WORD = 1 << 5,    /* Oniguruma's \w */
	TK_U_SPACE = 1 << 6,   /* White_Space: \s in both regex engines, char::is_whitespace */
	TK_U_NORM = 1 << 7,    /* the normalizers know it: a decomposition, a combining
				  class or a part in a composition */
	TK_U_NUMERIC = 1 << 8, /* char::is_numeric (Digits) */
	TK_U_PUNCT = 1 << 9,   /* is_punc (Punctuation): ASCII punctuation or P* */
	TK_U_MARK = 1 << 10,   /* is_combining_mark (StripAccents) */
	TK_U_RWORD = 1 << 11,  /* the regex crate's \w (Whitespace, single_word) */
	TK_U_CWORD = 1 << 12,  /* Oniguruma's \w inside brackets ([\w] leaves out six
				  Latin-1 digits \w has: U+00B2 U+00B3 U+00B9 U+00BC-BE) */
};

extern const size_t tk_uni_n;
extern const uint32_t tk_uni_start[];
extern const uint16_t tk_uni_props[];

/* Lowercase (char::to_lowercase) as runs: first..last, every step-th code point
 * (step 0: first alone) maps to itself + delta. U+0130 (to "i\u0307") is not in
 * them. */
typedef struct tk_lower_run {
	uint32_t first, last, step;
	int32_t delta;
} tk_lower_run;

extern const size_t tk_lower_n;
extern const tk_lower_run tk_lower[];

/* ---- Unicode ----------------------------------------------------------------- */
/* Decodes the UTF-8 char at s (valid UTF-8 assumed); returns its byte length. */
int tk_utf8_next(const char *s, size_t n, uint32_t *cp);
int tk_utf8_put(char *out, uint32_t cp); /* returns 1..4 */
unsigned tk_uni(uint32_t cp);		 /* the properties of cp (TK_U_*, enum tk_gc) */
int tk_is_whitespace(uint32_t cp);	 /* White_Space (Rust char::is_whitespace) */
int tk_is_numeric(uint32_t cp);		 /* Rust char::is_numeric */
int tk_is_punct(uint32_t cp);		 /* ASCII punctuation or P* (tokenizers' is_punc) */
int tk_is_mark(uint32_t cp);		 /* is_combining_mark: what StripAccents removes */
uint32_t tk_lowercase(uint32_t cp);	 /* char::to_lowercase but for U+0130 (two chars) */
/* Rust's String::from_utf8_lossy: invalid bytes -> U+FFFD per maximal subpart. */
int tk_utf8_lossy(tk_buf *out, const char *s, size_t n);

/* ---- regexes (PCRE2) --------------------------------------------------------- */
typedef struct tk_regex {
	pcre2_code *code; /* NULL for a literal */
	char *lit;	  /* literal pattern (String patterns) */
	size_t litlen;
} tk_regex;

/* Compiles an Oniguruma-syntax pattern (as tokenizers writes them) for PCRE2. */
int tk_regex_compile(tk_regex *r, const char *pattern, size_t len, const char *what);
int tk_regex_literal(tk_regex *r, const char *s, size_t len);
void tk_regex_free(tk_regex *r);

/* One (start, end, is_match) span of a split. */
typedef struct tk_span {
	size_t s, e;
	int m;
} tk_span;

typedef struct tk_spans {
	tk_span *v;
	size_t n, cap;
} tk_spans;

/* All matches of r in s[0..n) as spans covering s (tokenizers' find_matches,
 * with onig's find_iter rule for empty matches). md is scratch match data. */
int tk_regex_spans(const tk_regex *r, pcre2_match_data *md, const char *s, size_t n, tk_spans *out);

/* ---- normalizers ----------------------------------------------------------- */
enum tk_norm_kind {
	NZ_NFC,
	NZ_NFD,
	NZ_NFKC,
	NZ_NFKD,
	NZ_LOWER,
	NZ_STRIP,
	NZ_STRIP_ACCENTS,
	NZ_PREPEND,
	NZ_REPLACE,
	NZ_BYTELEVEL,
};

typedef struct tk_norm {
	int kind;
	int left, right; /* Strip */
	char *content;	 /* Prepend text; Replace replacement */
	size_t content_len;
	tk_regex re; /* Replace pattern */
} tk_norm;

/* ---- pre-tokenizers ---------------------------------------------------------- */
enum tk_pretok_kind {
	PT_BYTELEVEL,
	PT_SPLIT,
	PT_METASPACE,
	PT_WHITESPACE,
	PT_WSPLIT,
	PT_DIGITS,
	PT_PUNCT,
	PT_CHARDELIM,
};

enum tk_behavior { B_REMOVED, B_ISOLATED, B_MERGED_PREV, B_MERGED_NEXT, B_CONTIGUOUS };
enum tk_prepend { PS_ALWAYS, PS_FIRST, PS_NEVER };

typedef struct tk_pretok {
	int kind;
	int behavior;
	int invert;
	int add_prefix_space, use_regex; /* ByteLevel */
	uint32_t ch;			 /* Metaspace replacement; CharDelimiterSplit delimiter */
	int scheme, split;		 /* Metaspace */
	int individual;			 /* Digits */
	tk_regex re;			 /* Split; ByteLevel and Whitespace use built-ins */
} tk_pretok;

/* ---- decoders ------------------------------------------------------------------ */
enum tk_dec_kind {
	DC_BYTELEVEL,
	DC_BYTEFALLBACK,
	DC_FUSE,
	DC_STRIP,
	DC_REPLACE,
	DC_METASPACE,
	DC_BPE,
	DC_WORDPIECE,
};

typedef struct tk_dec {
	int kind;
	uint32_t ch; /* Strip content; Metaspace replacement */
	int start, stop;
	int scheme;
	int cleanup;
	char *content; /* Replace content; BPE suffix; WordPiece prefix */
	size_t content_len;
	tk_regex re;
} tk_dec;

/* ---- added tokens -------------------------------------------------------------- */
typedef struct tk_added {
	char *content;
	size_t len;
	char *norm; /* normalized form (normalized=true tokens whose form differs), or NULL */
	size_t norm_len;
	int32_t id;
	uint8_t special, lstrip, rstrip, normalized, single_word;
} tk_added;

/* A byte trie over added-token contents: leftmost-longest matching. */
typedef struct tk_trie_node {
	int32_t child, sibling; /* -1: none */
	int32_t added;		/* index into added[] ending here, or -1 */
	uint8_t byte;
} tk_trie_node;

typedef struct tk_trie {
	tk_trie_node *v;
	size_t n, cap;
	uint8_t first[256]; /* 1 if some token starts with this byte */
} tk_trie;

/* ---- the tokenizer ------------------------------------------------------------ */
enum { MODEL_BPE, MODEL_WORDLEVEL };

typedef struct tk_merge_slot {
	uint64_t key; /* a << 32 | b; UINT64_MAX = empty */
	uint32_t rank;
	int32_t new_id;
} tk_merge_slot;

struct rl_tokenizer {
	char *name;
	int model;
	/* vocabulary: token string <-> id */
	tk_map vocab;
	int32_t *id_ent;     /* id -> vocab entry, or -1 ([n_ids]) */
	int32_t n_ids;	     /* max model id + 1 */
	int32_t small[2048]; /* id of the one-char token of code point cp < 2048, or -1 */
	/* BPE */
	tk_merge_slot *merges;
	size_t merges_mask, n_merges;
	int32_t unk;   /* unk token id, or -1 (BPE: no unk; WordLevel: error on unknown) */
	char *unk_str; /* WordLevel: the unk token string */
	int byte_fallback, fuse_unk, ignore_merges;
	int32_t byte_id[256];  /* <0xNN> ids for byte_fallback, -1 if absent */
	char *prefix, *suffix; /* continuing_subword_prefix, end_of_word_suffix (NULL: none) */
	size_t prefix_len, suffix_len;
	/* pipeline */
	tk_norm *norms;
	size_t n_norms;
	tk_pretok *pretoks;
	size_t n_pretoks;
	tk_dec *decs;
	size_t n_decs;
	int has_decoder;
	tk_regex re_bytelevel, re_whitespace; /* built-in patterns, compiled when used */
	/* added tokens */
	tk_added *added;
	size_t n_added;
	tk_map added_map; /* content -> id */
	tk_trie trie, trie_norm;
	int has_trie, has_trie_norm;
	uint8_t *special;  /* [n_all] 1 if id's token string is a special token's content */
	int32_t n_all;	   /* max id over vocab and added tokens + 1 */
	int32_t *added_of; /* id -> index into added[] or -1 ([n_all]) */
	/* post-processor (RL_TOK_ADD_SPECIAL) */
	rl_ids pre, post;
	int post_ok;
	char *post_err;
	/* byte-level alphabet */
	char bl_char[256][3]; /* UTF-8 of the char standing for each byte */
	uint8_t bl_len[256];
	int16_t bl_byte[512]; /* code point (< 512) -> byte, or -1 */
	/* config */
	int32_t bos, eos;
	rl_ids end;
	/* word cache (pieces < 256 bytes) */
	pthread_mutex_t cache_lock;
	tk_map cache;	  /* piece -> offset in cache_ids */
	rl_ids cache_ids; /* [n, ids...] records */
};

/* Encoding scratch state (one per rl_tok_encode call). */
typedef struct tk_state {
	const rl_tokenizer *t;
	pcre2_match_data *md;
	tk_buf nbuf;		  /* normalizer output */
	tk_buf nbuf2;		  /* normalizer ping-pong */
	tk_buf stage_buf[32];	  /* per pre-tokenizer stage: 2 buffers */
	tk_spans stage_spans[16]; /* per stage: spans of the current string */
	tk_spans tmp_spans;
	tk_buf word; /* BPE: the piece with prefix/suffix */
	/* BPE symbols and heap */
	int32_t *sym_c, *sym_prev, *sym_next;
	uint8_t *sym_dead;
	size_t sym_cap;
	struct tk_heap_ent *heap;
	size_t heap_n, heap_cap;
	rl_ids tmp_ids;
	rl_ids *out;
	rl_tok_piece_fn piece_fn; /* rl_tok_pretokenize: pieces go here, not to the model */
	void *piece_ctx;
} tk_state;

/* tokenizer_text.c */
int tk_normalize(tk_state *st, const char *s, size_t n, const char **out, size_t *out_n);
int tk_normalize_string(const rl_tokenizer *t, const char *s, size_t n, tk_buf *out);
int tk_pretokenize(tk_state *st, size_t stage, const char *s, size_t n, int orig0);
void tk_norm_free(tk_norm *z);
void tk_pretok_free(tk_pretok *p);
void tk_bytelevel_init(rl_tokenizer *t);
int tk_builtin_regexes(rl_tokenizer *t);
/* tokenizer_bpe.c */
int tk_model_piece(tk_state *st, const char *s, size_t n);
int tk_build_merges(rl_tokenizer *t, size_t n_merges);
int tk_merge_put(rl_tokenizer *t, int32_t a, int32_t b, uint32_t rank, int32_t new_id);
void tk_state_free(tk_state *st);
/* tokenizer_dec.c */
int tk_decode_tokens(const rl_tokenizer *t, const char **toks, const size_t *lens, size_t n,
		     tk_buf *out);
void tk_dec_free(tk_dec *d);

#endif
