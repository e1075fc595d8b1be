"""aiohttp JSON API over a ChainNode, plus the block producer. See docs/chain-api.md."""
from __future__ import annotations

import asyncio
import json
import logging
import time

from aiohttp import web

from subnet.chain.calls import HANDLERS
from subnet.chain.envelope import ChainError
from subnet.chain.node import ChainNode

log = logging.getLogger("tessera.chain")
MAX_ADVANCE = 100_000


def _reject_constant(name: str):
    raise ValueError(f"{name} is not allowed (amounts and prices are finite)")


def parse_body(raw: bytes) -> object:
    """Strict JSON: NaN/Infinity refused; nesting bombs and bad UTF-8 become a `malformed` error."""
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ChainError("malformed", f"body is not valid JSON: {str(exc)[:200]}") from None


def _error(exc: ChainError) -> web.Response:
    return web.json_response(exc.to_json(), status=exc.status)


def _int_arg(request: web.Request, name: str) -> int:
    text = request.match_info[name]
    try:
        value = int(text)
    except ValueError:
        raise ChainError("bad_params", f"{name} must be an integer, got {text!r}") from None
    if value < 0:
        raise ChainError("bad_params", f"{name} must be >= 0")
    return value


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}


@web.middleware
async def json_errors(request: web.Request, handler):
    """Every error, including aiohttp's own (unknown route, body too large), is JSON with a code."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, f"http_{exc.status}")
        return web.json_response({"error": {"code": code, "message": exc.text or exc.reason}}, status=exc.status)
    except Exception:
        log.exception("internal error on %s %s", request.method, request.path)
        return web.json_response({"error": {"code": "internal", "message": "internal error (see the chain log)"}},
                                 status=500)


def measured(metrics):
    """Middleware that counts each request by kind (a call's name, else the route) and outcome (ok
    or the error code a handler noted) and times it, for `subnet.metrics.ChainMetrics`."""
    @web.middleware
    async def middleware(request: web.Request, handler):
        started = time.perf_counter()
        response = await handler(request)
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        kind = request.get("call_kind") or f"{request.method} {route}"
        outcome = request.get("outcome") or ("ok" if response.status < 400 else f"http_{response.status}")
        metrics.observe(kind, outcome, time.perf_counter() - started)
        return response
    return middleware


def make_app(node: ChainNode, block_time: float, metrics=None) -> web.Application:
    """block_time > 0: a block every block_time seconds; 0: dev mode, blocks only on POST /dev/advance.
    `metrics`: a `subnet.metrics.ChainMetrics` to record requests and the block height in."""
    dev = block_time == 0
    middlewares = [json_errors] if metrics is None else [measured(metrics), json_errors]
    app = web.Application(client_max_size=node.params.max_call_bytes, middlewares=middlewares)
    routes = web.RouteTableDef()
    if metrics is not None:
        metrics.block.set_function(lambda: node.block)

    def refused(request: web.Request, exc: ChainError) -> web.Response:
        request["outcome"] = exc.reason
        return _error(exc)

    def query(handler):
        async def wrapped(request: web.Request) -> web.Response:
            try:
                return web.json_response(handler(request))
            except ChainError as exc:
                return refused(request, exc)
        return wrapped

    routes.get("/head")(query(lambda r: {**node.head(), "block_time": block_time, "dev": dev}))
    routes.get("/blocks/{number}")(query(lambda r: node.block_timestamp(_int_arg(r, "number"))))
    routes.get("/subnets")(query(lambda r: node.subnets()))
    routes.get("/metagraph/{netuid}")(query(lambda r: node.metagraph(_int_arg(r, "netuid"))))
    routes.get("/validators/{netuid}/{block}")(query(lambda r: node.validator_set(
        _int_arg(r, "netuid"), _int_arg(r, "block"))))
    routes.get("/commitments/{netuid}")(query(lambda r: node.commitments(_int_arg(r, "netuid"))))
    routes.get("/weights/{netuid}")(query(lambda r: node.weights(_int_arg(r, "netuid"))))
    routes.get("/pool/{netuid}")(query(lambda r: node.pool(_int_arg(r, "netuid"))))
    routes.get("/accounts/{address}")(query(lambda r: node.account(r.match_info["address"])))
    routes.get("/stake/{netuid}/{hotkey}/{coldkey}")(query(lambda r: node.stake(
        _int_arg(r, "netuid"), r.match_info["hotkey"], r.match_info["coldkey"])))
    routes.get("/audit")(query(lambda r: node.audit()))

    @routes.post("/call")
    async def call(request: web.Request) -> web.Response:
        try:
            body = parse_body(await request.read())
            name = body.get("call") if isinstance(body, dict) else None
            request["call_kind"] = f"call {name}" if isinstance(name, str) and name in HANDLERS else "call (unknown)"
            return web.json_response(node.apply_call(body))
        except ChainError as exc:
            return refused(request, exc)

    if dev:
        @routes.post("/dev/advance")
        async def advance(request: web.Request) -> web.Response:
            try:
                body = parse_body(await request.read() or b"{}")
                blocks = body.get("blocks", 1) if isinstance(body, dict) else None
                if not isinstance(blocks, int) or isinstance(blocks, bool) or not 1 <= blocks <= MAX_ADVANCE:
                    raise ChainError("bad_params", f"blocks must be an integer in [1, {MAX_ADVANCE}]")
            except ChainError as exc:
                return _error(exc)
            info = {}
            for _ in range(blocks):
                info = node.produce_block()
            return web.json_response(info)

    app.add_routes(routes)

    if not dev:
        async def producer(app: web.Application):
            task = asyncio.create_task(_produce_blocks(node, block_time))
            yield
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        app.cleanup_ctx.append(producer)
    return app


async def _produce_blocks(node: ChainNode, block_time: float) -> None:
    """A block every block_time seconds on a fixed schedule; a late block does not shift the next."""
    next_at = time.monotonic() + block_time
    while True:
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        try:
            info = node.produce_block()
        except Exception:  # the block's transaction rolled back; try again at the next slot
            log.exception("block production failed; retrying at the next block time")
        else:
            if info["epochs"]:
                log.info("block %d: epoch on subnets %s", info["block"], info["epochs"])
        next_at += block_time
        if next_at < time.monotonic():  # fell behind by more than a block: resync, don't burst
            next_at = time.monotonic() + block_time
