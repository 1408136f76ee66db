#!/usr/bin/env bash
# Submits a harness run as a Slurm array of SHARDS shard jobs and a merge job that runs
# when they have all ended:
#
#   examples/slurm/submit.sh scenarios/chimera.yaml results/chimera 4
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
scenario="${1:?usage: submit.sh SCENARIO.yaml OUT_DIR SHARDS}"
out="${2:?usage: submit.sh SCENARIO.yaml OUT_DIR SHARDS}"
shards="${3:?usage: submit.sh SCENARIO.yaml OUT_DIR SHARDS}"
mkdir -p "$out"

array=$(sbatch --parsable --array="0-$((shards - 1))" "$here/shard.sbatch" "$scenario" "$out")
array="${array%%;*}" # --parsable prints "id" or "id;cluster"
merge=$(sbatch --parsable --dependency="afterany:$array" "$here/merge.sbatch" "$out")
echo "shards: job $array (array 0-$((shards - 1))); merge: job ${merge%%;*} -> $out/merged"
