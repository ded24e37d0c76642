/* rl-rollback — undo journals exactly, recover an interrupted write, or give
 * back part of a step (the paper's partial rollback).
 *
 *   rl-rollback -m MODEL                      recover a hot journal, if any
 *   rl-rollback -m MODEL J1.rlj J2.rlj ...    undo J2 then J1 (bit-exact)
 *   rl-rollback -m MODEL -f FINETUNED --grad BENIGN.rls --fraction 0.2 STEP.rlj
 *       = rl-select -m MODEL -t FINETUNED --within STEP.rlj --fraction 0.2 BENIGN.rls
 *         | rl-apply -m MODEL -s FINETUNED  (the same library calls, in one process)
 * Each writes the journal of what it did (stdout or -j FILE).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cli.h"
#include "core/inputs.h"
#include "core/options.h"
#include "core/summary.h"
#include "core/util.h"
#include "method/filter.h"
#include "method/restore.h"
#include "method/selection.h"
#include "store/txn_summary.h"

struct opts {
	const char *model, *finetuned, *grad, *journal, *summary;
	double fraction;
	long long count;
	int force, linked;
};

/* Returns the index of the first journal in argv. */
static int parse_args(struct opts *o, int argc, char **argv)
{
	memset(o, 0, sizeof *o);
	o->fraction = -1;
	o->count = -1;
	const rl_opt table[] = {
		RL_OPT_MODEL(&o->model, "the model to change (in place)"),
		RL_OPT_STRING('f', "finetuned", "DIR", &o->finetuned,
			      "partial rollback: the model values come back from"),
		RL_OPT_STRING(0, "grad", "FILE", &o->grad,
			      "partial rollback: the benign gradient stream"),
		RL_OPT_DOUBLE(0, "fraction", "F", &o->fraction, 0, 1,
			      "partial rollback: restore ceil(F * eligible) elements"),
		RL_OPT_LLONG(0, "count", "K", &o->count, 0, (long long)1 << 53,
			     "partial rollback: restore K elements"),
		RL_OPT_FLAG(
			0, "force", &o->force,
			"undo even if the journals do not chain from the model's recorded state "
			"(the bytes are still verified)"),
		RL_OPT_FLAG(0, "allow-linked", &o->linked,
			    "write weight files shared with another model (links)"),
		RL_OPT_STRING('j', "journal", "FILE", &o->journal,
			      "write the journal to FILE instead of stdout"),
		RL_OPT_SUMMARY(&o->summary),
		RL_OPT_QUIET("no summary on stderr"),
		RL_OPTS_END,
	};
	const rl_cmd cmd = {
		"rl-rollback -m MODEL [--force] [--allow-linked] [-j FILE] [JOURNAL.rlj...] > "
		"UNDO.rlj\n"
		"rl-rollback -m MODEL -f FINETUNED --grad BENIGN.rls (--fraction F | --count K)\n"
		"            STEP.rlj > RB.rlj",
		"Undo journals in reverse order, bit-exact, after recovering any interrupted "
		"write;\n"
		"or give back the part of STEP.rlj the benign gradient favours (partial rollback).",
		table,
		NULL,
	};
	int i = rl_opts_parse(&cmd, argc, argv);
	if (!o->model)
		rl_usage("-m MODEL is required");
	int partial = o->finetuned || o->grad || o->fraction >= 0 || o->count >= 0;
	if (partial) {
		if (!o->finetuned || !o->grad)
			rl_usage("a partial rollback needs -f FINETUNED and --grad BENIGN.rls");
		if ((o->fraction >= 0) == (o->count >= 0))
			rl_usage("a partial rollback needs one of --fraction and --count");
		if (argc - i != 1)
			rl_usage("a partial rollback takes exactly one journal (the step)");
	}
	return i;
}

static int partial(const struct opts *o, rl_model *m, const char *step, rl_txn_stats *st,
		   uint64_t counts[3])
{
	rl_model ft;
	int rc = rl_model_open(&ft, o->finetuned, RL_MODEL_READ);
	if (rc)
		return rc;
	rl_sel_params p = {.score = RL_SCORE_GRAD};
	if (o->fraction >= 0) {
		p.budget = RL_BUDGET_FRACTION;
		p.fraction = o->fraction;
	} else {
		p.budget = RL_BUDGET_COUNT;
		p.count = (uint64_t)o->count;
	}
	rl_selection sel;
	rl_filter f;
	if ((rc = rl_filter_init(&f, 0, -1, NULL, NULL))) {
		rl_model_close(&ft);
		return rc;
	}
	/* the within list bounds the buffer: read it once to size it */
	p.cap = UINT64_MAX / 4;
	rc = rl_selection_init(&sel, m, &ft, &p);
	if (!rc)
		rc = rl_selection_within(&sel, step);
	if (!rc) {
		p.cap = rl_selector_within_total(&sel.s);
		rl_selection_free(&sel);
		rc = rl_selection_init(&sel, m, &ft, &p);
		if (!rc)
			rc = rl_selection_within(&sel, step);
	}
	if (!rc)
		rc = rl_select_grad(&sel, o->grad, &f);
	rl_txn *tx = NULL;
	if (!rc) {
		rl_txn_opts to = {.op = "partial-rollback",
				  .tool = "rl-rollback",
				  .source = &ft,
				  .expect_state = sel.cur_state,
				  .recover = 0};
		rc = rl_txn_begin(&tx, m, &to);
	}
	if (!rc)
		rc = rl_apply_selector(tx, &sel, &ft);
	if (!rc) {
		rl_info("partial rollback: %llu of %llu eligible elements (of %llu in '%s')",
			(unsigned long long)sel.s.k, (unsigned long long)sel.s.eligible,
			(unsigned long long)sel.s.fed, step);
		counts[0] = sel.s.k;
		counts[1] = sel.s.eligible;
		counts[2] = sel.s.fed;
		rc = rl_txn_commit(tx, o->journal ? o->journal : "-", st);
	} else {
		rl_txn_abort(tx);
	}
	rl_selection_free(&sel);
	rl_filter_free(&f);
	rl_model_close(&ft);
	return rc;
}

/* The summary as JSON (rl-rollback(1) lists the keys). */
static int write_summary(const char *path, const char *mode, int recovered, const rl_txn_stats *st,
			 const uint64_t *counts, double seconds)
{
	static const char *const what[] = {"nothing", "rolled-back", "torn-journal-removed"};
	cJSON *j = rl_summary_new("rl-rollback");
	int ok = j && cJSON_AddStringToObject(j, "mode", mode) &&
		 cJSON_AddStringToObject(j, "recovered", what[recovered]);
	if (ok && strcmp(mode, "recover") != 0)
		ok = rl_txn_summary(j, st) == RL_OK;
	if (ok && counts)
		ok = cJSON_AddNumberToObject(j, "selected", (double)counts[0]) &&
		     cJSON_AddNumberToObject(j, "eligible", (double)counts[1]) &&
		     cJSON_AddNumberToObject(j, "considered", (double)counts[2]);
	if (!ok) {
		cJSON_Delete(j);
		return rl_error(RL_ESYS, "'%s': out of memory", path);
	}
	return rl_summary_write(j, path, seconds);
}

int main(int argc, char **argv)
{
	struct opts o;
	rl_cli_init("rl-rollback", argc, argv);
	int first = parse_args(&o, argc, argv);
	int njournals = argc - first;
	if (njournals > 0 && !o.journal)
		rl_require_stdout_not_tty();
	rl_model m;
	int rc = rl_model_open(&m, o.model, RL_MODEL_WRITE | (o.linked ? RL_MODEL_LINKED : 0));
	if (rc || (njournals > 0 && (rc = rl_output_check(o.journal ? o.journal : "-"))))
		rl_die_err(rc);
	rl_txn_stats st;
	memset(&st, 0, sizeof st);
	uint64_t counts[3] = {0};
	int what = 0;
	double t0 = rl_now();
	const char *mode = njournals == 0 ? "recover" : o.finetuned ? "partial" : "undo";
	if (njournals == 0) {
		if ((rc = rl_txn_recover(&m, &what)))
			rl_die_err(rc);
		rl_info("%s", what == 1	  ? "rolled back an interrupted write"
			      : what == 2 ? "removed a torn journal (the model was never touched)"
					  : "nothing to recover");
	} else if (o.finetuned) {
		/* recover first, as an exact rollback would */
		if ((rc = rl_txn_recover(&m, &what)))
			rl_die_err(rc);
		if (what == 1)
			rl_info("rolled back an interrupted write first");
		rc = partial(&o, &m, argv[first], &st, counts);
	} else {
		rc = rl_rollback_journals(&m, (const char *const *)argv + first, njournals, o.force,
					  o.journal ? o.journal : "-", "rl-rollback", &st);
		if (!rc && st.recovered == 1)
			rl_info("rolled back an interrupted write first");
		what = st.recovered == 1;
	}
	if (rc)
		rl_die_err(rc);
	double t = rl_now() - t0;
	if (njournals > 0)
		rl_info("changed %llu elements in %llu tensors (%llu model bytes, written as %llu "
			"bytes in %llu writes), state %s -> %s, %.2f s",
			(unsigned long long)st.elements, (unsigned long long)st.tensors,
			(unsigned long long)st.model_bytes, (unsigned long long)st.write_bytes,
			(unsigned long long)st.model_writes, st.before, st.after, t);
	if (o.summary &&
	    (rc = write_summary(o.summary, mode, what, &st, o.finetuned ? counts : NULL, t)))
		rl_die_err(rc);
	rl_model_close(&m);
	return rl_cli_exit();
}
