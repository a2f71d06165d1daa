"""The library internals the project relies on, by name: an upgrade that removes or reshapes one
fails here, naming it, instead of silently switching a limit off.

They are used in three modules only: ``cinema_api/runtime/server.py`` (waitress),
``cinema_api/runtime/pyramid_hooks.py`` (Pyramid and Cornice) and
``cinema_api/infrastructure/pony_internals.py`` (Pony ORM). Each test below checks one of them
against the installed library, on real objects where the internal is an attribute of an instance.
"""

import inspect
import socket

import pytest


def requires(owner, *names):
    """Each of ``names`` is an attribute of ``owner``; the failure names the first one missing."""
    label = getattr(owner, "__qualname__", None) or type(owner).__qualname__
    for name in names:
        assert hasattr(owner, name), "%s.%s is gone: the internal the project relies on changed" % (label, name)


def parameters(function, *names):
    signature = inspect.signature(function)
    for name in names:
        assert name in signature.parameters, "%s() no longer takes %r" % (function.__qualname__, name)


# ---------------------------------------------------------------- waitress (cinema_api/runtime/server.py)


@pytest.fixture
def waitress_objects():
    """A real waitress server, a real connection (our Channel) with a request parsed by waitress,
    and the task waitress would run for it."""
    import waitress
    from waitress.task import ThreadedTaskDispatcher

    from cinema_api.runtime.server import Channel, KeepAliveTask

    queued = []

    class Recording(ThreadedTaskDispatcher):
        def add_task(self, task):
            queued.append(task)

    sockets = {}
    server = waitress.create_server(lambda environ, start_response: [], map=sockets, _dispatcher=Recording(), host="127.0.0.1", port=0)
    ours, theirs = socket.socketpair()
    channel = Channel(server, ours, ("127.0.0.1", 1), server.adj, map=sockets)
    channel.received(b"POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    task = KeepAliveTask(channel, channel.requests[0])
    yield server, channel, task, queued
    ours.close()
    theirs.close()
    server.close()


def test_waitress_server_and_thread_pool(waitress_objects):
    import waitress
    from waitress import wasyncore
    from waitress.adjustments import Adjustments
    from waitress.task import ThreadedTaskDispatcher

    server, channel, _, queued = waitress_objects
    parameters(waitress.create_server, "map", "_dispatcher")
    requires(server, "channel_class", "task_dispatcher", "add_task", "print_listen", "socket", "accepting", "adj")
    requires(ThreadedTaskDispatcher, "add_task", "set_thread_count", "shutdown")
    parameters(ThreadedTaskDispatcher.shutdown, "cancel_pending", "timeout")
    requires(wasyncore, "loop", "close_all", "dispatcher")
    parameters(wasyncore.loop, "timeout", "map", "use_poll", "count")
    requires(wasyncore.dispatcher, "close")
    requires(Adjustments(), "threads", "outbuf_high_watermark", "channel_timeout", "channel_request_lookahead", "send_bytes")
    assert queued == [channel], "waitress no longer queues a connection through server.add_task -> dispatcher.add_task"


def test_waitress_connection(waitress_objects):
    from waitress.channel import HTTPChannel

    _, channel, _, _ = waitress_objects
    requires(HTTPChannel, "write_soon", "writable", "readable", "handle_write", "handle_close", "del_channel", "received", "service",
             "cancel", "_flush_outbufs_below_high_watermark", "_flush_some_if_lockable")
    assert list(inspect.signature(HTTPChannel._flush_outbufs_below_high_watermark).parameters) == ["self"]
    requires(channel, "requests", "will_close", "close_when_flushed", "total_outbufs_len", "outbuf_lock", "connected",
             "last_activity", "adj", "server", "addr")
    assert channel.outbuf_lock.acquire(False), "outbuf_lock is no longer a lock the loop and the task share"
    channel.outbuf_lock.release()


def test_waitress_request_and_task(waitress_objects):
    _, channel, task, _ = waitress_objects
    request = channel.requests[0]
    # the slow and quick lanes read these of the parsed request
    assert getattr(request, "command", None) == "POST", "waitress's parsed request has no .command"
    assert getattr(request, "path", None) == "/v1/auth/login", "waitress's parsed request has no .path"
    requires(request, "headers")
    requires(task, "build_response_header", "set_close_on_finish", "write", "version", "close_on_finish", "wrote_header",
             "request", "channel", "has_body", "complete")
    assert "waitress.client_disconnected" in task.get_environment(), "waitress no longer offers waitress.client_disconnected"


# ---------------------------------------------------------------- Pyramid and Cornice (cinema_api/runtime/pyramid_hooks.py)


def test_pyramid_and_cornice_internals():
    from cornice.pyramidhook import wrap_request
    from cornice.service import Service
    from pyramid.config import Configurator
    from pyramid.interfaces import IRequestExtensions
    from pyramid.urldispatch import RoutesMapper

    requires(RoutesMapper, "__call__", "connect", "get_routes")
    with Configurator() as config:
        config.include("cornice")
        config.add_request_method(lambda request: 1, "probe", reify=True)
        service = Service(name="probe", path="/probe")
        service.add_view("GET", lambda request: {})
        config.add_cornice_service(service)
        config.commit()
        registry = config.registry
    extensions = registry.queryUtility(IRequestExtensions)
    assert isinstance(getattr(extensions, "descriptors", None), dict), "IRequestExtensions.descriptors is gone"
    assert "probe" in extensions.descriptors, "reified request methods are no longer kept in descriptors"
    handlers = [getattr(r.handler, "__wrapped__", r.handler) for r in registry.registeredHandlers()]
    assert wrap_request in handlers, "Cornice no longer subscribes cornice.pyramidhook.wrap_request"
    requires(registry, "cornice_services")
    method, _, args = service.definitions[0]
    assert method == "GET" and isinstance(args, dict), "cornice Service.definitions is no longer (method, view, args)"
    requires(registry, "has_listeners")


# ---------------------------------------------------------------- Pony ORM (cinema_api/infrastructure/pony_internals.py)


def test_pony_internals(tmp_path):
    from pony.orm import Database, db_session
    from pony.orm.dbapiprovider import DBAPIProvider, Pool, wrap_dbapi_exceptions
    from pony.orm.dbproviders.postgres import PGPool, PGProvider
    from pony.orm.dbproviders.sqlite import SQLiteProvider

    requires(Database, "_get_cache", "_exec_raw_sql", "call_on_connect")
    parameters(Database._exec_raw_sql, "sql", "globals", "locals", "frame_depth", "start_transaction")
    requires(DBAPIProvider, "connect", "should_reconnect", "execute", "paramstyle")
    requires(SQLiteProvider, "acquire_lock", "release_lock")
    requires(PGProvider, "get_pool", "should_reconnect")
    requires(Pool, "connect", "drop")
    requires(PGPool, "release", "_connect")
    assert callable(wrap_dbapi_exceptions)
    db = Database()
    db.bind(provider="sqlite", filename=str(tmp_path / "contract.sqlite"), create_db=True)
    db.generate_mapping(create_tables=False)
    with db_session:
        cache = db._get_cache()
        requires(cache, "prepare_connection_for_query_execution", "reconnect", "immediate", "in_transaction", "modified")
        connection, is_new = db.provider.connect()  # Pool.connect: (connection, whether it is new)
        assert is_new in (True, False) and hasattr(connection, "cursor")
        requires(db.provider, "pool")
    db.disconnect()
