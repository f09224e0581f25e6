# Set-up and the two everyday jobs. Everything installs into .venv from the registries.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@command -v java >/dev/null || { echo "java is missing: apt-get install -y openjdk-17-jdk-headless"; exit 1; }
	@command -v mvn >/dev/null || { echo "mvn is missing: apt-get install -y maven"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch is a 540 MB wheel: a connection that drops midway resumes instead of failing the install.
	$(BIN)/pip install --quiet --retries 10 --resume-retries 20 -e ".[dev]"
	touch $@

demo: install
	$(BIN)/ssi-plugin demo

test: install
	@$(BIN)/python -m pytest; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests ran"; exit 0; fi; exit $$rc

lint: install
	$(BIN)/ruff check .

bench: install
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV)
