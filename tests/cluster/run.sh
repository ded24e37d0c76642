#!/bin/sh
# tests/cluster/run.sh — the cluster recipes on real engines, started by the
# test itself on this machine (as root): a single-node Slurm (munged,
# slurmctld, slurmd, on ports of their own, state under a scratch folder) runs
# examples/cluster/shard.sbatch as job arrays, and GNU parallel runs shards
# over ssh (an sshd of its own on 127.0.0.1). Each sharded gradient must be
# the bytes of one process, each sharded evaluation the records of one
# batch-invariant process. Opt-in (`make cluster-check`): it starts system
# daemons, which `make check` must not do on a developer's machine; it takes
# about a minute. Needs: slurm-wlm, munge, openssh-server, parallel
# (`make cluster-deps`).
#
# Environment: RL_BIN, RL_TESTS, RL_FIXTURES (set by the Makefile).
. "$RL_TESTS/lib.sh"
[ "$(id -u)" -eq 0 ] || fail "run it as root (it starts munged, slurmctld, slurmd, sshd)"
for c in munged munge slurmctld slurmd sbatch sinfo parallel ssh ssh-keygen; do
	command -v $c >/dev/null || fail "$c is not installed (make cluster-deps)"
done
[ -x /usr/sbin/sshd ] || fail "sshd is not installed (make cluster-deps)"
[ -c /dev/null ] || fail "/dev/null is not a character device"
root=$(cd "$RL_TESTS/.." && pwd)
D="$T/cluster"
mkdir -p "$D/state" "$D/spool" "$D/munge" "$D/work"
chown munge:munge "$D/munge" 2>/dev/null || chown munge "$D/munge"
chmod 755 "$T" "$D"
base=$((20000 + $$ % 20000))
host=$(hostname)
stop_all() {
	set +e # every daemon, whichever is already gone
	[ -f "$D/slurmd.pid" ] && kill "$(cat "$D/slurmd.pid")" 2>/dev/null
	[ -f "$D/slurmctld.pid" ] && kill "$(cat "$D/slurmctld.pid")" 2>/dev/null
	[ -f "$D/sshd.pid" ] && kill "$(cat "$D/sshd.pid")" 2>/dev/null
	[ -f "$D/munge/munged.pid" ] && kill "$(cat "$D/munge/munged.pid")" 2>/dev/null
	sleep 1
	rm -rf "$T"
}
trap stop_all EXIT INT TERM

# --- munge, slurmctld, slurmd ---
runuser -u munge -- /usr/sbin/munged --socket="$D/munge/socket" \
	--pid-file="$D/munge/munged.pid" --log-file="$D/munge/munged.log" \
	--seed-file="$D/munge/seed" || fail "munged did not start: $(tail -n 3 "$D/munge/munged.log")"
cat >"$D/slurm.conf" <<EOF
ClusterName=rltest
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$D/munge/socket
SlurmctldPort=$base
SlurmdPort=$((base + 1))
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/slurmctld.log
SlurmdLogFile=$D/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
SchedulerType=sched/builtin
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName=$host CPUs=$(nproc) State=UNKNOWN
PartitionName=rl Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
SLURM_CONF="$D/slurm.conf"
export SLURM_CONF
slurmctld -c -f "$SLURM_CONF" || fail "slurmctld did not start: $(tail -n 3 "$D/slurmctld.log")"
slurmd -f "$SLURM_CONF" || fail "slurmd did not start: $(tail -n 3 "$D/slurmd.log")"
i=0
until sinfo -h -o %T 2>/dev/null | grep -q idle; do
	i=$((i + 1))
	[ $i -lt 60 ] || fail "the Slurm node never came up: $(tail -n 3 "$D/slurmd.log")"
	sleep 1
done
ok "a single-node Slurm is up ($host, ports $base-$((base + 1)))"

# --- the work: the toy models, a direction ---
cd "$D/work"
cp -r "$F/toy/finetuned" work
cp "$F/toy/world/recovery.jsonl" harmful.jsonl
cp "$F/toy/world/eval-harmful.jsonl" eval.jsonl
must_pass rl-direction -q -j 1 -m work -p harmful.jsonl -L 2 -o dh.rls
must_pass rl-grad -q -j 1 -m work -p harmful.jsonl -d dh.rls -b 8 -o one.rls
must_pass rl-eval -q -t 1 -m work -p eval.jsonl --max-new-tokens 12 --full-responses \
	--batch-invariant -O one-eval.rls
records() { rl-dump "$1" | jq -c 'del(.gen_seconds, .tokens_per_s, .checksum)'; }
records one-eval.rls >one-eval.txt

# --- Slurm job arrays: the README's and shard.sbatch's recipe ---
sb="$root/examples/cluster/shard.sbatch"
must_pass sbatch --wait -o "$D/job-%A_%a.out" --array=1-4 "$sb" 4 \
	rl-grad -q -j 1 -m work -p harmful.jsonl -d dh.rls -b 8 -o g.{}.rls
must_pass rl-sum -o g.rls g.1.rls g.2.rls g.3.rls g.4.rls
cmp one.rls g.rls || fail "Slurm's 4 gradient shards: not the bytes of one process"
ok "sbatch --array=1-4 shard.sbatch rl-grad: rl-sum = one process"
must_pass sbatch --wait -o "$D/job-%A_%a.out" --array=1-3 "$sb" 3 \
	rl-eval -q -t 1 -m work -p eval.jsonl --max-new-tokens 12 --full-responses -O e.{}.rls
must_pass rl-sum -o e.rls e.2.rls e.3.rls e.1.rls
records e.rls >e.txt
test_cmp one-eval.txt e.txt
ok "sbatch --array=1-3 shard.sbatch rl-eval: rl-sum = one batch-invariant process"
# a failed task is run again alone, the others kept
rm g.3.rls g.rls
must_pass sbatch --wait -o "$D/job-%A_%a.out" --array=3 "$sb" 4 \
	rl-grad -q -j 1 -m work -p harmful.jsonl -d dh.rls -b 8 -o g.{}.rls
must_pass rl-sum -o g.rls g.1.rls g.2.rls g.3.rls g.4.rls
cmp one.rls g.rls || fail "Slurm, task 3 run again alone: not the bytes of one process"
ok "a task run again alone (--array=3): the same sum"

# --- GNU parallel over ssh: an sshd of our own, root by key ---
ssh-keygen -q -t ed25519 -N '' -f "$D/hostkey"
ssh-keygen -q -t ed25519 -N '' -f "$D/key"
cp "$D/key.pub" "$D/authorized_keys"
chmod 600 "$D/authorized_keys"
cat >"$D/sshd_config" <<EOF
Port $((base + 2))
ListenAddress 127.0.0.1
HostKey $D/hostkey
PidFile $D/sshd.pid
AuthorizedKeysFile $D/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
EOF
mkdir -p /run/sshd
/usr/sbin/sshd -f "$D/sshd_config" -E "$D/sshd.log" || fail "sshd did not start: $(cat "$D/sshd.log")"
sshcmd="ssh -p $((base + 2)) -i $D/key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
i=0
until $sshcmd root@127.0.0.1 true 2>/dev/null; do
	i=$((i + 1))
	[ $i -lt 20 ] || fail "ssh to the test's sshd fails: $(tail -n 3 "$D/sshd.log")"
	sleep 0.5
done
rm -f g.*.rls e.*.rls
# two "hosts" (the same sshd twice), one job slot each; absolute paths (the
# remote shell has its own PATH) and the same working folder
must_pass parallel --will-cite --ssh "$sshcmd" -S 1/root@127.0.0.1,1/root@localhost \
	--workdir "$D/work" --halt now,fail=1 \
	"$RL_BIN/rl-grad" -q -j 1 -m work -p harmful.jsonl -d dh.rls -b 8 --shard {}/4 -o g.{}.rls \
	::: 1 2 3 4
must_pass rl-sum -o gp.rls g.4.rls g.3.rls g.2.rls g.1.rls
cmp one.rls gp.rls || fail "parallel over ssh: not the bytes of one process"
must_pass parallel --will-cite --ssh "$sshcmd" -S 1/root@127.0.0.1,1/root@localhost \
	--workdir "$D/work" --halt now,fail=1 \
	"$RL_BIN/rl-eval" -q -t 1 -m work -p eval.jsonl --max-new-tokens 12 --full-responses \
	--shard {}/3 -O e.{}.rls ::: 1 2 3
must_pass rl-sum -o ep.rls e.1.rls e.2.rls e.3.rls
records ep.rls >ep.txt
test_cmp one-eval.txt ep.txt
ok "parallel over ssh (2 hosts): the gradient's bytes and the evaluation's records of one process"
finish
