#!/bin/sh
# Grade one shard of a class: what each pod of the Kubernetes Indexed Job runs (any
# other machine can run it by hand the same way).
#
#   JOB_COMPLETION_INDEX  set by Kubernetes, 0-based; this pod grades shard index + 1
#   SHARDS                number of shards, the Job's `completions`
#   INPUTS                archives, folders or notebooks to grade, separated by spaces
#                         (default: /data/submissions, a folder of LMS downloads)
#   OUT                   where the shard gradebook and feedback pages go (/data/out)
#   LABKIT_GRADE_OPTIONS  more labkit-grade options, e.g. "--jobs 2 --timeout 30"
#   SEED_CACHE            the exercises' cases built into the image, copied into
#                         $LABKIT_GRADE_CACHE before grading (the image sets both)
#
# Writes $OUT/shard-K-of-N.json and $OUT/feedback/*.html. Exit status 0 when the shard
# is graded, even if some learner's files could not be read (the gradebook says which),
# so that Kubernetes retries a pod only when grading itself failed.
set -eu
index=${JOB_COMPLETION_INDEX:?is not set (Kubernetes sets it in an Indexed Job)}
shards=${SHARDS:?is not set: the number of shards (the Job completions)}
inputs=${INPUTS:-/data/submissions}
out=${OUT:-/data/out}
shard=$((index + 1))

if [ -n "${SEED_CACHE:-}" ] && [ -d "$SEED_CACHE" ] && [ -n "${LABKIT_GRADE_CACHE:-}" ]
then
    mkdir -p "$LABKIT_GRADE_CACHE"
    cp -R "$SEED_CACHE/." "$LABKIT_GRADE_CACHE/"
fi
mkdir -p "$out/feedback"
status=0
# shellcheck disable=SC2086  # INPUTS and LABKIT_GRADE_OPTIONS are lists of words
labkit-grade $inputs --shard "$shard/$shards" --quiet \
    --json "$out/shard-$shard-of-$shards.json" --feedback "$out/feedback" \
    ${LABKIT_GRADE_OPTIONS:-} || status=$?
[ "$status" -le 1 ] || exit "$status"
