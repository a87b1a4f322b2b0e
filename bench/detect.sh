#!/usr/bin/env bash
# Scores Dozor's detection on the public benchmarks in ../shared/datasets/ with their own
# scorers and prints the tables (issue 10). Needs python3 (and PyPI once, for NAB's pandas).
#
#   bench/detect.sh            # builds dozor (release), mines Loghub-2k, prints GA/FGA/PF1,
#                              # scores NAB with NAB's own scorer (a pandas venv, once)
#
# Predictions land in target/detect/. One configuration for every file: nothing here is
# tuned per data set.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${DOZOR_SHARED:-../shared}
data="$shared/datasets"
if [ ! -d "$data/loghub2k" ]; then
  echo "skipped: $data/loghub2k is absent (the shared benchmarks are not beside this clone)"
  exit 0
fi
DOZOR_SKIP_UI=1 cargo build --release -q -p dozor
dozor=target/release/dozor
out=target/detect
rm -rf "$out/loghub"

echo "== Loghub-2k: log template mining (grouping accuracy; Drain 0.876, Brain 0.992 on these eight)"
start=$(date +%s.%N)
"$dozor" detect loghub --data "$data/loghub2k" --out "$out/loghub"
end=$(date +%s.%N)
echo "mined in $(echo "$end - $start" | bc) s"
datasets=$(cd "$out/loghub" && ls -- *.csv | sed 's/\.csv$//' | paste -sd, -)
python3 "$data/loghub_ga.py" --data "$data/loghub2k" --pred "$out/loghub" --datasets "$datasets"

echo
echo "== NAB: anomaly scores on five categories (standard profile; rolling z-score 35.8, Numenta HTM 75.5)"
rm -rf "$out/nab"
"$dozor" detect nab --data "$data/nab/data" --out "$out/nab" >/dev/null
NAB_PYTHON=$("$data/setup-nab-python.sh") python3 "$data/nab_score.py" --pred "$out/nab" --name dozor
