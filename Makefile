# segmail: every target builds on `make install`, which creates .venv from the pinned lock file.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# Airflow settings for the embedded setup (SQLite metadata DB under .airflow/). The segmail plugin comes
# through the package's entry point, so Airflow's plugins folder stays its default.
export AIRFLOW_HOME ?= $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export SEGMAIL_INCLUDE_DIR := $(CURDIR)/include
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: install demo test lint bench-import bench-send bench-feedback bench-sms airflow serve-public clean

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "segmail needs Python 3.11+"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

demo: install
	$(BIN)/python -m segmail.dev.demo

test: install
	bash scripts/ensure-chromium.sh
	bash scripts/ensure-debian.sh /usr/sbin/dnsmasq=dnsmasq-base
	bash scripts/ensure-debian.sh /usr/sbin/postfix=postfix /usr/sbin/dovecot=dovecot-imapd
	bash scripts/ensure-debian.sh /usr/sbin/bearerbox=kannel /usr/lib/kannel/test/fakesmsc=kannel-extras
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench-import: install
	$(BIN)/python bench/bench_import.py $(BENCH_ARGS)

clean:
	rm -rf .airflow var bench/data

bench-send: install
	$(BIN)/python bench/bench_send.py $(BENCH_ARGS)

# Reading a bounce mailbox of 10,000 reports from a private Dovecot (root: Postfix and Dovecot from Debian).
bench-feedback: install
	bash scripts/ensure-debian.sh /usr/sbin/postfix=postfix /usr/sbin/dovecot=dovecot-imapd
	$(BIN)/python bench/bench_feedback.py $(BENCH_ARGS)

# SMS through a private Kannel (bearerbox + smsbox, fakesmsc as the SMS centre; Debian's kannel, kannel-extras).
bench-sms: install
	bash scripts/ensure-debian.sh /usr/sbin/bearerbox=kannel /usr/lib/kannel/test/fakesmsc=kannel-extras
	$(BIN)/python bench/bench_sms.py $(BENCH_ARGS)

# Airflow with the UI on http://127.0.0.1:8080 (SEGMAIL_UI_PORT), the public unsubscribe app on
# http://127.0.0.1:8090 (SEGMAIL_PUBLIC_PORT), a local SMTP sink and the sample data.
airflow: install
	$(BIN)/python -m segmail.dev.local

# Only the public unsubscribe app, on the local database and signing key: try the links `make demo` sent.
serve-public: install
	$(BIN)/python -m segmail.dev.local serve-public
