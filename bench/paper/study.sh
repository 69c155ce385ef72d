#!/bin/sh
# One recorded study of the paper's comparison: study.sh NAME DATA GRID runs `minisnn experiment run`
# on DATA with the seven methods and GRID (one worker, one thread), writes the report to
# bench/paper/NAME and what ran (command, wall time, versions) to bench/paper/NAME/run.json.
# DATA_ROOT (default ~/.cache/minisnn) holds the data sets; STORE (default
# /tmp/minisnn-paper/NAME.sqlite) the results, so a rerun resumes.
set -e
name=$1 data=$2 grid=$3
cd "$(dirname "$0")/../.."
DATA_ROOT=${DATA_ROOT:-$HOME/.cache/minisnn}
STORE=${STORE:-/tmp/minisnn-paper/$name.sqlite}
mkdir -p "$(dirname "$STORE")"
command="minisnn experiment run --data $data --methods snn,msra,batchnorm,layernorm,weightnorm,highway,resnet --grid $grid --workers 1 --threads 1 --data-root $DATA_ROOT --store $STORE"
start=$(date +%s)
$command
end=$(date +%s)
minisnn experiment report --store "$STORE" --data-root "$DATA_ROOT" --out "bench/paper/$name"
recorded=$(echo "$command" | sed -e "s#$DATA_ROOT#DATA_ROOT#" -e "s#$STORE#STORE#")
python - "$start" "$end" "$recorded" <<'PY' > "bench/paper/$name/run.json"
import json, platform, sys, numpy, minisnn
start, end, command = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
print(json.dumps({"command": command, "wall_s": end - start, "minisnn": minisnn.__version__,
                  "numpy": numpy.__version__, "python": platform.python_version(),
                  "machine": "2 shared CPU cores (other work running), 1 worker, 1 thread"}, indent=1))
PY
