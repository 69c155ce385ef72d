#!/bin/sh
# The reduced UCI study recorded in this folder (every data set under DATA_ROOT/uci: 25 here; 2-core shared machine,
# one worker, one thread). It ran twice on one store: first with depths 4 (resnet 2), then with the grid as it is now,
# which added depths 8 (resnet 4) and ran only those trials (run.json records the second run).
# The paper's setting: --grid paper (and no --epochs); DATA_ROOT/uci holds the data sets (the 121 of the collection when present) and paper_results.csv.
exec "$(dirname "$0")/../study.sh" uci uci:all reduced-uci
