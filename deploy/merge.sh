#!/bin/sh
# Join the shard gradebooks of a run into one: the last step, after every pod of the
# Indexed Job has succeeded. Refuses (exit status 1, saying why) unless every learner
# was graded exactly once.
#
#   SHARDS         number of shards of the run
#   OUT            the folder holding shard-K-of-N.json (default /data/out); the merged
#                  grades.json and grades.csv are written there
#   ROSTER         optional: a gradebook exported from Canvas; canvas.csv is written too
#   CANVAS_COLUMN  the roster's assignment column to fill (default: its only one)
set -eu
shards=${SHARDS:?is not set: the number of shards of the run}
out=${OUT:-/data/out}
set -- "$out"/shard-*-of-"$shards".json
if [ -n "${ROSTER:-}" ]; then
    set -- "$@" --roster "$ROSTER" --canvas "$out/canvas.csv"
    if [ -n "${CANVAS_COLUMN:-}" ]; then
        set -- "$@" --canvas-column "$CANVAS_COLUMN"
    fi
fi
exec labkit-grade merge "$@" --json "$out/grades.json" --csv "$out/grades.csv"
