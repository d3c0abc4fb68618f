"""Run moto's server with every request handled under one lock.

moto's DynamoDB backend is not safe against concurrent requests: a
TransactWriteItems deep-copies the whole table before it starts and, when
any condition fails, puts that copy back, so a transaction cancelled on one
thread silently undoes every write another thread committed meanwhile; and
nothing makes a conditional write's check-then-write atomic. The stock
`moto_server` serves each connection on its own thread. Racing appenders
against it can therefore see two winners or lose acknowledged writes, which
is the emulator's fault, not the code under test.

This launcher serves the same WSGI application (moto's
DomainDispatcherApplication, as moto_server does) but holds one process-wide
lock for the whole of each request, body included. Connections are still
accepted on threads (HTTP/1.1 keep-alive works), only the backend work is
serial. Usage: python serve_serialized.py -H 127.0.0.1 -p PORT
"""

import argparse
import os
import signal
import sys
import threading

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


class Serialized:
    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            result = self.app(environ, start_response)
            try:
                body = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        return [body]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        args.host,
        args.port,
        Serialized(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
