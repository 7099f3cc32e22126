#!/usr/bin/env bash
# `edgetl embed` as a whole process (fresh cache each run) with the default intra-op threads (every core, idle
# pool threads sleeping) against --threads 1 (the old default for light backbones), taken in turns on the same
# photos, so a shared machine's load falls on both alike. Prints wall, user and system seconds per run.
#   bash bench/embed-threads.sh <folder of photos> [rounds=3] [--backbone <id|path>] [more embed flags]
set -euo pipefail
folder="$1"; rounds="${2:-3}"; shift $(( $# >= 2 ? 2 : 1 ))
cd "$(dirname "$0")/.."
node esbuild.config.mjs > /dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "| round | settings | wall s | user s | sys s | images/s |"
echo "|---|---|---:|---:|---:|---:|"
for round in $(seq 1 "$rounds"); do
  for setting in "default" "--threads 1"; do
    rm -rf "$work/cache" "$work/out"*
    flags=(); [ "$setting" = default ] || flags=($setting)
    /usr/bin/time -f "%e %U %S" -o "$work/time" env EDGETL_CACHE_DIR="$work/cache" \
      node dist/cli.js embed "$folder" --out "$work/out" --json "${flags[@]}" "$@" > "$work/result.json"
    read -r wall user sys < "$work/time"
    count=$(node -e "console.log(JSON.parse(require('fs').readFileSync('$work/result.json','utf8')).count)")
    echo "| $round | $setting | $wall | $user | $sys | $(node -e "console.log(($count / $wall).toFixed(1))") |"
  done
done
echo
echo "Machine: $(node -e "const os=require('os');console.log(os.cpus()[0].model + ', ' + os.cpus().length + ' cores, Node ' + process.version + ', load ' + os.loadavg().map(l=>l.toFixed(2)).join(' '))")"
