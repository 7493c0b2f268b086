"""Command line: /usr/bin/python3 test/emulator/sf_emulator [--host 127.0.0.1] [--port 0] [--url-file PATH]
    [--metadata FILE] [--data-dir DIR] [--processing-delay-ms N] [--token-ttl-seconds N] [--seed N] [--jwt-cert PEM]

(or, from test/emulator: /usr/bin/python3 -m sf_emulator ...). Prints the base URL once it listens, writes it to
--url-file atomically, serves until SIGTERM/SIGINT (exit code 0)."""

import argparse
import os
import signal
import sys
import threading

if __package__ in (None, ""):  # run as a directory: make the package importable under its name
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from sf_emulator import server  # noqa: E402
from sf_emulator.common import EMU_DIR  # noqa: E402
from sf_emulator.state import Emulator  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description="Salesforce Bulk API 2.0 emulator (loopback only)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--url-file")
    p.add_argument("--metadata", default=os.path.join(EMU_DIR, "metadata.json"))
    p.add_argument("--data-dir")
    p.add_argument("--processing-delay-ms", type=int, default=0)
    p.add_argument("--token-ttl-seconds", type=int, default=7200)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--jwt-cert", help="PEM certificate or public key for JWT bearer checks")
    args = p.parse_args(argv)
    if not server.loopback_only(args.host):
        sys.stderr.write("sf_emulator: refusing to bind to non-loopback address %r\n" % args.host)
        return 2
    emu = Emulator(args)
    server.start_gc_thread()
    fam6 = ":" in args.host
    srv = (server.Server6 if fam6 else server.Server)((args.host, args.port), server.Handler)
    srv.emu = emu
    host, port = srv.server_address[:2]
    emu.base_url = "http://%s:%d" % ("[%s]" % host if fam6 else host, port)

    def stop(signum, frame):
        threading.Thread(target=srv.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.url_file:
        tmp = args.url_file + ".tmp"
        with open(tmp, "w") as fh:
            fh.write(emu.base_url + "\n")
        os.replace(tmp, args.url_file)
    print(emu.base_url, flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        srv.server_close()
        try:
            emu.persist()
        except OSError as e:
            sys.stderr.write("sf_emulator: could not persist store: %s\n" % e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
