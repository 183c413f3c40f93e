#!/usr/bin/env bash
# hack/timed.sh STEP CMD...: run CMD; append "STEP <seconds> <exit code>" to
# $FTJOBS_TIMINGS (when set) so .ci/run can print where a run's time went.
set -uo pipefail
step=$1; shift
t0=$(date +%s)
"$@"
rc=$?
if [[ -n ${FTJOBS_TIMINGS:-} ]]; then
  printf '%s %s %s\n' "$step" "$(( $(date +%s) - t0 ))" "$rc" >>"$FTJOBS_TIMINGS"
fi
exit "$rc"
