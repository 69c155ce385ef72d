#!/bin/sh
# The reduced HTRU2 study recorded in this folder (2-core shared machine, one worker, one thread).
# The paper's setting: --grid paper (and no --epochs); DATA_ROOT holds htru2/HTRU_2.csv.
exec "$(dirname "$0")/../study.sh" htru2 htru2 reduced-htru2
