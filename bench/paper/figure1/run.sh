#!/bin/sh
# The reduced Figure 1 run recorded in this folder (2-core shared machine, one thread): this script,
# then the same command with --time-budget 16, which resumed every network from its checkpoint
# (run.json lists both runs; this script rewrites it with its own run).
# The paper's setting: drop --samples, --epochs and --time-budget (60,000 rows, 2000 epochs).
set -e
cd "$(dirname "$0")/../../.."
start=$(date +%s)
minisnn figure1 --samples 5120 --epochs 200 --time-budget 18 --backend numba --threads 1 \
    --checkpoints /tmp/minisnn-figure1-checkpoints --out bench/paper/figure1
end=$(date +%s)
python - "$start" "$end" <<'PY' > bench/paper/figure1/run.json
import json, platform, sys, numpy, minisnn
start, end = map(int, sys.argv[1:])
print(json.dumps({"command": "minisnn figure1 --samples 5120 --epochs 200 --time-budget 18 --backend numba "
                  "--threads 1 --checkpoints /tmp/minisnn-figure1-checkpoints --out bench/paper/figure1",
                  "wall_s": end - start, "minisnn": minisnn.__version__, "numpy": numpy.__version__,
                  "python": platform.python_version(), "machine": "2 shared CPU cores, 1 thread"}, indent=1))
PY
