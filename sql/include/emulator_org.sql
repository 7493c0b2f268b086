-- The set-up of the regress files that talk to the emulator: the extension, the emulator (as scripts/test
-- starts it) as the server `emulator`, and the default org's credentials in a user mapping for :mapping_for
-- (PUBLIC or CURRENT_USER, set before \i).
\getenv emulator_url SFB_EMULATOR_URL
CREATE EXTENSION sf_bulk;
CREATE SERVER emulator FOREIGN DATA WRAPPER salesforce OPTIONS (login_url :'emulator_url');
\set key `cat test/emulator/default_org.json | /usr/bin/python3 -c "import json,sys; o=json.load(sys.stdin); print(o['client_id'])"`
\set secret `cat test/emulator/default_org.json | /usr/bin/python3 -c "import json,sys; o=json.load(sys.stdin); print(o['client_secret'])"`
CREATE USER MAPPING FOR :mapping_for SERVER emulator
  OPTIONS (auth 'password', client_id :'key', client_secret :'secret', username 'etl@sfbulk.emulator',
           password 'emulator-password');
