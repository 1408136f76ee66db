#!/usr/bin/env python3
"""Serves a GGUF model with llama.cpp's HTTP server (through the xllamacpp wheel) on
127.0.0.1 until SIGTERM or SIGINT. Started by scripts/real-llm.sh; not meant to be run
by hand.

usage: real_llm_server.py MODEL.gguf PORT ALIAS
"""

import signal
import sys

import xllamacpp as xlc


def main():
    model, port, alias = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    params = xlc.CommonParams()
    params.model.path = model
    params.model_alias = {alias}  # a set of names the server answers to
    params.hostnames = ["127.0.0.1"]
    params.port = port
    params.n_ctx = 2048  # room for the agent workflow's prompts and answers
    params.n_predict = 256  # the server's cap when a request sets no max_tokens
    params.n_parallel = 1  # one slot: concurrent agents queue, as on a small GPU server
    params.endpoint_metrics = True  # /metrics in Prometheus format, as `llama-server --metrics`
    params.cpuparams.n_threads = 1
    params.cpuparams_batch.n_threads = 1
    server = xlc.Server(params)
    print(f"serving {model} as {alias} at {server.listening_address}", flush=True)
    signal.sigwait([signal.SIGTERM, signal.SIGINT])


if __name__ == "__main__":
    main()
