#!/bin/sh
# tests/study-kill.sh BUILD_DIR [MODELS [TRAIN TEST]] - the study
# survives being killed: a quick study (TRAIN training and TEST test
# images, 3000 and 1000 by default, 2 epochs, a backup every 10 steps;
# MODELS, all five by default, as --models takes them) SIGKILLed at 5
# random moments and started again each time, and
# one stopped by SIGINT (status 130, nothing partial in --out, a backup
# that resumes), end with the files of a run never stopped: results.csv
# and report.html but for their seconds column, history.csv, the model
# files, the plots and the classification report byte for byte.  Skips without the
# dataset.
set -eu

build=${1:-build}
models=${2:-base,l1,l2,dropout,l2_dropout}
train=${3:-3000}
test=${4:-1000}
bin=$build/examples/fashion_experiments
data=${FMNN_DATA:-/usr/share/datasets/fashion-mnist}
if [ ! -f "$data/train-images-idx3-ubyte.gz" ]; then
    echo "study-kill: SKIP: no Fashion-MNIST in $data (make deps installs it)"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
set -- --data "$data" --train-limit "$train" --test-limit "$test" --epochs 2 --quiet --backup-steps 10 --threads 2 --models "$models"

fail() { echo "study-kill: FAIL: $*" >&2; exit 1; }
now() { date +%s.%N; }
# A random number of seconds in [lo, hi).
pick() { awk -v lo="$1" -v hi="$2" -v seed="$(date +%N)" 'BEGIN { srand(seed); printf "%.2f", lo + (hi - lo) * rand() }'; }

# The files of two runs are the same, but for the seconds.
same_results() {
    for f in history.csv classification_report.txt val_accuracy.svg val_loss.svg predictions.svg \
             confusion_matrix.svg $(echo "$models" | sed 's/\([^,]*\)/\1.fmnn/g; s/,/ /g'); do
        cmp -s "$1/$f" "$2/$f" || fail "$2/$f differs from the uninterrupted run's"
    done
    # results.csv: every column but the last, the seconds
    sed 's/,[^,]*$//' "$1/results.csv" >"$tmp/a.csv"
    sed 's/,[^,]*$//' "$2/results.csv" >"$tmp/b.csv"
    cmp -s "$tmp/a.csv" "$tmp/b.csv" || fail "$2/results.csv differs (seconds aside)"
    # report.html: all but the last cell of each row of its results table
    for d in "$1" "$2"; do
        awk '/<h2>Results<\/h2>/ { r = 1 } r && /<\/table>/ { r = 0 }
             { if (r) sub(/<td class="num">[^<]*<\/td><\/tr>$/, "</tr>"); print }' "$d/report.html" >"$tmp/$(basename "$d").html"
    done
    cmp -s "$tmp/$(basename "$1").html" "$tmp/$(basename "$2").html" || fail "$2/report.html differs (seconds aside)"
    [ ! -e "$2/.backup" ] || fail "the backup $2/.backup is left after a complete run"
    if ls -a "$2" | grep -q '\.tmp'; then fail "temporary files are left in $2"; fi
}

start=$(now)
"$bin" "$@" --out "$tmp/whole" >"$tmp/whole.log" 2>&1 || { cat "$tmp/whole.log"; fail "the uninterrupted run failed"; }
seconds=$(awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')

# ---- SIGKILL at 5 random moments ----
kills=0
while [ $kills -lt 5 ]; do
    "$bin" "$@" --out "$tmp/killed" >>"$tmp/killed.log" 2>&1 &
    pid=$!
    sleep "$(pick 0.5 "$(awk -v s="$seconds" 'BEGIN { print s / 5 }')")"
    kill -9 $pid 2>/dev/null || true
    status=0
    wait $pid || status=$?
    if [ $status -eq 137 ]; then
        kills=$((kills + 1))
    elif [ $status -eq 0 ]; then
        rm -rf "$tmp/killed" # it finished first: start over
    else
        cat "$tmp/killed.log"; fail "a killed run's restart failed with status $status"
    fi
done
"$bin" "$@" --out "$tmp/killed" >>"$tmp/killed.log" 2>&1 || { cat "$tmp/killed.log"; fail "the last restart failed"; }
same_results "$tmp/whole" "$tmp/killed"
echo "study-kill: killed 5 times, the restarted study matches (an uninterrupted run: $seconds s)"

# ---- SIGINT ----
# Half-way through the uninterrupted run's time; sooner when the machine
# got faster and the run ended first.
delay=$(awk -v s="$seconds" 'BEGIN { print s / 2 }')
while :; do
    "$bin" "$@" --out "$tmp/stopped" >"$tmp/stopped.log" 2>&1 &
    pid=$!
    sleep "$delay"
    kill -INT $pid 2>/dev/null && break
    wait $pid || true
    rm -rf "$tmp/stopped"
    delay=$(awk -v d="$delay" 'BEGIN { print d / 2 }')
done
status=0
wait $pid || status=$?
[ $status -eq 130 ] || { cat "$tmp/stopped.log"; fail "SIGINT gave status $status, not 130"; }
grep -q 'run the same command' "$tmp/stopped.log" || fail "SIGINT's message does not say how to go on"
[ -f "$tmp/stopped/.backup/study.txt" ] || fail "SIGINT left no backup"
if find "$tmp/stopped" -name '*.tmp*' | grep -q .; then fail "SIGINT left a partial file"; fi
"$bin" "$@" --out "$tmp/stopped" >>"$tmp/stopped.log" 2>&1 || { cat "$tmp/stopped.log"; fail "the run after SIGINT failed"; }
same_results "$tmp/whole" "$tmp/stopped"
echo "study-kill: stopped by SIGINT (status 130), resumed, matches"
