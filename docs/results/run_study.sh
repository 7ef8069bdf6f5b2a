#!/usr/bin/env bash
# Run one study of a config on its own and snapshot it into docs/results/<scale>/<study>/ (see README.md
# here): its tables, key figures and timings.md with the wall time and what else used the CPU meanwhile.
#
#   docs/results/run_study.sh STUDY CONFIGFILE DEST "where the data came from" [snakemake args...]
#   e.g. docs/results/run_study.sh iic config/laptop.yaml docs/results/laptop "MNIST from a local npz" \
#          --config 'data={mnist: {source: npz, path: /data/mnist.npz}}'
#
# The study runs at nice 19, so that its CPU time is /proc/stat's "nice" column and that of every process
# at the default priority is "user": the record says how much user CPU ran beside it. A run stopped midway
# (a session's end, a reboot) is resumed by running the same command again (add --rerun-incomplete if
# Snakemake asks for it): Snakemake keeps the finished jobs, and the wall time is the sum of the parts
# (a 30-s heartbeat dates a part that was killed).
set -uo pipefail
study=$1 configfile=$2 dest=$3 data=$4; shift 4
cores=$(nproc)
case $study in
  crops)   targets="results/crops/verdict.csv results/crops/stacking.csv results/crops/figures/baseline_curves.png"
           figures="baseline_curves heatmap_as_published heatmap_window masks_compared stacking" ;;
  iic)     targets="results/iic/summary.csv"; figures="curves_by_alpha confusion" ;;
  cifar)   targets="results/cifar/summary.csv"; figures="augmentation bn_lr corruptions_train labels noisy_bn" ;;
  coreset) targets="results/coreset/verdict.csv"; figures="recheck score_vs_size selected_vs_scanned" ;;
  digits)  targets="results/digits/leaderboard.csv results/digits/ladder.csv results/digits/bootstrap.csv"
           targets+=" results/digits/hardest.csv results/digits/figures/fold_curves.png"
           targets+=" results/digits/figures/ensemble_vs_single.png results/digits/figures/ladder.png"
           targets+=" results/digits/figures/hardest.png results/digits/figures/bootstrap.png"
           figures="ensemble_vs_single fold_curves ladder" ;;
  *) echo "unknown study '$study' (crops, iic, cifar, coreset, digits)" >&2; exit 2 ;;
esac
parts=results/.timing/$study.parts; mkdir -p results/.timing
stamp() { echo "$1 $(date +%s) $(head -1 /proc/stat | awk '{print $2, $3}')" >> "$parts"; }  # kind, time, user, nice
stamp start
( while sleep 30 && kill -0 $$ 2>/dev/null; do stamp beat; done ) & beat=$!  # stops with this script
trap 'kill $beat 2>/dev/null' EXIT
trap 'exit 130' INT TERM HUP
nice -n 19 snakemake $targets --cores "$cores" --configfile "$configfile" "$@"; rc=$?
kill $beat; stamp end
[ $rc = 0 ] || { echo "snakemake failed (rc $rc); run the same command again to resume" >&2; exit $rc; }
# each part: from its start to its end (or last heartbeat); the user CPU of other processes in it
read -r beside walls < <(awk -v hz="$(getconf CLK_TCK)" '
  $1 == "start" { if (t0) { w = w " " last - t0; u += (lu - u0) }; t0 = $2; u0 = $3 }
  { last = $2; lu = $3 }
  END { w = w " " last - t0; u += (lu - u0); printf "%.0f%s\n", u / hz, w }' "$parts")
share=$(python -c "import sys; w = sum(map(float, sys.argv[1].split(','))); print(f'{100 * $beside / ($cores * w):.1f}')" "${walls// /,}")
python -m anatomy.timings results/ --snapshot "$dest" --study "$study" --figures $figures --wall-seconds $walls \
  --data "$data" --command "snakemake $targets --cores $cores --configfile $configfile${*:+ $*}" \
  --beside "other processes used $beside CPU-seconds ($share% of the $cores cores over the run; the study ran at nice 19)" \
  && rm "$parts"
