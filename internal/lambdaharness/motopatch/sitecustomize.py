"""Make moto's TransactWriteItems cost O(items in the transaction).

Loaded by the end-to-end harness (through PYTHONPATH) into the moto server
it starts, and only when SHEETLOG_MOTO_FAST_TRANSACT=1.

moto 5.2's transact_write_items deep-copies every table a transaction
touches, once per item of the transaction, so that it can put the copy
back if any item fails. The copy includes every item of the table and
every record of its stream, so each append to the event log (a
two-item transaction) costs time proportional to everything ever written:
a few thousand appends take minutes, then hours.

Here the rollback copies only what the transaction can change: the items
it names (deep copies, taken before it runs) and the length of each
touched table's stream. On failure those items are put back and the
stream records the partial transaction added are cut off, which is what
restoring the whole-table copy achieved. The server serialises requests
(serve_serialized.py), so nothing else runs in between.

Anything unexpected while preparing (a request moto would reject anyway)
falls back to moto's own code, unchanged.
"""

import copy
import os


def _install():
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    original = DynamoDBBackend.transact_write_items
    real_deepcopy = copy.deepcopy

    def keep_tables(x, memo=None):
        if isinstance(x, Table):
            return x
        return real_deepcopy(x, memo)

    def key_of(table, op):
        attrs = op["Item"] if "Item" in op else op["Key"]
        h = DynamoType(attrs[table.hash_key_attr])
        r = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr else None
        return h, r

    def current(table, h, r):
        if r is None:
            return table.items.get(h)
        inner = table.items.get(h)
        return None if inner is None else inner.get(r)

    def transact_write_items(self, transact_items):
        saved = []
        streams = {}
        try:
            for ti in transact_items:
                _, op = next(iter(ti.items()))
                table = self.tables.get(op.get("TableName"))
                if table is None:
                    continue
                h, r = key_of(table, op)
                item = current(table, h, r)
                saved.append((table, h, r, None if item is None else real_deepcopy(item)))
                if table.stream_shard is not None and id(table) not in streams:
                    streams[id(table)] = (table, len(table.stream_shard.items))
        except Exception:
            return original(self, transact_items)

        copy.deepcopy = keep_tables
        try:
            return original(self, transact_items)
        except BaseException:
            for table, h, r, item in reversed(saved):
                if r is None:
                    if item is None:
                        table.items.pop(h, None)
                    else:
                        table.items[h] = item
                else:
                    inner = table.items.get(h)
                    if item is None:
                        if inner is not None:
                            inner.pop(r, None)
                            if not inner:
                                table.items.pop(h, None)
                    else:
                        table.items[h][r] = item
            for table, n in streams.values():
                del table.stream_shard.items[n:]
            raise
        finally:
            copy.deepcopy = real_deepcopy

    DynamoDBBackend.transact_write_items = transact_write_items


if os.environ.get("SHEETLOG_MOTO_FAST_TRANSACT") == "1":
    _install()
