-- One database per service, each owned by its own role; a service never reads another's.
-- Generated from services.toml by `make registry`.
-- Runs once, when the PostgreSQL volume is first initialised (docker-entrypoint-initdb.d).
-- The passwords are for a local compose stack only; real deployments set their own.

CREATE ROLE org LOGIN PASSWORD 'org';
CREATE DATABASE org OWNER org ENCODING 'UTF8' TEMPLATE template0;

CREATE ROLE customer LOGIN PASSWORD 'customer';
CREATE DATABASE customer OWNER customer ENCODING 'UTF8' TEMPLATE template0;

CREATE ROLE sales LOGIN PASSWORD 'sales';
CREATE DATABASE sales OWNER sales ENCODING 'UTF8' TEMPLATE template0;

CREATE ROLE notify LOGIN PASSWORD 'notify';
CREATE DATABASE notify OWNER notify ENCODING 'UTF8' TEMPLATE template0;
