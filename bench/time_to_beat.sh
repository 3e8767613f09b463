#!/usr/bin/env bash
# How long a researcher waits for a policy that beats sed: for each run folder (as written by
# bench/seeds.sh), every candidate the run saved (candidates/, one per periodic evaluation) is
# compared with sed on the 200 test episodes (base seed 0), and the first one whose paired 95%
# interval of mean latency lies below zero is reported with the training seconds at which it
# existed (curve.csv).
#
#   bench/time_to_beat.sh runs/seeds/seed1 runs/seeds/seed2 ...
set -euo pipefail
cd "$(dirname "$0")/.."
episodes=${EPISODES:-200}
cargo build --release -q -p haca-eval
printf '%-24s %8s %10s %26s\n' run update train_s "paired latency (s)"
for dir in "$@"; do
    found=""
    for cand in $(ls "$dir"/candidates/update*.safetensors | sort); do
        update=$(basename "$cand" .safetensors | sed 's/^update0*//; s/^$/0/')
        line=$(target/release/haca-eval compare --scenario env/scenarios/haca-small.toml --routers sed \
            --policy "$cand" --episodes "$episodes" 2>/dev/null | grep '^paired')
        mean=$(echo "$line" | sed -E 's/.*mean_latency_s ([-+0-9.e]+) ± ([0-9.e]+).*/\1/')
        ci=$(echo "$line" | sed -E 's/.*mean_latency_s ([-+0-9.e]+) ± ([0-9.e]+).*/\2/')
        if python3 -c "import sys; sys.exit(0 if $mean + $ci < 0 else 1)"; then
            secs=$(awk -F, -v u="$update" '$1 == u {print $3}' "$dir/curve.csv" | tail -1)
            printf '%-24s %8s %10s %14s ± %-9s\n' "$dir" "$update" "$secs" "$mean" "$ci"
            found=1
            break
        fi
    done
    [ -n "$found" ] || printf '%-24s %8s\n' "$dir" "none"
done
