"""ChainClient against a server that is not a well-behaved chain: each bad reply is a ChainCallError
naming it, never a traceback from deep inside the client."""
from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from subnet.chain.client import ChainCallError, ChainClient
from subnet.keys import Keypair


async def serve(routes: web.RouteTableDef) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.add_routes(routes)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)            # a port from the OS, held while we use it
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


def test_a_head_without_a_genesis_hash_refuses_to_sign():
    routes = web.RouteTableDef()

    @routes.get("/head")
    async def head(request):
        return web.json_response({"block": 5, "genesis_hash": "not-a-hash"})

    async def go():
        runner, url = await serve(routes)
        try:
            async with ChainClient(url, retries=0) as client:
                assert await client.get_current_block() == 5
                with pytest.raises(ChainCallError) as info:
                    await client.transfer(Keypair.generate(), Keypair.generate().address, 1)
                return info.value
        finally:
            await runner.cleanup()

    error = asyncio.run(go())
    assert error.reason == "bad_reply" and "genesis_hash" in str(error)


@pytest.mark.parametrize("status", [200, 502])
def test_a_reply_that_is_not_json_is_a_bad_reply(status):
    routes = web.RouteTableDef()

    @routes.get("/head")
    async def head(request):
        return web.Response(text="<html>502 Bad Gateway</html>", status=status, content_type="text/html")

    async def go():
        runner, url = await serve(routes)
        try:
            async with ChainClient(url, retries=0) as client:
                with pytest.raises(ChainCallError) as info:
                    await client.head()
                return info.value
        finally:
            await runner.cleanup()

    error = asyncio.run(go())
    assert error.reason == "bad_reply" and f"HTTP {status}" in str(error)
