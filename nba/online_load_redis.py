"""The Redis half of :mod:`nba.online_load`: Feast's hashes written in bulk.

One ``HSET`` per customer (its features under Feast's field hashes, and Feast's timestamp
field), the commands of a chunk framed here as RESP and sent on one connection by a thread
while the next chunk is encoded.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from nba.online_load import resp

if TYPE_CHECKING:
    from nba.online_load import OnlineWriter


def write_redis(
    writer: OnlineWriter, profiles: pa.Table, progress: Callable[[int], None] | None
) -> int:
    """One ``HSET`` per customer (its features and Feast's timestamp field), the
    commands of a chunk framed here and sent at once on one connection."""
    from feast.infra.online_stores.helpers import _mmh3
    from google.protobuf.timestamp_pb2 import Timestamp

    client = redis_client(writer.config.online_store)
    project = writer.config.project.encode("utf-8")
    view = writer.view.name
    ts_field = resp(f"_ts:{view}".encode())
    fields = [_mmh3(f"{view}:{name}") for name in writer.feature_names]
    arity = b"*%d\r\n$4\r\nHSET\r\n" % (2 + 2 * (len(fields) + 1))
    stamp_cache: dict[datetime, bytes] = {}

    def stamp_field(stamp: datetime) -> bytes:
        hit = stamp_cache.get(stamp)
        if hit is None:
            proto = Timestamp()
            proto.FromDatetime(stamp.replace(tzinfo=UTC))
            hit = stamp_cache[stamp] = ts_field + resp(proto.SerializeToString())
        return hit

    # Encoding (this thread) overlaps with Redis working through the previous chunk
    # (the sender thread waits on the socket without holding the GIL).
    sender = _Sender(client)
    try:
        n = 0
        for keys, stamps, values, _ in writer.chunks(profiles, redis_fields=fields):
            heads = [arity + resp(k + project) for k in keys]
            rows = map(b"".join, zip(*values, strict=True))
            tails = map(stamp_field, stamps)
            sender.send(
                b"".join(itertools.chain.from_iterable(zip(heads, rows, tails, strict=True))),
                len(keys),
            )
            n += len(keys)
            if progress:
                progress(len(keys))
        sender.finish()
        return n
    finally:
        sender.close()


class _Sender:
    """Sends framed commands on one connection from a thread and checks every reply."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._conn = client.connection_pool.get_connection()
        self._queue: queue.Queue[tuple[bytes, int] | None] = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="redis-load", daemon=True)
        self._thread.start()

    def send(self, blob: bytes, replies: int) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put((blob, replies))

    def finish(self) -> None:
        """Wait until every command is answered; raise the first failure."""
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=60)
        if self._error is not None:
            self._conn.disconnect()  # replies may be left unread: never reuse it
        self._client.connection_pool.release(self._conn)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is not None:
                continue  # drain: the caller raises at its next send
            blob, replies = item
            try:
                self._conn.send_packed_command([blob])
                for _ in range(replies):
                    reply = self._conn.read_response()
                    if isinstance(reply, Exception):
                        raise reply
            except BaseException as exc:
                self._error = exc


def redis_client(config: Any) -> Any:
    """A Redis client for Feast's ``connection_string`` (``host:port[,password=..]``, or a
    ``redis://`` URL)."""
    import redis

    text = str(config.connection_string)
    if text.startswith(("redis://", "rediss://", "unix://")):
        return redis.Redis.from_url(text)
    host_port, *options = text.split(",")
    host, _, port = host_port.partition(":")
    kwargs: dict[str, Any] = {"host": host or "localhost", "port": int(port or 6379)}
    for option in options:
        name, _, value = option.partition("=")
        if name == "password":
            kwargs["password"] = value
        elif name == "db":
            kwargs["db"] = int(value)
        elif name == "ssl":
            kwargs["ssl"] = value.lower() == "true"
    return redis.Redis(**kwargs)
