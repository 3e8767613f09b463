#!/usr/bin/env bash
# The frontier family on haca-small: one policy per stranded_weight (the reward's price of a
# stranded slot-second against a job-second), each trained from random weights with the default
# settings and exported to checkpoints/frontier/, then all of them compared with every heuristic
# on 200 test episodes (seeds no training or selection used), with the frontier picture.
#
#   bench/family.sh [WEIGHTS] [STEPS] [TEST_SEED]
#
# WEIGHTS default "10 50 200"; the weight-0 member is checkpoints/haca-small.safetensors. The
# weights are large because the two terms differ in size: a haca-small episode of the weight-0
# policy costs about 15,000 job-seconds and strands about 330 slot-seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

weights=${1:-"10 50 200"}
steps=${2:-4000000}
seed=${3:-9000}
out=checkpoints/frontier
mkdir -p "$out" runs
cargo build --release -q -p haca-train -p haca-eval

policies=(--policy checkpoints/haca-small.safetensors)
for w in $weights; do
    run=runs/family-w$w
    if [ ! -f "$run/best.safetensors" ]; then
        start=$(date +%s)
        ./target/release/haca-train --scenario env/scenarios/haca-small.toml \
            --total-steps "$steps" --learning-rate 0.0005 --seed 1 \
            --set "stranded_weight=$w" --out "$run" | tail -4
        echo "family w=$w: trained in $(( $(date +%s) - start )) s" >&2
    fi
    ./target/release/haca-train export --run "$run" --out "$out/haca-small-w$w.safetensors"
    policies+=(--policy "$out/haca-small-w$w.safetensors")
done

./target/release/haca-eval compare --scenario env/scenarios/haca-small.toml --episodes 200 \
    --seed "$seed" "${policies[@]}" --json "$out/compare.json" --plots docs/img/frontier \
    | tee "$out/compare.txt"
