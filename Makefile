# The two commands of the README's quick start: `make demo` and `make test`.
CARGO ?= cargo

.PHONY: build demo test lint bench clean-results

build:
	$(CARGO) build --release --locked

# The flagship scenario on the built-in simulator (no GPU needed).
demo: build
	./target/release/harness run scenarios/chimera.yaml --backend sim

test:
	$(CARGO) test --locked --all-targets

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

bench:
	$(CARGO) bench --locked --bench stream_parse
	$(CARGO) bench --locked --bench stats

clean-results:
	find results -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +
