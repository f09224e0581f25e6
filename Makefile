# Set-up and the two everyday jobs. Everything installs into .venv from the registries.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint bench constraints clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	@command -v java >/dev/null || { echo "java is missing: apt-get install -y openjdk-17-jdk-headless"; exit 1; }
	@command -v mvn >/dev/null || { echo "mvn is missing: apt-get install -y maven"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# Every extra and the test tools, at the versions tested (constraints.txt).
	# torch is a 540 MB wheel: a connection that drops midway resumes instead of failing the install.
	$(BIN)/pip install --quiet --retries 10 --resume-retries 20 -c constraints.txt -e ".[dev]"
	touch $@

demo: install
	$(BIN)/ssi-plugin demo

test: install
	@$(BIN)/python -m pytest; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests ran"; exit 0; fi; exit $$rc

# ruff, then mypy on the files [tool.mypy] in pyproject.toml names.
lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: install
	$(BIN)/python -m benchmarks

# After upgrading packages in .venv and passing the tests: record their versions as the tested ones.
constraints: install
	{ grep '^#' constraints.txt; $(BIN)/pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

clean:
	rm -rf $(VENV)
