-- The sf_bulk demo, run by scripts/demo against the project's Bulk API 2.0 emulator.
\echo '--- 1. Install the extension (needs shared_preload_libraries = ''sf_bulk'')'
CREATE EXTENSION sf_bulk;

\echo '--- 2. A server for the org: here the emulator on loopback (a real org: https://login.salesforce.com)'
CREATE SERVER emulator FOREIGN DATA WRAPPER salesforce
  OPTIONS (login_url :'emulator_url', api_version '62.0');

\echo '--- 3. Credentials in a user mapping: the emulator default org''s connected app and user'
CREATE USER MAPPING FOR CURRENT_USER SERVER emulator
  OPTIONS (auth 'password', client_id 'sf_bulk_emulator_client', client_secret 'emulator-client-secret',
           username 'etl@example.com', password 'emulator-password');

\echo '--- 4. Bad settings are refused with errors that name the option (and never echo a secret):'
\set ON_ERROR_STOP 0
CREATE SERVER typo FOREIGN DATA WRAPPER salesforce OPTIONS (login_url 'http://login.salesforce.com');
ALTER USER MAPPING FOR CURRENT_USER SERVER emulator OPTIONS (DROP password);
\set ON_ERROR_STOP 1

SELECT srvname, srvoptions FROM pg_foreign_server;
SELECT srvname, usename FROM pg_user_mappings;
