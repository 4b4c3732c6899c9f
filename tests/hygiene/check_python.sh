#!/usr/bin/env bash
# Compiles every tracked Python file (training scripts, test drivers, SDK): scripts that only run
# on the GPU host must still parse here, where CI runs.
set -euo pipefail
python=$1
mapfile -t files < <(git ls-files '*.py')
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
bad=0
for f in "${files[@]}"; do
  if ! "$python" -c 'import py_compile, sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)' \
      "$f" "$out/c.pyc" 2> "$out/err"; then
    echo "does not compile: $f"
    cat "$out/err"
    bad=1
  fi
done
echo "checked ${#files[@]} files"
exit $bad
