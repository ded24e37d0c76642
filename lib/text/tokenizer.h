/* tokenizer.h — HuggingFace tokenizer.json in C, exact.
 *
 * Loads a model's tokenizer.json (and tokenizer_config.json, generation_config.json
 * when present) and turns text into the token ids HuggingFace `tokenizers` gives,
 * and ids back into text. The reference is tokenizers' Tokenizer.encode(text,
 * add_special_tokens=False) and Tokenizer.decode(ids, skip_special_tokens); the
 * conformance test (tests/unit/test_tokenizer_conformance.c) checks every string of
 * a 433-string corpus against it for five real tokenizers.
 *
 * Pipeline (as tokenizers runs it):
 *   1. added tokens with normalized=false are found in the raw text (longest match
 *      at the leftmost position; lstrip/rstrip/single_word honoured);
 *   2. each remaining segment is normalized (NFC/NFD/NFKC/NFKD, Lowercase, Strip,
 *      StripAccents, Prepend, Replace, ByteLevel, Sequence), then added tokens with
 *      normalized=true are found in it;
 *   3. pre-tokenizers split the rest (ByteLevel, Split with String or Regex pattern
 *      and any behaviour, Metaspace, Whitespace, WhitespaceSplit, Digits,
 *      Punctuation, CharDelimiterSplit, Sequence); regexes run on PCRE2 (UTF, UCP,
 *      JIT) with Oniguruma's classes spelled out as code point ranges;
 *   4. the model maps each piece to ids: BPE (merge ranks through a binary heap,
 *      byte_fallback, ignore_merges, unk/fuse_unk, continuing_subword_prefix,
 *      end_of_word_suffix) or WordLevel.
 * WordPiece and Unigram models, dropout, and the BertNormalizer/Precompiled/Nmt
 * normalizers are refused at load with RL_EDATA naming the part. truncation and
 * padding in tokenizer.json are ignored (realign never truncates).
 *
 * Thread safety: a loaded tokenizer is read-only except for its word cache, which
 * is guarded by a mutex; encode and decode may run on several threads at once.
 *
 * Known limits (none met by the five real tokenizers or the test variants):
 * - Metaspace with prepend_scheme "first" decides "at the start of the input" per
 *   split; after a normalizer, a split that does not start the normalized segment
 *   counts as not at the start (tokenizers maps it back through its alignments).
 * - Characters are classed by tokenizers' own Unicode data, which is not one
 *   Unicode version (Oniguruma's 16.0 for regexes, 9.0 for normalization, Rust's
 *   for Digits and Lowercase...): tokenizer_unicode.c holds what tokenizers
 *   answers for every code point (tests/gen/gen_unicode.py asks it), and the
 *   conformance test checks every code point of every plane against it.
 * - Regexes: Oniguruma's \s \S \w \W \d \D \h \H and \p{..} \P{..} \p{^..} of a
 *   general category become those ranges, in and out of brackets; \uXXXX is
 *   translated. Other properties (scripts, Alphabetic...), POSIX brackets and \b
 *   keep PCRE2's meaning and Unicode 14 data; other Oniguruma-only syntax is
 *   refused by PCRE2.
 * - Normalization runs on utf8proc (Unicode 15) except across the characters it
 *   knows and tokenizers' normalizer (Unicode 9) does not: those stay as they are
 *   and nothing composes or reorders across them, as in tokenizers.
 * - Strings reach us through cJSON except model.vocab and model.merges (read by
 *   a length-aware scanner): an added token or config string containing U+0000
 *   is refused (core/json.h), as cJSON would cut it there.
 * - Added tokens get tokenizers' ids (the model's id of the same string, else the
 *   next after the vocabulary, in file order); the file's "id" fields are not
 *   trusted, as in tokenizers.
 */
#ifndef RL_TOKENIZER_H
#define RL_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

typedef struct rl_tokenizer rl_tokenizer;

/* A growable array of token ids. Zero-initialise; free with rl_ids_free. */
typedef struct rl_ids {
	int32_t *v;
	size_t n, cap;
} rl_ids;

int rl_ids_push(rl_ids *a, int32_t id);
int rl_ids_append(rl_ids *a, const int32_t *ids, size_t n);
void rl_ids_free(rl_ids *a);

/* Loads dir/tokenizer.json (required), dir/tokenizer_config.json (optional:
 * bos/eos tokens; the chat template is chat_source.h's) and
 * dir/generation_config.json (optional: eos_token_id). A missing
 * tokenizer.json, malformed JSON, an unsupported model or component: RL_EDATA with
 * a message naming the file and the part. */
int rl_tokenizer_load(const char *dir, rl_tokenizer **out);

/* The same from memory: json is tokenizer.json's text; config (may be NULL) is
 * tokenizer_config.json's; name is used in messages. The buffers are not kept. */
int rl_tokenizer_load_mem(const char *json, size_t len, const char *config, size_t config_len,
			  const char *name, rl_tokenizer **out);

void rl_tokenizer_free(rl_tokenizer *t);

/* Flags for rl_tok_encode. */
enum {
	RL_TOK_ADD_SPECIAL = 1,	    /* apply the post-processor (BOS/EOS...), like
				      add_special_tokens=True; off by default */
	RL_TOK_NO_SPECIAL_SPLIT = 2 /* do not match special added tokens in the text
				       (tokenizers' encode_special_tokens=True) */
};

/* Appends the ids of text[0..len) to *out. text must be valid UTF-8 (RL_EDATA
 * otherwise). Without RL_TOK_ADD_SPECIAL no BOS/EOS is added: special tokens come
 * only from their literal text (as the chat templates contain them). */
int rl_tok_encode(const rl_tokenizer *t, const char *text, size_t len, unsigned flags, rl_ids *out);

/* The pieces the model is given for text, in order, each passed to fn: the text
 * normalized, then split by the pre-tokenizer, as tokenizers'
 * pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)) gives them (a
 * ByteLevel pre-tokenizer's pieces are in its byte alphabet). Added tokens are not
 * looked for. text must be valid UTF-8 (RL_EDATA otherwise). A nonzero return
 * from fn stops the split and is returned. */
typedef int (*rl_tok_piece_fn)(void *ctx, const char *piece, size_t len);
int rl_tok_pretokenize(const rl_tokenizer *t, const char *text, size_t len, rl_tok_piece_fn fn,
		       void *ctx);

/* Decodes n ids into a malloc'd NUL-terminated string (*text, *len without the
 * NUL) through the tokenizer's decoder. skip_special drops special added tokens.
 * Byte sequences that are not UTF-8 become U+FFFD exactly as tokenizers does
 * (ByteFallback: one per byte of the run; ByteLevel: one per maximal invalid
 * subpart). Ids with no token are skipped, like tokenizers. */
int rl_tok_decode(const rl_tokenizer *t, const int32_t *ids, size_t n, int skip_special,
		  char **text, size_t *len);

/* Id of a token string (added tokens first, then the model's vocabulary), or -1. */
int32_t rl_tok_id(const rl_tokenizer *t, const char *token, size_t len);
/* The token string of id (as decode sees it) and its length, or NULL. Not
 * NUL-terminated in general; valid while t lives. */
const char *rl_tok_str(const rl_tokenizer *t, int32_t id, size_t *len);
/* 1 if id is a special added token (skipped by skip_special). */
int rl_tok_is_special(const rl_tokenizer *t, int32_t id);
/* One more than the largest id (the embedding rows a model needs). */
int32_t rl_tok_n_vocab(const rl_tokenizer *t);

/* BOS/EOS from tokenizer_config.json (bos_token/eos_token), -1 when absent. */
int32_t rl_tok_bos(const rl_tokenizer *t);
int32_t rl_tok_eos(const rl_tokenizer *t);
/* The ids that end generation: generation_config.json's eos_token_id (an id or a
 * list) and tokenizer_config.json's eos_token, without duplicates, in that order.
 * A chat template's end-of-turn token is added by rl_chat_end_ids (chat.h). */
size_t rl_tok_end_ids(const rl_tokenizer *t, const int32_t **ids);

/* The model type ("BPE", "WordLevel") and the name given at load. */
const char *rl_tok_model_type(const rl_tokenizer *t);
const char *rl_tok_name(const rl_tokenizer *t);

#endif
