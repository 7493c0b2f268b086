-- The salesforce foreign data wrapper's validator: every option, every auth flow, and the refusals.
-- Every secret value used here starts with "Secret-": scripts/test fails if one shows up in an ERROR,
-- DETAIL or HINT line of the output.
\set VERBOSITY terse
CREATE EXTENSION sf_bulk;
SELECT fdwname, fdwvalidator::regproc FROM pg_foreign_data_wrapper WHERE fdwname = 'salesforce';

-- Servers: defaults apply when nothing is given.
CREATE SERVER sf_default FOREIGN DATA WRAPPER salesforce;
CREATE SERVER sf_prod FOREIGN DATA WRAPPER salesforce
  OPTIONS (login_url 'https://login.salesforce.com', api_version '62.0');
CREATE SERVER sf_sandbox FOREIGN DATA WRAPPER salesforce
  OPTIONS (login_url 'https://test.salesforce.com/', instance_url 'https://acme--uat.sandbox.my.salesforce.com');
CREATE SERVER sf_mydomain FOREIGN DATA WRAPPER salesforce OPTIONS (login_url 'https://acme.my.salesforce.com:443');
CREATE SERVER sf_emulator FOREIGN DATA WRAPPER salesforce OPTIONS (login_url 'http://127.0.0.1:8080');
CREATE SERVER sf_emulator6 FOREIGN DATA WRAPPER salesforce OPTIONS (login_url 'http://[::1]:8080');
CREATE SERVER sf_localhost FOREIGN DATA WRAPPER salesforce OPTIONS (login_url 'http://localhost:8080', api_version '47.0');
SELECT srvname, srvoptions FROM pg_foreign_server ORDER BY srvname;

-- Bad server options: each names the option and says what is expected.
CREATE SERVER bad FOREIGN DATA WRAPPER salesforce OPTIONS (loginurl 'https://login.salesforce.com');
CREATE SERVER bad FOREIGN DATA WRAPPER salesforce OPTIONS (login_url 'login.salesforce.com');
CREATE SERVER bad FOREIGN DATA WRAPPER salesforce OPTIONS (login_url 'ftp://login.salesforce.com');
CREATE SERVER bad FOREIGN DATA WRAPPER salesforce OPTIONS (login_url 'http://login.salesforce.com');
CREATE SERVER bad FOREIGN DATA WRAPPER salesforce OPTIONS (login_url 'http://10.0.0.1:8080');
CREATE SERVER bad FOREIGN DATA WRAPPER salesforce OPTIONS (login_url 'http://127.0.0.1.evil.com');
CREATE SERVER bad FOREIGN DATA WRAPPER salesforce OPTIONS (login_url 'https://user:pw@login.salesforce.com');
CREATE SERVER bad FOREIGN DATA WRAPPER salesforce OPTIONS (login_url 'https://login.salesforce.com?x=1');
CREATE SERVER bad FOREIGN DATA WRAPPER salesforce OPTIONS (login_url 'https://');
CREATE SERVER bad FOREIGN DATA WRAPPER salesforce OPTIONS (login_url 'https://login.salesforce.com:99999');
CREATE SERVER bad FOREIGN DATA WRAPPER salesforce OPTIONS (login_url 'https://login..salesforce.com');
CREATE SERVER bad FOREIGN DATA WRAPPER salesforce OPTIONS (instance_url 'https://acme.my.salesforce.com/services');
CREATE SERVER bad FOREIGN DATA WRAPPER salesforce OPTIONS (api_version '62');
CREATE SERVER bad FOREIGN DATA WRAPPER salesforce OPTIONS (api_version 'v62.0');
CREATE SERVER bad FOREIGN DATA WRAPPER salesforce OPTIONS (api_version '40.0');
CREATE SERVER bad FOREIGN DATA WRAPPER salesforce OPTIONS (api_version '62.5');
ALTER SERVER sf_prod OPTIONS (SET api_version 'latest');
ALTER SERVER sf_prod OPTIONS (ADD instance_url 'http://acme.my.salesforce.com');
SELECT count(*) AS bad_servers_created FROM pg_foreign_server WHERE srvname = 'bad';
-- A valid change goes through.
ALTER SERVER sf_prod OPTIONS (SET api_version '61.0');
SELECT srvoptions FROM pg_foreign_server WHERE srvname = 'sf_prod';

-- The wrapper itself takes no options.
ALTER FOREIGN DATA WRAPPER salesforce OPTIONS (ADD login_url 'https://login.salesforce.com');

-- User mappings, one per auth flow, each with exactly the fields the flow needs.
CREATE ROLE sfb_etl;
CREATE ROLE sfb_jwt;
CREATE ROLE sfb_cc;
CREATE ROLE sfb_refresh;
CREATE USER MAPPING FOR sfb_etl SERVER sf_prod
  OPTIONS (auth 'password', client_id '3MVG9EXAMPLEKEY', client_secret 'Secret-CS-1', username 'etl@acme.com',
           password 'Secret-PW-1');
CREATE USER MAPPING FOR sfb_cc SERVER sf_prod
  OPTIONS (auth 'client_credentials', client_id '3MVG9EXAMPLEKEY', client_secret 'Secret-CS-2');
CREATE USER MAPPING FOR sfb_refresh SERVER sf_prod
  OPTIONS (auth 'refresh_token', client_id '3MVG9EXAMPLEKEY', refresh_token 'Secret-RT-1');
CREATE USER MAPPING FOR sfb_refresh SERVER sf_sandbox
  OPTIONS (auth 'refresh_token', client_id '3MVG9EXAMPLEKEY', client_secret 'Secret-CS-3', refresh_token 'Secret-RT-2');
CREATE USER MAPPING FOR CURRENT_USER SERVER sf_emulator
  OPTIONS (auth 'access_token', access_token '00D000000000001AAA!Secret-AT-1');
\set jwt_key `cat test/emulator/keys/jwt_private.pem`
CREATE USER MAPPING FOR sfb_jwt SERVER sf_prod
  OPTIONS (auth 'jwt', client_id '3MVG9EXAMPLEKEY', username 'etl@acme.com', private_key :'jwt_key');
SELECT r.rolname, s.srvname, (SELECT array_agg(split_part(o, '=', 1) ORDER BY o) FROM unnest(umoptions) o) AS option_names
  FROM pg_user_mapping m JOIN pg_foreign_server s ON s.oid = m.umserver
  LEFT JOIN pg_roles r ON r.oid = m.umuser ORDER BY 1, 2;

-- Bad user mappings: unknown option, missing auth, unknown flow, a missing field for each flow,
-- a field the flow does not use, empty values, a private key that is not a PEM RSA key.
CREATE ROLE sfb_bad;
CREATE USER MAPPING FOR sfb_bad SERVER sf_prod OPTIONS (auth 'password', passwd 'Secret-X-1');
CREATE USER MAPPING FOR sfb_bad SERVER sf_prod OPTIONS (client_id '3MVG9EXAMPLEKEY');
CREATE USER MAPPING FOR sfb_bad SERVER sf_prod OPTIONS (auth 'oauth', client_id '3MVG9EXAMPLEKEY');
CREATE USER MAPPING FOR sfb_bad SERVER sf_prod
  OPTIONS (auth 'password', client_id '3MVG9EXAMPLEKEY', client_secret 'Secret-X-2', username 'etl@acme.com');
CREATE USER MAPPING FOR sfb_bad SERVER sf_prod
  OPTIONS (auth 'password', client_id '3MVG9EXAMPLEKEY', username 'etl@acme.com', password 'Secret-X-3');
CREATE USER MAPPING FOR sfb_bad SERVER sf_prod
  OPTIONS (auth 'password', client_secret 'Secret-X-4', username 'etl@acme.com', password 'Secret-X-5');
CREATE USER MAPPING FOR sfb_bad SERVER sf_prod
  OPTIONS (auth 'password', client_id '3MVG9EXAMPLEKEY', client_secret 'Secret-X-6', password 'Secret-X-7');
CREATE USER MAPPING FOR sfb_bad SERVER sf_prod OPTIONS (auth 'client_credentials', client_id '3MVG9EXAMPLEKEY');
CREATE USER MAPPING FOR sfb_bad SERVER sf_prod OPTIONS (auth 'client_credentials', client_secret 'Secret-X-8');
CREATE USER MAPPING FOR sfb_bad SERVER sf_prod OPTIONS (auth 'jwt', client_id '3MVG9EXAMPLEKEY', username 'etl@acme.com');
CREATE USER MAPPING FOR sfb_bad SERVER sf_prod OPTIONS (auth 'jwt', client_id '3MVG9EXAMPLEKEY', private_key :'jwt_key');
CREATE USER MAPPING FOR sfb_bad SERVER sf_prod OPTIONS (auth 'jwt', username 'etl@acme.com', private_key :'jwt_key');
CREATE USER MAPPING FOR sfb_bad SERVER sf_prod
  OPTIONS (auth 'jwt', client_id '3MVG9EXAMPLEKEY', username 'etl@acme.com', private_key 'Secret-not-a-key');
CREATE USER MAPPING FOR sfb_bad SERVER sf_prod
  OPTIONS (auth 'jwt', client_id '3MVG9EXAMPLEKEY', username 'etl@acme.com', private_key :'jwt_key', password 'Secret-X-9');
CREATE USER MAPPING FOR sfb_bad SERVER sf_prod OPTIONS (auth 'refresh_token', client_id '3MVG9EXAMPLEKEY');
CREATE USER MAPPING FOR sfb_bad SERVER sf_prod OPTIONS (auth 'refresh_token', refresh_token 'Secret-X-10');
CREATE USER MAPPING FOR sfb_bad SERVER sf_prod OPTIONS (auth 'access_token');
CREATE USER MAPPING FOR sfb_bad SERVER sf_prod OPTIONS (auth 'access_token', access_token '');
CREATE USER MAPPING FOR sfb_bad SERVER sf_prod
  OPTIONS (auth 'access_token', access_token '00D000000000001AAA!Secret-X-11', username 'etl@acme.com');
ALTER USER MAPPING FOR sfb_etl SERVER sf_prod OPTIONS (DROP password);
ALTER USER MAPPING FOR sfb_etl SERVER sf_prod OPTIONS (SET auth 'jwt');
SELECT count(*) AS bad_mappings_created FROM pg_user_mapping m JOIN pg_roles r ON r.oid = m.umuser
 WHERE r.rolname = 'sfb_bad';
-- The failed ALTERs changed nothing.
SELECT (SELECT array_agg(split_part(o, '=', 1) ORDER BY o) FROM unnest(umoptions) o) AS etl_options
  FROM pg_user_mapping m JOIN pg_roles r ON r.oid = m.umuser WHERE r.rolname = 'sfb_etl';
-- Switching flows works when the option set fits the new flow.
ALTER USER MAPPING FOR sfb_etl SERVER sf_prod
  OPTIONS (SET auth 'client_credentials', DROP username, DROP password);

DROP EXTENSION sf_bulk CASCADE;
DROP ROLE sfb_etl, sfb_jwt, sfb_cc, sfb_refresh, sfb_bad;
