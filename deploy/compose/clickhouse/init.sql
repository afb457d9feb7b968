-- The read-only user Grafana's ClickHouse datasource logs in as
-- (deploy/grafana/provisioning/datasources/vigil.yaml): the dashboards only SELECT.
CREATE USER IF NOT EXISTS vigil_reader IDENTIFIED BY 'vigil-reader-local';
GRANT SELECT ON vigil.* TO vigil_reader;
