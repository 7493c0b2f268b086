"""Salesforce Bulk API 2.0 emulator for sf_bulk's tests, the demo and users' offline pipeline tests.

Python 3 standard library only (plus Debian's python3-cryptography for RS256 JWT checks). Start it with
`/usr/bin/python3 test/emulator/sf_emulator --port 0 --url-file PATH` (see ../README.md and __main__.py).

Modules: common (ids, clock, errors, requests, route tables), store (schema, values, records), soql, auth, rest,
jobs (what ingest and query jobs share), ingest, query, faults, admin, state (the org), server (HTTP)."""
