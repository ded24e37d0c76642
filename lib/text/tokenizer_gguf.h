/* tokenizer_gguf.h — a GGUF's tokenizer metadata as HuggingFace tokenizer files.
 *
 * llama.cpp stores a tokenizer as tokenizer.ggml.* metadata: the model kind,
 * the vocabulary (tokens, token types, scores), the merges, the special ids,
 * the add_bos/add_eos flags and the name of a pre-tokenizer it implements
 * (tokenizer.ggml.pre), plus tokenizer.chat_template. This rebuilds the
 * tokenizer.json that tokenizes like the model's original one:
 *
 *   "gpt2" (byte-level BPE): the vocabulary and merges as stored; the
 *     normalizer, pre-tokenizer and decoder the pre-tokenizer name stands for
 *     (those of the original tokenizer.json where it is known; the splitting
 *     regexes of llama.cpp's table otherwise):
 *       qwen2, deepseek-r1-qwen       NFC; Qwen2's split regex; ByteLevel
 *       llama3, llama-bpe, llama-v3   Llama 3's split regex; ByteLevel; ignore_merges
 *       dbrx (DBRX, OLMo 2)           Llama 3's split regex; ByteLevel
 *       tekken                        Mistral NeMo's split regex; ByteLevel; ignore_merges
 *       smollm                        every digit alone, then GPT-2's ByteLevel regex
 *       gpt2                          GPT-2's ByteLevel regex
 *     any other name is refused (RL_EDATA naming it): splitting text
 *     differently from the original gives other ids without an error.
 *   "llama" (SentencePiece BPE): byte fallback, "▁" for spaces (with a "▁"
 *     prepended to each text segment unless tokenizer.ggml.add_space_prefix
 *     is false), unk_token from tokenizer.ggml.unknown_token_id. The file has
 *     no merges: they are derived from the vocabulary as transformers'
 *     SentencePiece converter derives them (every split of a token into two
 *     tokens, best score first, ties in id order; for Gemma file order, as in
 *     transformers' GGUF loader). A file converted from a tokenizer.json
 *     alone carries no scores (llama.cpp writes -1000 for all); its merges
 *     then follow id order, which is the original's only where that was.
 *   Added tokens: CONTROL and UNKNOWN tokens as special, USER_DEFINED ones as
 *     not special, all matched whole in raw text (normalized false).
 *     BYTE and UNUSED tokens are plain vocabulary.
 *   Post-processor: BOS and EOS added per tokenizer.ggml.add_bos_token and
 *     add_eos_token (default: BOS for "llama", nothing for "gpt2").
 * Other tokenizer kinds (bert, t5, rwkv, ...) are refused. Duplicate tokens,
 * token strings that are not UTF-8 or hold a NUL byte are refused (a JSON
 * vocabulary cannot hold them).
 *
 * tokenizer_config.json: tokenizer_class PreTrainedTokenizerFast, the
 * bos/eos/unk/pad token strings, add_bos_token, add_eos_token and
 * tokenizer.chat_template carried over byte for byte.
 * generation_config.json: bos_token_id, eos_token_id (EOS, then the EOT and
 * EOM tokens when the file names other ones), pad_token_id.
 */
#ifndef RL_TOKENIZER_GGUF_H
#define RL_TOKENIZER_GGUF_H

#include <stddef.h>

#include "store/gguf.h"

typedef struct rl_gguf_tok_files {
	char *tokenizer_json; /* NUL-terminated texts, malloc'ed */
	size_t tokenizer_json_len;
	char *tokenizer_config;
	size_t tokenizer_config_len;
	char *generation_config;
	size_t generation_config_len;
} rl_gguf_tok_files;

/* Builds the three files' texts from g's metadata. model_max_length (0: left
 * out) goes into tokenizer_config.json. */
int rl_gguf_tokenizer(const rl_gguf *g, long model_max_length, rl_gguf_tok_files *out);
void rl_gguf_tok_files_free(rl_gguf_tok_files *f);

#endif
