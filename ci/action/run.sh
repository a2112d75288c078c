#!/usr/bin/env bash
# The action's step (action.yml): runs one storyboard command the way a pipeline does, writes
# the plan to the job summary and the step's outputs, and exits with the command's exit code.
# Inputs come as INPUT_* environment variables; GITHUB_OUTPUT, GITHUB_STEP_SUMMARY and
# RUNNER_TEMP are the runner's files. Tests run it as it is (tests/test_action.py).
set -uo pipefail

cd "${INPUT_PROJECT:-.}" || exit 1
read -r -a extra <<< "${INPUT_ARGS:-}"
provider=()
if [ -n "${INPUT_PROVIDER:-}" ]; then provider=(--provider "$INPUT_PROVIDER"); fi
temp="${RUNNER_TEMP:-$(mktemp -d)}"
summary="${GITHUB_STEP_SUMMARY:-/dev/null}"
output="${GITHUB_OUTPUT:-/dev/null}"

case "${INPUT_COMMAND:-plan}" in
  validate)
    storyboard validate --format github "${extra[@]}"
    code=$?
    ;;
  plan)
    storyboard plan --json --detailed-exitcode "${provider[@]}" "${extra[@]}" > "$temp/storyboard-plan.json"
    code=$?
    if [ "$code" -eq 1 ] && [ ! -s "$temp/storyboard-plan.json" ]; then
      storyboard validate --format github "${extra[@]}"  # annotations at file:line:col
    else
      storyboard plan --format markdown "${provider[@]}" "${extra[@]}" > "$temp/storyboard-plan.md"
      cat "$temp/storyboard-plan.md" >> "$summary"
      python - "$temp/storyboard-plan.json" >> "$output" <<'PY'
import json, sys
plan = json.load(open(sys.argv[1], encoding="utf-8"))
for key in ("create", "regenerate", "restore", "remove", "hold", "requests", "cost"):
    print(f"{key}={plan['summary'].get(key, 0)}")
PY
    fi
    ;;
  apply)
    storyboard apply --auto-approve --lock-timeout "${INPUT_LOCK_TIMEOUT:-0}" "${provider[@]}" "${extra[@]}"
    code=$?
    ;;
  *)
    echo "::error title=storyboard::unknown command \`${INPUT_COMMAND}\` (validate, plan or apply)"
    code=1
    ;;
esac
echo "exitcode=$code" >> "$output"
# plan's 2 means "changes": not a failure of the step
if [ "${INPUT_COMMAND:-plan}" = plan ] && [ "$code" -eq 2 ]; then exit 0; fi
exit "$code"
