#!/bin/sh
# flannel-gen's review of a topology change, for CI (dist/ci/*.yml call it):
#   1. validate, as annotations on the lines at fault (--format github)
#   2. the lock file is current (lock --check)
#   3. the committed rendered files are current (render --check), when kept
#   4. the Markdown plan of BASE -> TOPOLOGY, appended to SUMMARY
# Usage: review.sh TOPOLOGY BASE_TOPOLOGY SUMMARY [RENDERED_DIR]
# Exit: 0 ok (a plan that changes nodes is ok: it is what is reviewed),
# non-zero when a check fails or an input is bad.
set -eu
topology=$1 base=$2 summary=$3 rendered=${4:-}
fg=${FLANNEL_GEN:-flannel-gen}

"$fg" validate --format github "$topology"
"$fg" lock "$topology" --check
if [ -n "$rendered" ]; then
    "$fg" render "$topology" --out "$rendered" --check
fi
status=0
"$fg" diff "$base" "$topology" --format markdown >>"$summary" || status=$?
# diff exits 1 when the plans differ: that is the review, not a failure.
[ "$status" -le 1 ]
