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
serial.

Two more fixes make it fast enough for tests that append thousands of
entries:

- TCP_NODELAY on every connection (see NoDelayHandler): about 40 ms less
  per request.
- Transactions that cost what they touch (see cheap_transactions): moto's
  deep copy of the whole table, stream records included, made every
  transaction slower than the last (seconds per append on a table of a few
  thousand entries). With requests serialised, undoing a cancelled
  transaction only needs the items it names and the stream records it
  added.

Usage: python serve_serialized.py -H 127.0.0.1 -p PORT
"""

import argparse
import os
import signal
import socket
import sys
import threading

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


class NoDelayHandler(MotoRequestHandler):
    """Sends each write at once. werkzeug writes the headers and the body
    of a reply separately; with Nagle's algorithm on, the body then waits
    for the client's delayed ACK of the headers: about 40 ms per request."""

    def setup(self):
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


def cheap_transactions():
    """Replace moto's whole-table copy in TransactWriteItems by a journal
    of the items the transaction names. Only sound because Serialized runs
    one request at a time. If moto's internals are not as expected, leave
    moto alone (correct, only slower) and say so."""
    try:
        import moto.dynamodb.models as models
        from moto.dynamodb.models import DynamoDBBackend
        from moto.dynamodb.models.dynamo_type import DynamoType
        from moto.dynamodb.models.table import Table

        real_copy = models.copy
        original = DynamoDBBackend.transact_write_items
    except (ImportError, AttributeError) as err:
        print(f"serve_serialized: transactions stay slow: {err}", file=sys.stderr)
        return

    class CopyShim:
        """Stands in for the copy module inside moto.dynamodb.models: while
        a transaction runs, a Table "copied" for rollback is the table
        itself, so moto's own rollback is a no-op and the journal below
        does the work."""

        active = False

        def __getattr__(self, name):
            return getattr(real_copy, name)

        def deepcopy(self, x, memo=None):
            if CopyShim.active and isinstance(x, Table):
                return x
            return real_copy.deepcopy(x, memo)

    def locate(table, key):
        h = DynamoType(key[table.hash_key_attr])
        r = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
        return h, r

    def get(table, h, r):
        bucket = table.items.get(h)
        if table.range_key_attr is None:
            return bucket
        return None if bucket is None else bucket.get(r)

    def put_back(table, h, r, item):
        if table.range_key_attr is None:
            if item is None:
                table.items.pop(h, None)
            else:
                table.items[h] = item
            return
        if item is None:
            bucket = table.items.get(h)
            if bucket is not None:
                bucket.pop(r, None)
                if not bucket:
                    table.items.pop(h, None)
        else:
            table.items[h][r] = item

    def transact_write_items(self, transact_items):
        saved, streams = [], {}
        for entry in transact_items:
            for op in entry.values():
                if not isinstance(op, dict):
                    continue
                table = self.tables.get(op.get("TableName"))
                if table is None:
                    continue
                try:
                    h, r = locate(table, op.get("Key") or op.get("Item") or {})
                except (KeyError, TypeError, AttributeError):
                    continue  # moto refuses the request itself
                saved.append((table, h, r, real_copy.deepcopy(get(table, h, r))))
                if table.stream_shard is not None:
                    streams[table.name] = (table.stream_shard, len(table.stream_shard.items))
        CopyShim.active = True
        try:
            return original(self, transact_items)
        except BaseException:
            for table, h, r, item in reversed(saved):
                put_back(table, h, r, item)
            for shard, n in streams.values():
                del shard.items[n:]
            raise
        finally:
            CopyShim.active = False

    models.copy = CopyShim()
    DynamoDBBackend.transact_write_items = transact_write_items


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
    cheap_transactions()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        args.host,
        args.port,
        Serialized(app),
        threaded=True,
        request_handler=NoDelayHandler,
    )


if __name__ == "__main__":
    main()
