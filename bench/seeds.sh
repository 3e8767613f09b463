#!/usr/bin/env bash
# The default run on every seed (issue 9's "done when"): `haca-train` with no flags but --seed,
# for seeds 1..N, then each run's best.safetensors against sed on haca-small over 200 episodes
# (`haca-eval compare`, base seed 0: seeds the run never selected on). Prints each seed's
# training time, the paired mean-latency difference (policy - sed, 95% interval) and whether it
# is a win, then draws the learning curves (docs/img/learning_curves.png by default).
#
#   bench/seeds.sh [N=5] [OUT=runs/seeds] [haca-train flags...]
#
# Flags after OUT go to every run (e.g. `--set ent_coef=0.001`, for an experiment); SEEDS="2 5"
# runs those seeds instead of 1..N.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-5}
out=${2:-runs/seeds}
shift $(($# < 2 ? $# : 2))
seeds=${SEEDS:-$(seq 1 "$n")}
episodes=${EPISODES:-200}
cargo build --release -q -p haca-train -p haca-eval
mkdir -p "$out"
printf '%-5s %10s %10s %26s %26s %s\n' seed train_s best_at_s "paired latency (s)" "paired stranded idle" verdict
wins=0
runs=()
for s in $seeds; do
    dir="$out/seed$s"
    rm -rf "$dir"
    target/release/haca-train --seed "$s" --out "$dir" "$@" > "$dir.log" 2>&1
    runs+=("$dir")
    target/release/haca-eval compare --scenario env/scenarios/haca-small.toml --routers sed \
        --policy "$dir/best.safetensors" --episodes "$episodes" --json "$dir/eval200.json" > /dev/null 2>&1
    python3 - "$dir" "$s" <<'PY'
import json, sys, re
d, s = sys.argv[1], sys.argv[2]
doc = json.load(open(f"{d}/eval200.json"))
p = doc["paired"][0]
lat, st = p["mean_latency_s"], p["stranded_idle_frac"]
log = open(f"{d}.log").read()
train_s = float(re.search(r"in ([0-9.]+) s of training", log).group(1))
# When the exported policy was found: the update the final selection chose (or, without
# one, the lowest evaluation latency), looked up in curve.csv.
rows = [l.split(",") for l in open(f"{d}/curve.csv").read().splitlines()[1:]]
chosen = re.search(r"best.safetensors is update ([0-9]+)", log)
if chosen:
    best = [r for r in rows if r[0] == chosen.group(1)][-1]
else:
    best = min(rows, key=lambda r: float(r[3]))
win = lat["mean"] + lat["ci95"] < 0
print(f"{s:<5} {train_s:>10.1f} {float(best[2]):>10.1f} {lat['mean']:>+14.3f} ± {lat['ci95']:<9.3f} {st['mean']:>+14.4f} ± {st['ci95']:<9.4f} {'WIN' if win else 'no win'}")
open(f"{d}.win", "w").write("1" if win else "0")
PY
    wins=$((wins + $(cat "$dir.win")))
done
echo "$wins of $(echo $seeds | wc -w) seeds beat sed (paired 95% interval of mean latency below zero, $episodes episodes, base seed 0)"
target/release/haca-train curves "${runs[@]}" --out "${CURVES:-docs/img}"
