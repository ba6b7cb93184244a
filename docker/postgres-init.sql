-- segmail keeps its data in its own database beside Airflow's metadata database.
CREATE DATABASE segmail;
GRANT ALL PRIVILEGES ON DATABASE segmail TO airflow;
