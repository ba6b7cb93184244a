"""segmail: scheduled segment mailings on Apache Airflow 3.

The package holds all logic; DAG files under dags/ only wire its functions into tasks.
"""

from __future__ import annotations

__version__ = "0.1.0"
