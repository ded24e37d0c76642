/* rl-apply — copy the selected elements from SOURCE into MODEL, in place,
 * crash-safe; write the undo journal.
 *
 * Reads a select stream (file or stdin), checks it was made for MODEL's
 * current state and against SOURCE, journals the old and new bytes of every
 * element in MODEL/.realign/journal (synced), copies the journal to stdout (or
 * -j FILE), then writes the new bytes with pwrite and commits. See the
 * invariants in lib/journal.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cli.h"
#include "core/inputs.h"
#include "core/options.h"
#include "core/summary.h"
#include "core/util.h"
#include "method/restore.h"
#include "store/txn_summary.h"

struct opts {
	const char *model, *source, *journal, *sel, *summary;
	int dry, linked;
};

static void parse_args(struct opts *o, int argc, char **argv)
{
	memset(o, 0, sizeof *o);
	const rl_opt table[] = {
		RL_OPT_MODEL(&o->model, "the model to change (in place)"),
		RL_OPT_STRING('s', "source", "DIR", &o->source,
			      "the model the values come from (the selection's target)"),
		RL_OPT_STRING('j', "journal", "FILE", &o->journal,
			      "write the journal to FILE instead of stdout"),
		RL_OPT_FLAG('n', "dry-run", &o->dry,
			    "report what would change; touch nothing, write no journal"),
		RL_OPT_FLAG(0, "allow-linked", &o->linked,
			    "write weight files shared with another model (links)"),
		RL_OPT_SUMMARY(&o->summary),
		RL_OPT_QUIET("no summary on stderr"),
		RL_OPTS_END,
	};
	const rl_cmd cmd = {
		"rl-apply -m MODEL -s SOURCE [-j FILE] [--dry-run] [--allow-linked] [SEL.rls|-] > "
		"STEP.rlj",
		"Copy the selected elements' stored bytes from SOURCE into MODEL in place,\n"
		"journaled and crash-safe; write the undo journal (a journal stream).",
		table,
		NULL,
	};
	int i = rl_opts_parse(&cmd, argc, argv);
	if (!o->model || !o->source)
		rl_usage("-m MODEL and -s SOURCE are required");
	if (i + 1 < argc)
		rl_usage("too many arguments");
	o->sel = i < argc ? argv[i] : "-";
}

/* The summary as JSON: what a dry run would change, or the transaction's
 * statistics. */
static int write_summary(const char *path, int dry, const rl_txn_stats *st,
			 const rl_apply_report *rep, double seconds)
{
	cJSON *j = rl_summary_new("rl-apply");
	int ok = j && cJSON_AddBoolToObject(j, "dry_run", dry);
	if (ok && dry)
		ok = cJSON_AddNumberToObject(j, "elements", (double)rep->elements) &&
		     cJSON_AddNumberToObject(j, "tensors", (double)rep->tensors) &&
		     cJSON_AddNumberToObject(j, "model_bytes", (double)rep->bytes);
	else if (ok)
		ok = rl_txn_summary(j, st) == RL_OK;
	if (!ok) {
		cJSON_Delete(j);
		return rl_error(RL_ESYS, "'%s': out of memory", path);
	}
	return rl_summary_write(j, path, seconds);
}

int main(int argc, char **argv)
{
	struct opts o;
	rl_cli_init("rl-apply", argc, argv);
	parse_args(&o, argc, argv);
	if (!o.dry && !o.journal)
		rl_require_stdout_not_tty();
	rl_model m, src;
	int rc = rl_model_open(&m, o.model,
			       o.dry ? RL_MODEL_READ
				     : RL_MODEL_WRITE | (o.linked ? RL_MODEL_LINKED : 0));
	if (rc)
		rl_die_err(rc);
	if ((rc = rl_model_open(&src, o.source, RL_MODEL_READ)))
		rl_die_err(rc);
	if (!o.dry && (rc = rl_output_check(o.journal ? o.journal : "-")))
		rl_die_err(rc); /* now, not after the journal is built */
	rl_txn_stats st;
	rl_apply_report rep;
	double t0 = rl_now();
	rc = rl_apply_select_stream(&m, &src, o.sel, o.journal ? o.journal : "-", o.dry, "rl-apply",
				    &st, &rep);
	if (rc)
		rl_die_err(rc);
	double t = rl_now() - t0;
	if (o.dry)
		rl_info("dry run: would change %llu elements in %llu tensors (%llu bytes)",
			(unsigned long long)rep.elements, (unsigned long long)rep.tensors,
			(unsigned long long)rep.bytes);
	else
		rl_info("changed %llu elements in %llu tensors (%llu model bytes, written as %llu "
			"bytes in %llu writes; journal %llu bytes), state %s -> %s, %.2f s",
			(unsigned long long)st.elements, (unsigned long long)st.tensors,
			(unsigned long long)st.model_bytes, (unsigned long long)st.write_bytes,
			(unsigned long long)st.model_writes, (unsigned long long)st.journal_bytes,
			st.before, st.after, t);
	if (o.summary && (rc = write_summary(o.summary, o.dry, &st, &rep, t)))
		rl_die_err(rc);
	rl_model_close(&m);
	rl_model_close(&src);
	return rl_cli_exit();
}
