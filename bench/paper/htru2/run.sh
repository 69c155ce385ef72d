#!/bin/sh
# The reduced HTRU2 study recorded in this folder (2-core shared machine, one worker, one thread).
# The paper's setting: --grid paper (and no --epochs); DATA_ROOT holds htru2/HTRU_2.csv.
set -e
cd "$(dirname "$0")/../../.."
DATA_ROOT=${DATA_ROOT:-$HOME/.cache/minisnn}
STORE=${STORE:-/tmp/minisnn-paper/htru2.sqlite}
mkdir -p "$(dirname "$STORE")"
command="minisnn experiment run --data htru2 --methods snn,msra,batchnorm,layernorm,weightnorm,highway,resnet --grid reduced-htru2 --workers 1 --threads 1 --data-root $DATA_ROOT --store $STORE"
start=$(date +%s)
$command
end=$(date +%s)
minisnn experiment report --store "$STORE" --data-root "$DATA_ROOT" --out bench/paper/htru2
recorded=$(echo "$command" | sed -e "s#$DATA_ROOT#DATA_ROOT#" -e "s#$STORE#STORE#")
python - "$start" "$end" "$recorded" <<'PY' > bench/paper/htru2/run.json
import json, platform, sys, numpy, minisnn
start, end, command = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
print(json.dumps({"command": command, "wall_s": end - start, "minisnn": minisnn.__version__,
                  "numpy": numpy.__version__, "python": platform.python_version(),
                  "machine": "2 shared CPU cores (other work running), 1 worker, 1 thread"}, indent=1))
PY
