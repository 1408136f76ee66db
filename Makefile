# The two commands of the README's quick start: `make demo` and `make test`.
CARGO ?= cargo

.PHONY: build demo test test-real test-browser test-examples lint bench bench-fanout bench-client clean-results

build:
	$(CARGO) build --release --locked

# The flagship scenario on the built-in simulator (no GPU needed).
demo: build
	./target/release/harness run scenarios/chimera.yaml --backend sim

test:
	$(CARGO) test --locked --all-targets

# The harness against a real LLM server: llama.cpp with SmolLM2-135M on one CPU thread,
# installed once into ~/.cache/harness (scripts/real-llm.sh). Stops the server either way.
test-real:
	scripts/real-llm.sh start
	$(CARGO) test --locked --test it real_llm -- --ignored --test-threads=1; \
	status=$$?; scripts/real-llm.sh stop; exit $$status

# report.html in headless Chromium (the Debian package, installed when missing): loads
# offline, logs nothing, shows every figure, and its screenshot is not blank.
test-browser:
	python3 scripts/browser_check.py

# The cluster examples: Kubernetes manifests against the API schema, Slurm scripts' syntax.
test-examples:
	scripts/check-examples.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

bench:
	$(CARGO) bench --locked --bench stream_parse
	$(CARGO) bench --locked --bench stats
	$(CARGO) bench --locked --bench figures

# The client's CPU while an agent graph fans out to 64 instances on a separate simulator.
bench-fanout:
	python3 scripts/bench_fanout_cpu.py

# What the client costs per token, its TTFT error against a server's own stamps, streams
# held and memory, at 1, 16 and 64 streams × 0 and 5 ms between tokens.
bench-client:
	python3 scripts/bench_client.py

clean-results:
	find results -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +
