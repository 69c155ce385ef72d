#!/bin/sh
# The reduced UCI study recorded in this folder (every data set under DATA_ROOT/uci: 25 here; 2-core shared machine,
# one worker, one thread). It ran twice on one store: first with depths 4 (resnet 2), then with the grid as it is now,
# which added depths 8 (resnet 4) and ran only those trials (run.json records the second run).
# The paper's setting: --grid paper (and no --epochs); DATA_ROOT/uci holds the data sets (the 121 of the collection when present) and paper_results.csv.
set -e
cd "$(dirname "$0")/../../.."
DATA_ROOT=${DATA_ROOT:-$HOME/.cache/minisnn}
STORE=${STORE:-/tmp/minisnn-paper/uci.sqlite}
mkdir -p "$(dirname "$STORE")"
command="minisnn experiment run --data uci:all --methods snn,msra,batchnorm,layernorm,weightnorm,highway,resnet --grid reduced-uci --workers 1 --threads 1 --data-root $DATA_ROOT --store $STORE"
start=$(date +%s)
$command
end=$(date +%s)
minisnn experiment report --store "$STORE" --data-root "$DATA_ROOT" --out bench/paper/uci
recorded=$(echo "$command" | sed -e "s#$DATA_ROOT#DATA_ROOT#" -e "s#$STORE#STORE#")
python - "$start" "$end" "$recorded" <<'PY' > bench/paper/uci/run.json
import json, platform, sys, numpy, minisnn
start, end, command = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
print(json.dumps({"command": command, "wall_s": end - start, "minisnn": minisnn.__version__,
                  "numpy": numpy.__version__, "python": platform.python_version(),
                  "machine": "2 shared CPU cores (other work running), 1 worker, 1 thread"}, indent=1))
PY
