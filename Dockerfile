# segmail on the official Airflow image; versions pinned by requirements.lock (used as constraints).
FROM apache/airflow:3.3.2-python3.11

COPY --chown=airflow:root requirements.lock /opt/segmail/requirements.lock
COPY --chown=airflow:root pyproject.toml README.md /opt/segmail/
COPY --chown=airflow:root plugins /opt/segmail/plugins
RUN pip install --no-cache-dir -c /opt/segmail/requirements.lock /opt/segmail
