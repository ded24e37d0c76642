/* model.c — a HuggingFace model directory: config, shards, roles, the method's sets.
 *
 * Opening is all-or-nothing: config.json parsed, every shard validated
 * (safetensors.c), the index and the shards agreeing exactly, every tensor's
 * name mapped to a role, every tensor the architecture needs present with the
 * shape config.json implies, and no tensor that config.json says the model
 * does not have (a stray bias would be ignored by transformers but used by a
 * naive reader: refused instead).
 */
#include <cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "core/error.h"
#include "core/file.h"
#include "core/finite.h"
#include "core/inputs.h"
#include "core/json.h"
#include "core/jsonl.h"
#include "store/model.h"

#define INDEX_NAME "model.safetensors.index.json"
#define SINGLE_NAME "model.safetensors"

static const struct {
	const char *suffix; /* after "model.layers.<i>." */
	rl_role role;
} layer_roles[] = {
	{"input_layernorm.weight", RL_R_ATTN_NORM},
	{"post_attention_layernorm.weight", RL_R_MLP_NORM},
	{"self_attn.q_proj.weight", RL_R_Q},
	{"self_attn.k_proj.weight", RL_R_K},
	{"self_attn.v_proj.weight", RL_R_V},
	{"self_attn.o_proj.weight", RL_R_O},
	{"self_attn.q_proj.bias", RL_R_Q_BIAS},
	{"self_attn.k_proj.bias", RL_R_K_BIAS},
	{"self_attn.v_proj.bias", RL_R_V_BIAS},
	{"self_attn.o_proj.bias", RL_R_O_BIAS},
	{"mlp.gate_proj.weight", RL_R_GATE},
	{"mlp.up_proj.weight", RL_R_UP},
	{"mlp.down_proj.weight", RL_R_DOWN},
	{"mlp.gate_proj.bias", RL_R_GATE_BIAS},
	{"mlp.up_proj.bias", RL_R_UP_BIAS},
	{"mlp.down_proj.bias", RL_R_DOWN_BIAS},
	{"self_attn.q_norm.weight", RL_R_Q_NORM},
	{"self_attn.k_norm.weight", RL_R_K_NORM},
	{"pre_feedforward_layernorm.weight", RL_R_PRE_FF_NORM},
	{"post_feedforward_layernorm.weight", RL_R_POST_FF_NORM},
	{"self_attn.qkv_proj.weight", RL_R_QKV},
	{"mlp.gate_up_proj.weight", RL_R_GATE_UP},
};
#define NLAYER_ROLES (sizeof layer_roles / sizeof layer_roles[0])

/* Candidate order within a layer: q,k,v,o,gate,up,down, each weight before its bias. */
static const rl_role cand_order[] = {
	RL_R_Q,	      RL_R_Q_BIAS,  RL_R_K,	 RL_R_K_BIAS,	 RL_R_V,	 RL_R_V_BIAS,
	RL_R_QKV,     RL_R_O,	    RL_R_O_BIAS, RL_R_GATE,	 RL_R_GATE_BIAS, RL_R_UP,
	RL_R_UP_BIAS, RL_R_GATE_UP, RL_R_DOWN,	 RL_R_DOWN_BIAS,
};
#define NCAND_ROLES (sizeof cand_order / sizeof cand_order[0])

const char *rl_role_name(rl_role r)
{
	switch (r) {
	case RL_R_EMBED:
		return "embed_tokens.weight";
	case RL_R_FINAL_NORM:
		return "norm.weight";
	case RL_R_LM_HEAD:
		return "lm_head.weight";
	default:
		break;
	}
	for (size_t i = 0; i < NLAYER_ROLES; i++) {
		if (layer_roles[i].role == r) {
			const char *s = layer_roles[i].suffix, *dot = strchr(s, '.');
			/* "self_attn.q_proj.weight" -> "q_proj.weight" */
			return strncmp(s, "self_attn.", 10) == 0 || strncmp(s, "mlp.", 4) == 0
				       ? dot + 1
				       : s;
		}
	}
	return "other";
}

int rl_role_is_candidate(rl_role r)
{
	for (size_t i = 0; i < NCAND_ROLES; i++)
		if (cand_order[i] == r)
			return 1;
	return 0;
}

int rl_role_is_norm(rl_role r)
{
	return r == RL_R_ATTN_NORM || r == RL_R_MLP_NORM || r == RL_R_Q_NORM || r == RL_R_K_NORM ||
	       r == RL_R_PRE_FF_NORM || r == RL_R_POST_FF_NORM || r == RL_R_FINAL_NORM;
}

int rl_role_tensor_name(int layer, rl_role r, char *buf, size_t cap)
{
	int n = -1;
	if (r == RL_R_EMBED)
		n = snprintf(buf, cap, "model.embed_tokens.weight");
	else if (r == RL_R_FINAL_NORM)
		n = snprintf(buf, cap, "model.norm.weight");
	else if (r == RL_R_LM_HEAD)
		n = snprintf(buf, cap, "lm_head.weight");
	else
		for (size_t i = 0; i < NLAYER_ROLES; i++)
			if (layer_roles[i].role == r)
				n = snprintf(buf, cap, "model.layers.%d.%s", layer,
					     layer_roles[i].suffix);
	if (n < 0 || (size_t)n >= cap)
		return rl_error(RL_USAGE, "no tensor name for role %d", (int)r);
	return RL_OK;
}

int rl_role_present(const rl_config *c, rl_role r)
{
	switch (r) {
	case RL_R_OTHER:
		return 0;
	case RL_R_LM_HEAD:
		return !c->tie_word_embeddings;
	case RL_R_Q_BIAS:
	case RL_R_K_BIAS:
	case RL_R_V_BIAS:
		return c->attention_bias;
	case RL_R_O_BIAS:
		return c->o_bias;
	case RL_R_GATE_BIAS:
	case RL_R_UP_BIAS:
	case RL_R_DOWN_BIAS:
		return c->mlp_bias;
	case RL_R_Q_NORM:
	case RL_R_K_NORM:
		return c->qk_norm != RL_QK_NORM_NONE;
	case RL_R_ATTN_NORM:
		return c->norms != RL_NORMS_POST;
	case RL_R_Q:
	case RL_R_K:
	case RL_R_V:
	case RL_R_GATE:
	case RL_R_UP:
		return !c->fused_proj;
	case RL_R_QKV:
	case RL_R_GATE_UP:
		return c->fused_proj;
	case RL_R_PRE_FF_NORM:
		return c->norms == RL_NORMS_SANDWICH;
	case RL_R_POST_FF_NORM:
		return c->norms != RL_NORMS_PRE;
	default:
		return 1;
	}
}

int rl_role_shape(const rl_config *c, rl_role r, int64_t shape[2])
{
	int64_t h = c->hidden_size, q = (int64_t)c->n_heads * c->head_dim;
	int64_t kv = (int64_t)c->n_kv_heads * c->head_dim, in = c->intermediate_size;
	int64_t v = c->vocab_size;
	switch (r) {
	case RL_R_EMBED:
	case RL_R_LM_HEAD:
		shape[0] = v, shape[1] = h;
		return 2;
	case RL_R_FINAL_NORM:
	case RL_R_ATTN_NORM:
	case RL_R_MLP_NORM:
	case RL_R_PRE_FF_NORM:
	case RL_R_POST_FF_NORM:
	case RL_R_O_BIAS:
	case RL_R_DOWN_BIAS:
		shape[0] = h;
		return 1;
	case RL_R_Q:
		shape[0] = q, shape[1] = h;
		return 2;
	case RL_R_K:
	case RL_R_V:
		shape[0] = kv, shape[1] = h;
		return 2;
	case RL_R_O:
		shape[0] = h, shape[1] = q;
		return 2;
	case RL_R_Q_BIAS:
		shape[0] = q;
		return 1;
	case RL_R_K_BIAS:
	case RL_R_V_BIAS:
		shape[0] = kv;
		return 1;
	case RL_R_GATE:
	case RL_R_UP:
		shape[0] = in, shape[1] = h;
		return 2;
	case RL_R_DOWN:
		shape[0] = h, shape[1] = in;
		return 2;
	case RL_R_GATE_BIAS:
	case RL_R_UP_BIAS:
		shape[0] = in;
		return 1;
	case RL_R_QKV:
		shape[0] = q + 2 * kv, shape[1] = h;
		return 2;
	case RL_R_GATE_UP:
		shape[0] = 2 * in, shape[1] = h;
		return 2;
	case RL_R_Q_NORM:
		shape[0] = c->qk_norm == RL_QK_NORM_FULL ? q : c->head_dim;
		return 1;
	case RL_R_K_NORM:
		shape[0] = c->qk_norm == RL_QK_NORM_FULL ? kv : c->head_dim;
		return 1;
	default:
		return 0;
	}
}

/* Maps a tensor name to (layer, role); layer -1 outside the decoder layers.
 * A name under "model.layers.<i>." with an unknown suffix is RL_R_OTHER of
 * layer i; *layer is -2 when the index is malformed. */
static rl_role name_role(const char *name, int *layer)
{
	*layer = -1;
	if (strcmp(name, "model.embed_tokens.weight") == 0)
		return RL_R_EMBED;
	if (strcmp(name, "model.norm.weight") == 0)
		return RL_R_FINAL_NORM;
	if (strcmp(name, "lm_head.weight") == 0)
		return RL_R_LM_HEAD;
	static const char pre[] = "model.layers.";
	if (strncmp(name, pre, sizeof pre - 1) != 0)
		return RL_R_OTHER;
	const char *p = name + sizeof pre - 1;
	long v = 0;
	const char *d = p;
	while (*p >= '0' && *p <= '9' && v <= 100000000) {
		v = v * 10 + (*p - '0');
		p++;
	}
	if (p == d || *p != '.' || (p - d > 1 && *d == '0') || v > 100000000) {
		*layer = -2;
		return RL_R_OTHER;
	}
	*layer = (int)v;
	p++;
	for (size_t i = 0; i < NLAYER_ROLES; i++)
		if (strcmp(p, layer_roles[i].suffix) == 0)
			return layer_roles[i].role;
	return RL_R_OTHER;
}

static void fmt_shape(int ndim, const int64_t *shape, char *buf, size_t cap)
{
	size_t k = (size_t)snprintf(buf, cap, "[");
	for (int d = 0; d < ndim && k < cap; d++)
		k += (size_t)snprintf(buf + k, cap - k, "%s%" PRId64, d ? ", " : "", shape[d]);
	if (k < cap)
		snprintf(buf + k, cap - k, "]");
}

static int cmp_tensor_name(const void *a, const void *b)
{
	return strcmp(((const rl_tensor *)a)->name, ((const rl_tensor *)b)->name);
}

/* ---- the index ---- */

typedef struct index_entry {
	const char *name;
	int shard;
} index_entry;

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const index_entry *)a)->name, ((const index_entry *)b)->name);
}

static int cmp_pstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *path_join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = rl_malloc(n);
	if (p)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

/* Reads the index: the shard file names (sorted, unique) and the entries
 * (sorted by tensor name). Entries point into *rootp (caller deletes it). */
static int read_index(const char *ipath, cJSON **rootp, char ***shardsp, int *nshardsp,
		      index_entry **entriesp, size_t *nentriesp)
{
	char *text = NULL;
	size_t len = 0;
	int rc = rl_read_file(ipath, &text, &len);
	if (rc)
		return rc;
	cJSON *root = NULL;
	char **shards = NULL;
	index_entry *e = NULL;
	size_t ne = 0;
	int ns = 0;
	char *what = rl_malloc(strlen(ipath) + 3);
	if (!what) {
		rc = RL_ESYS;
		goto fail;
	}
	sprintf(what, "'%s'", ipath);
	rc = rl_json_parse(text, len, what, &root); /* no tensor listed twice, among others */
	free(what);
	if (rc)
		goto fail;
	const cJSON *wm =
		cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "weight_map") : NULL;
	if (!cJSON_IsObject(wm)) {
		rc = rl_error(RL_EDATA, "'%s': no \"weight_map\" object", ipath);
		goto fail;
	}
	size_t n = 0;
	for (const cJSON *c = wm->child; c; c = c->next)
		n++;
	if (n == 0) {
		rc = rl_error(RL_EDATA, "'%s': empty weight_map", ipath);
		goto fail;
	}
	e = rl_malloc_array(n, sizeof *e);
	char **files = rl_malloc_array(n, sizeof *files);
	if (!e || !files) {
		free(files);
		rc = RL_ESYS;
		goto fail;
	}
	for (const cJSON *c = wm->child; c; c = c->next) {
		const char *f = cJSON_IsString(c) ? c->valuestring : NULL;
		if (!f || !f[0] || strchr(f, '/') || strcmp(f, ".") == 0 || strcmp(f, "..") == 0) {
			rc = rl_error(RL_EDATA,
				      "'%s': weight_map entry '%s' must name a file in the model "
				      "directory",
				      ipath, c->string);
			free(files);
			goto fail;
		}
		e[ne].name = c->string;
		e[ne].shard = -1;
		files[ne] = c->valuestring;
		ne++;
	}
	qsort(e, ne, sizeof *e, cmp_entry);
	/* unique shard names */
	char **sorted = rl_malloc_array(n, sizeof *sorted);
	if (!sorted) {
		free(files);
		rc = RL_ESYS;
		goto fail;
	}
	memcpy(sorted, files, n * sizeof *sorted);
	qsort(sorted, n, sizeof *sorted, cmp_pstr);
	shards = rl_malloc_array(n, sizeof *shards);
	if (!shards) {
		free(sorted);
		free(files);
		rc = RL_ESYS;
		goto fail;
	}
	for (size_t i = 0; i < n; i++)
		if (i == 0 || strcmp(sorted[i - 1], sorted[i]) != 0)
			shards[ns++] = sorted[i];
	free(sorted);
	/* each entry's shard number: look its file up again (entries were sorted) */
	for (size_t i = 0; i < ne; i++) {
		const cJSON *c = cJSON_GetObjectItemCaseSensitive(wm, e[i].name);
		const char *key = c->valuestring;
		char **hit = bsearch(&key, shards, (size_t)ns, sizeof *shards, cmp_pstr);
		e[i].shard = (int)(hit - shards);
	}
	free(files);
	free(text);
	*rootp = root;
	*shardsp = shards;
	*nshardsp = ns;
	*entriesp = e;
	*nentriesp = ne;
	return RL_OK;
fail:
	free(text);
	free(e);
	free(shards);
	cJSON_Delete(root);
	return rc;
}

/* ---- open ---- */

static int check_shape(const rl_model *m, const rl_tensor *t)
{
	int64_t want[2];
	int nd = rl_role_shape(&m->cfg, t->role, want);
	int same = nd == t->ndim;
	for (int d = 0; same && d < nd; d++)
		same = want[d] == t->shape[d];
	if (same)
		return RL_OK;
	char got[160], exp[64];
	fmt_shape(t->ndim, t->shape, got, sizeof got);
	fmt_shape(nd, want, exp, sizeof exp);
	return rl_error(RL_EDATA, "'%s': tensor '%s' has shape %s, config.json implies %s", m->dir,
			t->name, got, exp);
}

static int build_roles(rl_model *m)
{
	const rl_config *c = &m->cfg;
	m->by_role = rl_calloc((size_t)c->n_layers * RL_R_COUNT, sizeof *m->by_role);
	if (!m->by_role)
		return RL_ESYS;
	for (size_t i = 0; i < m->ntensors; i++) {
		rl_tensor *t = &m->tensors[i];
		int layer;
		rl_role r = name_role(t->name, &layer);
		if (layer == -2)
			return rl_error(RL_EDATA, "'%s': tensor '%s': malformed layer number",
					m->dir, t->name);
		if (layer >= c->n_layers)
			return rl_error(RL_EDATA,
					"'%s': tensor '%s' belongs to layer %d but config.json has "
					"num_hidden_layers %d",
					m->dir, t->name, layer, c->n_layers);
		t->layer = layer;
		t->role = r;
		if (r == RL_R_OTHER)
			continue;
		if (r == RL_R_LM_HEAD && c->tie_word_embeddings) {
			/* tied: transformers uses the embeddings and ignores this copy */
			t->role = RL_R_OTHER;
			continue;
		}
		if (!rl_role_present(c, r))
			return rl_error(
				RL_EDATA,
				"'%s': tensor '%s' is present but config.json says the model "
				"has no %s (attention_bias/mlp_bias)",
				m->dir, t->name, rl_role_name(r));
		int rc = check_shape(m, t);
		if (rc)
			return rc;
		if (r == RL_R_EMBED)
			m->embed = t;
		else if (r == RL_R_FINAL_NORM)
			m->final_norm = t;
		else if (r == RL_R_LM_HEAD)
			m->lm_head = t;
		else
			m->by_role[(size_t)layer * RL_R_COUNT + r] = t;
	}
	/* everything required is there */
	char name[128];
	if (!m->embed)
		return rl_error(RL_EDATA, "'%s': missing tensor 'model.embed_tokens.weight'",
				m->dir);
	if (!m->final_norm)
		return rl_error(RL_EDATA, "'%s': missing tensor 'model.norm.weight'", m->dir);
	if (c->tie_word_embeddings)
		m->lm_head = m->embed;
	else if (!m->lm_head)
		return rl_error(RL_EDATA,
				"'%s': missing tensor 'lm_head.weight' (config.json has "
				"tie_word_embeddings false)",
				m->dir);
	for (int l = 0; l < c->n_layers; l++) {
		for (size_t i = 0; i < NLAYER_ROLES; i++) {
			rl_role r = layer_roles[i].role;
			if (!rl_role_present(c, r) || m->by_role[(size_t)l * RL_R_COUNT + r])
				continue;
			rl_role_tensor_name(l, r, name, sizeof name);
			return rl_error(RL_EDATA, "'%s': missing tensor '%s'", m->dir, name);
		}
	}
	return RL_OK;
}

/* Writing in place must change this model only (model.h): no weight file
 * with another name, none reached through a link out of the directory. */
static int check_unshared(const rl_model *m)
{
	static const char hint[] = "copy the model (cp -r, which copies the bytes) or give "
				   "--allow-linked to write through the link";
	char dir[PATH_MAX], real_dir[PATH_MAX], real[PATH_MAX];
	snprintf(dir, sizeof dir, "%s", m->dir);
	for (size_t n = strlen(dir); n > 1 && dir[n - 1] == '/'; n--)
		dir[n - 1] = '\0'; /* lstat("link/") would follow the link */
	struct stat st;
	if (lstat(dir, &st) == 0 && S_ISLNK(st.st_mode) && realpath(dir, real))
		return rl_error(
			RL_EDATA,
			"'%s' is a symbolic link to '%s': writing it changes that model; %s",
			m->dir, real, hint);
	if (!realpath(dir, real_dir))
		return rl_error_errno(RL_ESYS, "'%s'", m->dir);
	for (int s = 0; s < m->nshards; s++) {
		const char *p = m->shards[s].path;
		if (lstat(p, &st) == 0 && S_ISLNK(st.st_mode) && realpath(p, real)) {
			char *slash = strrchr(real, '/');
			size_t dl = slash ? (size_t)(slash - real) : 0;
			if (dl != strlen(real_dir) || strncmp(real, real_dir, dl) != 0)
				return rl_error(
					RL_EDATA,
					"'%s' is a symbolic link to '%s', outside the model: "
					"writing it changes that file; %s",
					p, real, hint);
		}
		if (fstat(m->shards[s].fd, &st) != 0)
			return rl_error_errno(RL_ESYS, "'%s'", p);
		if (st.st_nlink > 1)
			return rl_error(
				RL_EDATA,
				"'%s' has %lu names (a hard link): writing it changes every "
				"model that shares it; %s",
				p, (unsigned long)st.st_nlink, hint);
	}
	return RL_OK;
}

int rl_model_open(rl_model *m, const char *dir, int mode)
{
	int rc;
	memset(m, 0, sizeof *m);
	cJSON *iroot = NULL;
	char **files = NULL;
	index_entry *entries = NULL;
	size_t nentries = 0;
	char *spath = NULL, *ipath = NULL;
	m->dir = rl_strdup(dir);
	if (!m->dir)
		return RL_ESYS;
	struct stat st;
	if (stat(dir, &st) != 0) {
		rc = rl_path_error(dir);
		goto fail;
	}
	if (!S_ISDIR(st.st_mode)) {
		rc = rl_error(RL_EDATA, "'%s': not a directory (a model is a directory)", dir);
		goto fail;
	}
	rl_input_dir(dir); /* no output may land in it or its .realign */
	if ((rc = rl_config_load(&m->cfg, dir)))
		goto fail;
	spath = path_join(dir, SINGLE_NAME);
	ipath = path_join(dir, INDEX_NAME);
	if (!spath || !ipath) {
		rc = RL_ESYS;
		goto fail;
	}
	/* transformers too prefers the single file; a broken link to it is an error */
	int single = rl_path_present(spath);
	int nfiles = 1;
	if (!single) {
		if (!rl_path_present(ipath)) {
			rc = rl_error(RL_EDATA, "'%s': no %s or %s", dir, SINGLE_NAME, INDEX_NAME);
			goto fail;
		}
		if ((rc = read_index(ipath, &iroot, &files, &nfiles, &entries, &nentries)))
			goto fail;
	}
	m->shards = rl_calloc((size_t)nfiles, sizeof *m->shards);
	if (!m->shards) {
		rc = RL_ESYS;
		goto fail;
	}
	size_t total = 0;
	for (int s = 0; s < nfiles; s++) {
		m->shards[s].fd = -1;
		char *p = single ? spath : path_join(dir, files[s]);
		if (!p) {
			rc = RL_ESYS;
			goto fail;
		}
		rc = rl_st_open(&m->shards[s], p,
				(mode & RL_MODEL_WRITE) ? RL_ST_WRITE : RL_ST_READ);
		if (p != spath)
			free(p);
		if (rc)
			goto fail;
		m->nshards = s + 1;
		total += m->shards[s].ntensors;
	}
	m->tensors = rl_calloc(total ? total : 1, sizeof *m->tensors);
	if (!m->tensors) {
		rc = RL_ESYS;
		goto fail;
	}
	for (int s = 0; s < m->nshards; s++) {
		const rl_st_file *f = &m->shards[s];
		for (size_t i = 0; i < f->ntensors; i++) {
			const rl_st_tensor *st_t = &f->tensors[i];
			rl_tensor *t = &m->tensors[m->ntensors++];
			t->name = st_t->name;
			t->dtype = st_t->dtype;
			t->ndim = st_t->ndim;
			t->shape = st_t->shape;
			t->numel = st_t->numel;
			t->shard = s;
			t->offset = st_t->offset;
			t->nbytes = st_t->nbytes;
			t->data = f->map + st_t->offset;
			t->layer = -1;
			t->role = RL_R_OTHER;
		}
	}
	qsort(m->tensors, m->ntensors, sizeof *m->tensors, cmp_tensor_name);
	for (size_t i = 1; i < m->ntensors; i++) {
		if (strcmp(m->tensors[i - 1].name, m->tensors[i].name) == 0) {
			rc = rl_error(RL_EDATA, "'%s': tensor '%s' is in two shards, '%s' and '%s'",
				      ipath, m->tensors[i].name,
				      m->shards[m->tensors[i - 1].shard].path,
				      m->shards[m->tensors[i].shard].path);
			goto fail;
		}
	}
	if (!single) {
		/* the index and the shards must agree exactly */
		for (size_t i = 0; i < m->ntensors; i++) {
			const rl_tensor *t = &m->tensors[i];
			index_entry key = {.name = t->name};
			const index_entry *e =
				bsearch(&key, entries, nentries, sizeof *entries, cmp_entry);
			if (!e) {
				rc = rl_error(RL_EDATA,
					      "'%s': tensor '%s' is not in the index '%s'",
					      m->shards[t->shard].path, t->name, ipath);
				goto fail;
			}
			if (e->shard != t->shard) {
				rc = rl_error(
					RL_EDATA,
					"'%s': tensor '%s' is in '%s' but the index puts it in "
					"'%s'",
					ipath, t->name, m->shards[t->shard].path,
					m->shards[e->shard].path);
				goto fail;
			}
		}
		for (size_t i = 0; i < nentries; i++) {
			if (!rl_model_find(m, entries[i].name)) {
				rc = rl_error(RL_EDATA, "'%s': tensor '%s' is missing from '%s'",
					      ipath, entries[i].name,
					      m->shards[entries[i].shard].path);
				goto fail;
			}
		}
	}
	if ((rc = build_roles(m)))
		goto fail;
	if ((mode & RL_MODEL_WRITE) && !(mode & RL_MODEL_LINKED) && (rc = check_unshared(m)))
		goto fail;
	rc = RL_OK;
	goto out;
fail:
	rl_model_close(m);
out:
	free(spath);
	free(ipath);
	free(entries);
	free(files);
	cJSON_Delete(iroot);
	return rc;
}

void rl_model_close(rl_model *m)
{
	for (int s = 0; s < m->nshards; s++)
		rl_st_close(&m->shards[s]);
	free(m->shards);
	free(m->tensors);
	free(m->by_role);
	free(m->dir);
	memset(m, 0, sizeof *m);
}

const rl_tensor *rl_model_find(const rl_model *m, const char *name)
{
	size_t lo = 0, hi = m->ntensors;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(m->tensors[mid].name, name);
		if (c == 0)
			return &m->tensors[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const rl_tensor *rl_model_get(const rl_model *m, int layer, rl_role role)
{
	switch (role) {
	case RL_R_EMBED:
		return m->embed;
	case RL_R_FINAL_NORM:
		return m->final_norm;
	case RL_R_LM_HEAD:
		return m->lm_head;
	default:
		break;
	}
	if (role <= RL_R_LM_HEAD || role >= RL_R_COUNT || layer < 0 || layer >= m->cfg.n_layers ||
	    !m->by_role)
		return NULL;
	return m->by_role[(size_t)layer * RL_R_COUNT + role];
}

size_t rl_model_candidates(const rl_model *m, int L, const rl_tensor **out, size_t cap)
{
	size_t n = 0;
	if (L < 1 || L > m->cfg.n_layers)
		return 0;
	for (int l = 0; l < L; l++) {
		for (size_t i = 0; i < NCAND_ROLES; i++) {
			const rl_tensor *t = rl_model_get(m, l, cand_order[i]);
			if (!t)
				continue;
			if (out && n < cap)
				out[n] = t;
			n++;
		}
	}
	return n;
}

uint64_t rl_model_candidate_numel(const rl_model *m, int L)
{
	uint64_t s = 0;
	if (L < 1 || L > m->cfg.n_layers)
		return 0;
	for (int l = 0; l < L; l++)
		for (size_t i = 0; i < NCAND_ROLES; i++) {
			const rl_tensor *t = rl_model_get(m, l, cand_order[i]);
			if (t)
				s += t->numel;
		}
	return s;
}

uint64_t rl_model_param_count(const rl_model *m)
{
	uint64_t s = 0;
	for (size_t i = 0; i < m->ntensors; i++) {
		const rl_tensor *t = &m->tensors[i];
		if (t->layer >= 0 && t->role != RL_R_OTHER)
			s += t->numel;
	}
	return s;
}

int rl_default_layer_end(int n_layers)
{
	return 2 * n_layers / 3;
}

int rl_model_compatible(const rl_model *a, const rl_model *b)
{
	if (strcmp(a->cfg.architecture, b->cfg.architecture) != 0)
		return rl_error(RL_EDATA, "'%s' is %s but '%s' is %s", a->dir, a->cfg.architecture,
				b->dir, b->cfg.architecture);
	size_t i = 0, j = 0;
	while (i < a->ntensors || j < b->ntensors) {
		int c = i == a->ntensors   ? 1
			: j == b->ntensors ? -1
					   : strcmp(a->tensors[i].name, b->tensors[j].name);
		if (c < 0)
			return rl_error(RL_EDATA, "tensor '%s' is in '%s' but not in '%s'",
					a->tensors[i].name, a->dir, b->dir);
		if (c > 0)
			return rl_error(RL_EDATA, "tensor '%s' is in '%s' but not in '%s'",
					b->tensors[j].name, b->dir, a->dir);
		const rl_tensor *x = &a->tensors[i], *y = &b->tensors[j];
		if (x->dtype != y->dtype)
			return rl_error(RL_EDATA, "tensor '%s' is %s in '%s' but %s in '%s'",
					x->name, rl_dtype_name(x->dtype), a->dir,
					rl_dtype_name(y->dtype), b->dir);
		int same = x->ndim == y->ndim;
		for (int d = 0; same && d < x->ndim; d++)
			same = x->shape[d] == y->shape[d];
		if (!same) {
			char sx[160], sy[160];
			fmt_shape(x->ndim, x->shape, sx, sizeof sx);
			fmt_shape(y->ndim, y->shape, sy, sizeof sy);
			return rl_error(RL_EDATA, "tensor '%s' has shape %s in '%s' but %s in '%s'",
					x->name, sx, a->dir, sy, b->dir);
		}
		i++, j++;
	}
	return RL_OK;
}

static void hash_tensor_header(XXH3_state_t *st, const rl_tensor *t)
{
	XXH3_64bits_update(st, t->name, strlen(t->name) + 1);
	const char *dn = rl_dtype_name(t->dtype);
	XXH3_64bits_update(st, dn, strlen(dn) + 1);
	uint8_t b[8 * (RL_MAX_DIMS + 1)];
	size_t k = 0;
	uint64_t v = (uint64_t)t->ndim;
	for (int d = -1; d < t->ndim; d++) {
		if (d >= 0)
			v = (uint64_t)t->shape[d];
		for (int s = 0; s < 8; s++)
			b[k++] = (uint8_t)(v >> (8 * s));
	}
	XXH3_64bits_update(st, b, k);
}

void rl_model_shape_id(const rl_model *m, char out[17])
{
	XXH3_state_t *st = XXH3_createState();
	uint64_t h = 0;
	if (st) {
		XXH3_64bits_reset(st);
		XXH3_64bits_update(st, m->cfg.architecture, strlen(m->cfg.architecture) + 1);
		for (size_t i = 0; i < m->ntensors; i++)
			hash_tensor_header(st, &m->tensors[i]);
		h = XXH3_64bits_digest(st);
		XXH3_freeState(st);
	}
	snprintf(out, 17, "%016" PRIx64, h);
}

static void hash_tensor(XXH3_state_t *st, const rl_tensor *t)
{
	hash_tensor_header(st, t);
	/* In 64 MiB pieces, read ahead and released after use: the bytes are read
	 * once, in order, and the pages stay in the page cache but leave this
	 * process's resident set (a 14 GB model does not show as 14 GB RSS). */
	const uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE), piece = (uintptr_t)64 << 20;
	const uint8_t *p = t->data, *end = t->data + t->nbytes;
	while (p < end) {
		size_t n = (size_t)(end - p) < piece ? (size_t)(end - p) : piece;
		uintptr_t lo = (uintptr_t)p & ~(pg - 1);
		size_t span = (size_t)((uintptr_t)p + n - lo);
		madvise((void *)lo, span, MADV_SEQUENTIAL);
		XXH3_64bits_update(st, p, n);
		madvise((void *)lo, span, MADV_DONTNEED);
		p += n;
	}
}

void rl_model_content_hash(const rl_model *m, int L, char out[17])
{
	XXH3_state_t *st = XXH3_createState();
	uint64_t h = 0;
	if (st) {
		XXH3_64bits_reset(st);
		if (L == 0) {
			for (size_t i = 0; i < m->ntensors; i++)
				hash_tensor(st, &m->tensors[i]);
		} else {
			for (int l = 0; l < L && l < m->cfg.n_layers; l++)
				for (size_t i = 0; i < NCAND_ROLES; i++) {
					const rl_tensor *t = rl_model_get(m, l, cand_order[i]);
					if (t)
						hash_tensor(st, t);
				}
		}
		h = XXH3_64bits_digest(st);
		XXH3_freeState(st);
	}
	snprintf(out, 17, "%016" PRIx64, h);
}

int rl_tensor_read_f32(const rl_tensor *t, uint64_t start, uint64_t n, float *dst)
{
	if (!rl_dtype_is_compute(t->dtype))
		return rl_error(RL_EDATA,
				"tensor '%s' has dtype %s: realign computes with F32, F16 and BF16 "
				"only",
				t->name, rl_dtype_name(t->dtype));
	if (start > t->numel || n > t->numel - start)
		return rl_error(RL_USAGE,
				"tensor '%s': elements [%" PRIu64 ", %" PRIu64
				") are outside its %" PRIu64,
				t->name, start, start + n, t->numel);
	rl_widen(t->dtype, rl_tensor_elem(t, start), dst, (size_t)n);
	size_t bad = rl_f32_nonfinite(dst, (size_t)n);
	if (bad == n)
		return RL_OK;
	char layer[32] = "";
	if (t->layer >= 0)
		snprintf(layer, sizeof layer, " (layer %d)", t->layer);
	return rl_error(RL_EDATA, "'%s'%s: element %llu is %g (the weights must be finite)",
			t->name, layer, (unsigned long long)(start + bad), (double)dst[bad]);
}

int rl_tensor_check_finite(const rl_tensor *t)
{
	float v[1024];
	if (t->dtype != RL_DT_BF16) {
		int rc = RL_OK;
		for (uint64_t i = 0; i < t->numel && !rc; i += 1024)
			rc = rl_tensor_read_f32(t, i, t->numel - i < 1024 ? t->numel - i : 1024, v);
		return t->numel ? rc : rl_tensor_read_f32(t, 0, 0, v); /* the dtype */
	}
	size_t bad = rl_bf16_nonfinite(t->data, (size_t)t->numel);
	return bad < t->numel ? rl_tensor_read_f32(t, bad, 1, v) : RL_OK;
}

/* ---- writing a model directory ---- */

/* A JSON string (Python's json.dumps spelling for ASCII; UTF-8 kept as is). */
static int put_json_string(FILE *fp, const char *s)
{
	fputc('"', fp);
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c == '"' || *c == '\\')
			fprintf(fp, "\\%c", *c);
		else if (*c == '\n')
			fputs("\\n", fp);
		else if (*c == '\r')
			fputs("\\r", fp);
		else if (*c == '\t')
			fputs("\\t", fp);
		else if (*c == '\b')
			fputs("\\b", fp);
		else if (*c == '\f')
			fputs("\\f", fp);
		else if (*c < 0x20)
			fprintf(fp, "\\u%04x", *c);
		else
			fputc(*c, fp);
	}
	return fputc('"', fp) == EOF ? -1 : 0;
}

typedef struct wentry {
	const char *name;
	int shard;
} wentry;

static int cmp_wentry(const void *a, const void *b)
{
	return strcmp(((const wentry *)a)->name, ((const wentry *)b)->name);
}

static int write_index(const char *dir, const rl_st_wtensor *t, size_t n, const int *shard_of,
		       int nshards, uint64_t total_size, uint64_t total_params)
{
	int rc = RL_OK;
	char *path = path_join(dir, INDEX_NAME ".tmp");
	char *final = path_join(dir, INDEX_NAME);
	wentry *w = rl_malloc_array(n ? n : 1, sizeof *w);
	if (!path || !final || !w) {
		rc = RL_ESYS;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		w[i].name = t[i].name, w[i].shard = shard_of[i];
	qsort(w, n, sizeof *w, cmp_wentry);
	FILE *fp = fopen(path, "wb");
	if (!fp) {
		rc = rl_error_errno(RL_ESYS, "'%s'", path);
		goto out;
	}
	/* json.dumps(index, indent=2, sort_keys=True) + "\n", as transformers writes it */
	fprintf(fp,
		"{\n  \"metadata\": {\n    \"total_parameters\": %" PRIu64
		",\n    \"total_size\": %" PRIu64 "\n  },\n  \"weight_map\": {\n",
		total_params, total_size);
	for (size_t i = 0; i < n; i++) {
		char file[64];
		snprintf(file, sizeof file, "model-%05d-of-%05d.safetensors", w[i].shard + 1,
			 nshards);
		fputs("    ", fp);
		put_json_string(fp, w[i].name);
		fprintf(fp, ": \"%s\"%s\n", file, i + 1 < n ? "," : "");
	}
	fputs("  }\n}\n", fp);
	int bad = fflush(fp) != 0 || ferror(fp) || fsync(fileno(fp)) != 0;
	if (fclose(fp) != 0 || bad) {
		rc = rl_error_errno(RL_ESYS, "'%s': write", path);
		unlink(path);
		goto out;
	}
	if (rename(path, final) != 0) {
		rc = rl_error_errno(RL_ESYS, "'%s': rename", path);
		unlink(path);
	}
out:
	free(path);
	free(final);
	free(w);
	return rc;
}

int rl_model_write(const char *dir, const rl_config *c, const rl_st_wtensor *t, size_t n,
		   uint64_t max_shard_bytes)
{
	return rl_model_write_fill(dir, c, t, n, max_shard_bytes, NULL, NULL);
}

int rl_model_write_fill(const char *dir, const rl_config *c, const rl_st_wtensor *t, size_t n,
			uint64_t max_shard_bytes, rl_st_fill_fn fill, void *ctx)
{
	int rc = rl_output_check_replace(dir, 1);
	if (rc)
		return rc;
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return rl_error_errno(RL_ESYS, "'%s': mkdir", dir);
	char *cpath = path_join(dir, "config.json");
	if (!cpath)
		return RL_ESYS;
	rc = rl_config_write(c, cpath);
	free(cpath);
	if (rc)
		return rc;
	uint64_t total = 0, params = 0;
	uint64_t *sizes = rl_malloc_array(n ? n : 1, sizeof *sizes);
	int *shard_of = rl_malloc_array(n ? n : 1, sizeof *shard_of);
	rl_st_wtensor *buf = NULL;
	if (!sizes || !shard_of) {
		rc = RL_ESYS;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if ((rc = rl_st_wtensor_nbytes(&t[i], &sizes[i])))
			goto out;
		total += sizes[i];
		params += sizes[i] / rl_dtype_size(t[i].dtype);
	}
	if (max_shard_bytes == 0 || total <= max_shard_bytes) {
		char *p = path_join(dir, SINGLE_NAME);
		if (!p) {
			rc = RL_ESYS;
			goto out;
		}
		rc = rl_st_write_fill(p, t, n, NULL, 0, fill, ctx);
		free(p);
		goto out;
	}
	/* huggingface_hub's split_torch_state_dict_into_shards: in the given order,
	 * a tensor larger than the limit gets a shard of its own (appended at
	 * once); otherwise a new shard starts when the current one would
	 * overflow. */
	int nshards = 0, cur = -1;
	uint64_t cur_size = 0;
	for (size_t i = 0; i < n; i++) {
		if (sizes[i] > max_shard_bytes) {
			shard_of[i] = nshards++;
			continue;
		}
		if (cur >= 0 && cur_size + sizes[i] > max_shard_bytes)
			cur = -1;
		if (cur < 0) {
			cur = nshards++;
			cur_size = 0;
		}
		shard_of[i] = cur;
		cur_size += sizes[i];
	}
	buf = rl_malloc_array(n, sizeof *buf);
	if (!buf) {
		rc = RL_ESYS;
		goto out;
	}
	for (int s = 0; s < nshards; s++) {
		size_t k = 0;
		for (size_t i = 0; i < n; i++)
			if (shard_of[i] == s)
				buf[k++] = t[i];
		char name[64];
		snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", s + 1, nshards);
		char *p = path_join(dir, name);
		if (!p) {
			rc = RL_ESYS;
			goto out;
		}
		rc = rl_st_write_fill(p, buf, k, NULL, 0, fill, ctx);
		free(p);
		if (rc)
			goto out;
	}
	if ((rc = write_index(dir, t, n, shard_of, nshards, total, params)))
		goto out;
	/* a stale single file would shadow the index (it is preferred on open) */
	char *sp = path_join(dir, SINGLE_NAME);
	if (!sp) {
		rc = RL_ESYS;
		goto out;
	}
	if (unlink(sp) != 0 && errno != ENOENT)
		rc = rl_error_errno(RL_ESYS, "'%s': unlink", sp);
	free(sp);
out:
	free(sizes);
	free(shard_of);
	free(buf);
	return rc;
}

void rl_tensor_drop_pages(const rl_tensor *t, uint64_t first, uint64_t count)
{
	static uintptr_t pg;
	if (!pg)
		pg = (uintptr_t)sysconf(_SC_PAGESIZE);
	size_t es = rl_dtype_size(t->dtype);
	uintptr_t p = (uintptr_t)rl_tensor_elem(t, first), n = (uintptr_t)(count * es);
	uintptr_t a = (p + pg - 1) & ~(pg - 1), b = (p + n) & ~(pg - 1);
	if (b > a)
		madvise((void *)a, b - a, MADV_DONTNEED);
}
