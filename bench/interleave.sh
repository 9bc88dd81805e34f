#!/usr/bin/env bash
# interleave.sh compares builds of the bench, or one build with different
# flags, in one run: round after round, workload by workload, it runs each
# variant once (one round of one system, in its own process), starting
# each round with the next variant so that none always goes first. It
# prints every run as it ends, then the median, the lowest and the highest
# of each figure per variant, and each variant's median ratio to the first
# variant (the median of the per-round ratios).
#
#	go build -mod=mod -o /tmp/bench-new .
#	ROUNDS=7 WORKLOADS=lat,tput ./interleave.sh \
#		"v2=/tmp/bench-old" "v3=/tmp/bench-new" "v3+3h=/tmp/bench-new -headers 3"
#
# Environment: ROUNDS (default 5), WORKLOADS (default lat,tput,large),
# SYSTEM (default socketbus), DURATION for tput and fanin (default 5s),
# LOG (the runs, one line each; default a temporary file). With
# REPORT=1 and LOG naming earlier runs' logs (several, space-separated,
# pool their rounds), it runs nothing and summarizes them again, against
# the first variant named (only the names matter then: "v3=" "v2=").
set -euo pipefail

rounds=${ROUNDS:-5}
workloads=${WORKLOADS:-lat,tput,large}
system=${SYSTEM:-socketbus}
duration=${DURATION:-5s}
log=${LOG:-$(mktemp)}
if [ $# -lt 1 ]; then
	echo "usage: $0 name=command [name=command...]" >&2
	exit 2
fi
names=()
cmds=()
for v in "$@"; do
	names+=("${v%%=*}")
	cmds+=("${v#*=}")
done
n=${#names[@]}

# runs runs every variant, round after round, appending to the log.
runs() {
	: >"$log"
	echo "# $(date -u +%FT%TZ) rounds=$rounds workloads=$workloads system=$system duration=$duration load=$(cut -d' ' -f1-3 /proc/loadavg)" >&2
	for ((r = 1; r <= rounds; r++)); do
		for w in ${workloads//,/ }; do
			for ((i = 0; i < n; i++)); do
				k=$(((i + r - 1) % n))
				# The progress line of the one run: "lat   round 1/1 socketbus p50 µs 54.2, p99 µs ... (...)".
				line=$(${cmds[k]} -systems "$system" -workloads "$w" -rounds 1 -duration "$duration" 2>&1 >/dev/null |
					grep " round 1/1 ") || {
					echo "interleave: ${names[k]} failed on $w" >&2
					exit 1
				}
				figures=${line#* round 1/1 $system }
				echo "${names[k]}	$r	$w	${figures%% (*}" | tee -a "$log" >&2
			done
		done
	done
	echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
}

if [ -z "${REPORT:-}" ]; then
	runs
fi

# One record per figure: variant, round (numbered apart in each log),
# workload, figure, value.
read -ra logs <<<"$log"
awk -F'\t' 'FNR == 1 { file++ }
{
	n = split($4, items, ", ")
	for (i = 1; i <= n; i++) {
		f = items[i]; v = f; sub(/ [^ ]*$/, "", f); sub(/.* /, "", v)
		printf "%s\t%d\t%s\t%s\t%s\n", $1, file * 1000 + $2, $3, f, v
	}
}' "${logs[@]}" | awk -F'\t' -v order="$(printf '%s,' "${names[@]}")" '
function num(x) { return x + 0 >= 1000 ? sprintf("%.0f", x) : sprintf("%.3g", x) }
function median(list,    a, m, i, j, t) {
	m = split(list, a, " ")
	for (i = 2; i <= m; i++) for (j = i; j > 1 && a[j-1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
	return m % 2 ? a[(m+1)/2] : (a[m/2] + a[m/2+1]) / 2
}
function lo(list,    a, m, i, x) { m = split(list, a, " "); x = a[1]; for (i = 2; i <= m; i++) if (a[i] + 0 < x + 0) x = a[i]; return x }
function hi(list,    a, m, i, x) { m = split(list, a, " "); x = a[1]; for (i = 2; i <= m; i++) if (a[i] + 0 > x + 0) x = a[i]; return x }
{
	key = $3 "\t" $4
	if (!(key in seen)) { seen[key] = 1; keys[++nk] = key }
	vals[key, $1] = vals[key, $1] " " $5
	val[key, $1, $2] = $5
	if ($2 > maxr) maxr = $2
}
END {
	nv = split(order, vs, ","); nv--
	printf "workload\tfigure"
	for (v = 1; v <= nv; v++) printf "\t%s median (lo-hi)", vs[v]
	for (v = 2; v <= nv; v++) printf "\t%s/%s (lo-hi)", vs[v], vs[1]
	printf "\n"
	for (i = 1; i <= nk; i++) {
		key = keys[i]
		printf "%s", key
		for (v = 1; v <= nv; v++) printf "\t%s (%s-%s)", num(median(vals[key, vs[v]])), num(lo(vals[key, vs[v]])), num(hi(vals[key, vs[v]]))
		for (v = 2; v <= nv; v++) {
			rs = ""
			for (r = 1; r <= maxr; r++) if (val[key, vs[1], r] + 0 > 0 && (key, vs[v], r) in val) rs = rs " " val[key, vs[v], r] / val[key, vs[1], r]
			printf "\t%.3fx (%.2f-%.2f)", median(rs), lo(rs), hi(rs)
		}
		printf "\n"
	}
}'
