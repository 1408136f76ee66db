#!/usr/bin/env bash
# Checks examples/: the Kubernetes manifests against the Kubernetes API's schema (strict, for
# the oldest version the examples support, 1.29, whose Jobs take native sidecars), with the
# kubernetes-validate tool installed once into a cached virtual environment outside the
# repository; that the shard Job's --shards equals its completions; and the Slurm scripts'
# syntax with bash -n. What the Slurm scripts do is tested in tests/it/cluster.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${HARNESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/harness}/kubernetes-validate-1.37.0"
if [ ! -x "$venv/bin/kubernetes-validate" ]; then
    echo "check-examples: installing kubernetes-validate 1.37.0 into $venv" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check kubernetes-validate==1.37.0
fi
for version in 1.29.0 1.33.0; do
    "$venv/bin/kubernetes-validate" --strict --quiet -k "$version" examples/kubernetes/*.yaml
done
"$venv/bin/python" - <<'PY'
import sys, yaml
job = yaml.safe_load(open("examples/kubernetes/shards-job.yaml"))
spec = job["spec"]
args = spec["template"]["spec"]["containers"][0]["args"]
shards = int(args[args.index("--shards") + 1])
if spec.get("completionMode") != "Indexed" or shards != spec["completions"]:
    sys.exit(f"shards-job.yaml: --shards {shards} must equal completions {spec['completions']} in Indexed mode")
PY
for script in examples/slurm/*.sh examples/slurm/*.sbatch; do
    bash -n "$script"
done
echo "check-examples: Kubernetes manifests valid (1.29, 1.33), shard count consistent, Slurm scripts parse"
