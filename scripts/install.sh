#!/usr/bin/env bash
# One-command set-up on Debian with Swift 6.x on PATH: installs the system libraries Vigil links
# (scripts/system-packages.sh: OpenBLAS, LAPACKE, libpng, libjpeg-turbo), builds the release
# binary, and scores the shipped readmission test cohort as a smoke test. Re-running is safe.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/system-packages.sh
swift build -c release --product vigil
mkdir -p out
.build/release/vigil score --model models/readmission --input models/readmission/test_cohort.csv --output out/readmission_scores.csv
.build/release/vigil score --model models/sepsis --input models/sepsis/test_cohort.csv --output out/sepsis_scores.jsonl
echo "vigil is at .build/release/vigil; scores written to out/readmission_scores.csv and out/sepsis_scores.jsonl"
head -n 4 out/readmission_scores.csv
