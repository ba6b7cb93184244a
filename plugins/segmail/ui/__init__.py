"""The "Segment mailings" pages, mounted in Airflow's api-server by plugins/segmail_ui.py."""
