/* test_restore.c — the restore step's library pieces on the fixture models,
 * and (with arguments) small helpers for the CLI tests of t3xxx:
 *
 *   test_restore                       unit tests (run by make check)
 *   test_restore grad MODEL G.safetensors OUT.rls [CHUNK_BYTES]
 *                                      writes a grad stream for MODEL whose
 *                                      tensors are G's (PyTorch's gradient)
 *   test_restore list FILE.rls         "name index" of every element of a
 *                                      select or journal stream, in order
 *
 * The unit tests: state ids (stable, changed by a commit, restored by an exact
 * undo), a transaction's journal read back, verification refusing a stale
 * expectation, abort leaving nothing behind, and the lock refusing a second
 * writer while the first holds it; span writes (span.h) against a brute-force
 * byte-by-byte patch of the whole file, undone bit-exactly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "core/error.h"
#include "core/lockfile.h"
#include "method/restore.h"
#include "store/journal.h"
#include "store/model.h"
#include "store/model_state.h"
#include "store/realign_dir.h"
#include "store/stream.h"
#include "store/stream_model.h"

static int cmd_grad(const char *dir, const char *gpath, const char *out, size_t chunk)
{
	rl_model m;
	rl_st_file g;
	int rc = rl_model_open(&m, dir, RL_MODEL_READ);
	if (rc || (rc = rl_st_open(&g, gpath, RL_ST_READ))) {
		fprintf(stderr, "%s\n", rl_errmsg());
		return rc;
	}
	rl_sw *w;
	if ((rc = rl_sw_open(&w, out, "grad", "test_restore")))
		return rc;
	if (chunk)
		rl_sw_set_chunk_bytes(w, chunk);
	msgpack_packer *pk = rl_sw_packer(w);
	rl_sw_header_begin(w, 2);
	rl_pack_str(pk, "model");
	rl_pack_model_id(pk, &m, NULL);
	rl_pack_kv_int(pk, "layer_end", 2);
	rl_sw_record_begin(w, "batch", 1);
	rl_pack_kv_f64(pk, "loss", 0.0);
	for (size_t i = 0; i < g.ntensors && !rc; i++) {
		const rl_st_tensor *t = &g.tensors[i];
		rc = rl_sw_tensor(w, t->name, t->dtype, t->ndim, t->shape, g.map + t->offset,
				  t->numel);
	}
	if (!rc)
		rc = rl_sw_close(w);
	else
		rl_sw_abort(w);
	if (rc)
		fprintf(stderr, "%s\n", rl_errmsg());
	rl_st_close(&g);
	rl_model_close(&m);
	return rc;
}

static int cmd_list(const char *path)
{
	rl_sr *r;
	const msgpack_object *rec;
	int rc = rl_sr_open(&r, path, NULL);
	if (rc) {
		fprintf(stderr, "%s\n", rl_errmsg());
		return rc;
	}
	while ((rc = rl_sr_next(r, &rec)) == 0 && rec) {
		if (!rl_rec_is(rec, "sel") && !rl_rec_is(rec, "patch"))
			continue;
		char name[RL_MAX_NAME + 1];
		const void *idx;
		size_t len;
		if ((rc = rl_obj_strcpy(rl_obj_get(rec, "name"), name, sizeof name)) ||
		    (rc = rl_obj_bin(rec, "idx", path, &idx, &len)))
			break;
		for (size_t i = 0; i < len / 8; i++)
			printf("%s %llu\n", name, (unsigned long long)rl_le64(idx, i));
	}
	if (rc)
		fprintf(stderr, "%s\n", rl_errmsg());
	rl_sr_close(r);
	return rc;
}

/* ---- unit tests on a scratch copy of the fixture model ---- */

static char scratch[256];

static void copy_model(const char *from, const char *to) /* paths < 2 KiB */
{
	char cmd[20000];
	snprintf(cmd, sizeof cmd,
		 "rm -rf '%s' && mkdir -p '%s' && cp '%s/config.json' '%s/model.safetensors' '%s/'",
		 to, to, from, from, to);
	REQUIRE(system(cmd) == 0);
}

static void test_txn(void)
{
	char src[4096];
	snprintf(src, sizeof src, "%s", check_fixture("restore/finetuned"));
	copy_model(src, scratch);
	rl_model m;
	REQUIRE(rl_model_open(&m, scratch, RL_MODEL_WRITE) == 0);
	char s0[RL_STATE_HEX + 1], s0b[RL_STATE_HEX + 1], s1[RL_STATE_HEX + 1];
	REQUIRE(rl_model_state(&m, s0) == 0);
	REQUIRE(rl_model_state(&m, s0b) == 0);
	CHECK_STR(s0, s0b);
	CHECK(!rl_journal_hot(scratch));

	const rl_tensor *t = rl_model_find(&m, "model.layers.0.mlp.up_proj.weight");
	REQUIRE(t && t->dtype == RL_DT_BF16);
	uint64_t idx[3] = {1, 2, 700};
	uint8_t nb[6] = {0x80, 0x3f, 0x00, 0x40, 0x40, 0x40}; /* 1.0, 2.0, 3.0 */
	uint8_t old[6];
	for (int i = 0; i < 3; i++)
		memcpy(old + 2 * i, rl_tensor_elem(t, idx[i]), 2);

	/* a stale expectation is refused and leaves nothing behind */
	rl_txn *tx;
	rl_txn_opts o = {.op = "apply", .tool = "test", .expect_state = s0};
	REQUIRE(rl_txn_begin(&tx, &m, &o) == 0);
	CHECK(rl_journal_hot(scratch));
	uint8_t wrong[6];
	memcpy(wrong, old, 6);
	wrong[0] ^= 1;
	CHECK_EQ_INT(rl_txn_patch(tx, t, idx, 3, nb, wrong), RL_EDATA);
	rl_txn_abort(tx);
	CHECK(!rl_journal_hot(scratch));

	/* a second writer is refused while the first holds the lock */
	REQUIRE(rl_txn_begin(&tx, &m, &o) == 0);
	rl_lock l2;
	CHECK_EQ_INT(rl_lock_acquire(&l2, scratch), RL_NO);
	CHECK(strstr(rl_errmsg(), "another process") != NULL);
	/* the wrong state is refused */
	rl_txn *tx2;
	rl_txn_opts o2 = o;
	o2.expect_state = "00000000000000000000000000000000";
	CHECK(rl_txn_begin(&tx2, &m, &o2) == RL_NO);

	REQUIRE(rl_txn_patch(tx, t, idx, 3, nb, old) == 0);
	rl_txn_stats st;
	char jpath[300];
	snprintf(jpath, sizeof jpath, "%s.rlj", scratch);
	REQUIRE(rl_txn_commit(tx, jpath, &st) == 0);
	CHECK_EQ_INT(st.elements, 3);
	CHECK_EQ_INT(st.model_bytes, 6);
	/* elements 1, 2 and 700 lie within two adjacent pages: one write of the
	 * bytes from element 1 to the end of element 700 */
	CHECK_EQ_INT(st.model_writes, 1);
	CHECK_EQ_INT(st.write_bytes, 700 * 2);
	CHECK(memcmp(rl_tensor_elem(t, 700), nb + 4, 2) == 0);
	REQUIRE(rl_model_state(&m, s1) == 0);
	CHECK(strcmp(s1, s0) != 0);
	CHECK_STR(s1, st.after);

	/* the journal reads back as written */
	rl_jr j;
	rl_jpatch p;
	REQUIRE(rl_jr_open(&j, jpath) == 0);
	CHECK_STR(j.before, s0);
	REQUIRE(rl_jr_next(&j, &p) == 0);
	CHECK_STR(p.name, t->name);
	CHECK_EQ_INT(p.n, 3);
	CHECK(memcmp(p.oldb, old, 6) == 0 && memcmp(p.newb, nb, 6) == 0);
	CHECK_EQ_INT(rl_le64(p.idx, 2), 700);
	REQUIRE(rl_jr_next(&j, &p) == 0);
	CHECK(p.name[0] == 0);
	CHECK_STR(j.after, s1);
	rl_jr_close(&j);

	/* the exact undo returns bytes and state */
	const char *paths[1] = {jpath};
	REQUIRE(rl_rollback_journals(&m, paths, 1, 0, NULL, "test", &st) == 0);
	CHECK(memcmp(rl_tensor_elem(t, 700), old + 4, 2) == 0);
	REQUIRE(rl_model_state(&m, s1) == 0);
	CHECK_STR(s1, s0);
	/* undoing it again is refused: the bytes are no longer the journal's */
	CHECK_EQ_INT(rl_rollback_journals(&m, paths, 1, 1, NULL, "test", &st), RL_EDATA);
	rl_model_close(&m);
	unlink(jpath);
}

static uint8_t *read_file(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	REQUIRE(f != NULL);
	REQUIRE(fseek(f, 0, SEEK_END) == 0);
	long len = ftell(f);
	REQUIRE(len > 0);
	rewind(f);
	uint8_t *b = malloc((size_t)len);
	REQUIRE(b && fread(b, 1, (size_t)len, f) == (size_t)len);
	fclose(f);
	*n = (size_t)len;
	return b;
}

/* A transaction over every candidate tensor with element sets from sparse to
 * dense (clusters of adjacent elements, lone elements pages apart, a tensor
 * patched by two calls whose records share a page): the file afterwards must
 * equal the original with each element's bytes replaced one by one, every
 * other byte unchanged; the exact undo must give back the original file. */
static void test_spans(void)
{
	char src[4096], file[600];
	snprintf(src, sizeof src, "%s", check_fixture("restore/finetuned"));
	copy_model(src, scratch);
	snprintf(file, sizeof file, "%s/model.safetensors", scratch);
	size_t len, len2;
	uint8_t *orig = read_file(file, &len), *want = malloc(len);
	REQUIRE(want != NULL);
	memcpy(want, orig, len);
	rl_model m;
	REQUIRE(rl_model_open(&m, scratch, RL_MODEL_WRITE) == 0);
	rl_txn *tx;
	rl_txn_opts o = {.op = "apply", .tool = "test"};
	REQUIRE(rl_txn_begin(&tx, &m, &o) == 0);
	uint64_t *idx = malloc(8192 * sizeof *idx), elements = 0, runs = 0, seed = 12345;
	uint8_t *nb = malloc(8192 * 8);
	REQUIRE(idx && nb);
	int shape = 0;
	for (size_t ti = 0; ti < m.ntensors; ti++) {
		const rl_tensor *t = &m.tensors[ti];
		if (!rl_role_is_candidate(t->role))
			continue;
		size_t es = rl_dtype_size(t->dtype);
		uint64_t n = 0;
		for (uint64_t i = 0; i < t->numel && n < 8192; i++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			uint64_t r = seed >> 33;
			int take = shape % 4 == 0   ? r % 3 == 0		   /* dense */
				   : shape % 4 == 1 ? r % 700 == 0		   /* sparse */
				   : shape % 4 == 2 ? (i / 64) % 9 == 0 && r % 2   /* clusters */
						    : i == 3 || i + 1 == t->numel; /* far apart */
			if (take)
				idx[n++] = i;
		}
		shape++;
		for (uint64_t i = 0; i < n * es; i++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			nb[i] = (uint8_t)(seed >> 40);
		}
		for (uint64_t i = 0; i < n; i++) {
			memcpy(want + t->offset + idx[i] * es, nb + i * es, es);
			runs += i == 0 || idx[i] != idx[i - 1] + 1;
		}
		/* two calls (two journal records) split in the middle of the set */
		uint64_t h = n / 2;
		REQUIRE(rl_txn_patch(tx, t, idx, h, nb, NULL) == 0);
		REQUIRE(rl_txn_patch(tx, t, idx + h, n - h, nb + h * es, NULL) == 0);
		elements += n;
	}
	rl_txn_stats st;
	char jpath[300];
	snprintf(jpath, sizeof jpath, "%s.spans.rlj", scratch);
	REQUIRE(rl_txn_commit(tx, jpath, &st) == 0);
	CHECK_EQ_INT(st.elements, elements);
	CHECK_EQ_INT(st.model_bytes, elements * 2);
	CHECK(st.write_bytes >= st.model_bytes);
	CHECK(st.model_writes > 0 && st.model_writes <= runs);
	uint8_t *got = read_file(file, &len2);
	CHECK(len2 == len && memcmp(got, want, len) == 0);
	free(got);
	const char *paths[1] = {jpath};
	REQUIRE(rl_rollback_journals(&m, paths, 1, 0, NULL, "test", &st) == 0);
	got = read_file(file, &len2);
	CHECK(len2 == len && memcmp(got, orig, len) == 0);
	free(got);
	rl_model_close(&m);
	unlink(jpath);
	free(idx);
	free(nb);
	free(orig);
	free(want);
}

int main(int argc, char **argv)
{
	if (argc >= 5 && strcmp(argv[1], "grad") == 0)
		return cmd_grad(argv[2], argv[3], argv[4],
				argc > 5 ? (size_t)strtoull(argv[5], NULL, 10) : 0);
	if (argc == 3 && strcmp(argv[1], "list") == 0)
		return cmd_list(argv[2]);
	const char *tmp = getenv("TMPDIR");
	snprintf(scratch, sizeof scratch, "%s/rl-test-restore.%ld", tmp ? tmp : "/tmp",
		 (long)getpid());
	test_txn();
	test_spans();
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch);
	if (system(cmd) != 0)
		return 1;
	return check_done("test_restore");
}
