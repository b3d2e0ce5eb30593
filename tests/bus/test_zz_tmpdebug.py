import asyncio, time, sys, traceback
import pytest
from tests.support.redis_server import RedisServer
from voxfleet.bus.redis import RedisBus

@pytest.mark.parametrize("i", range(40))
async def test_dbg(i: int) -> None:
    with RedisServer() as srv:
        bus = RedisBus(srv.url)
        assert await bus.ping()
        srv.stop()
        t = asyncio.create_task(bus.publish("x", b"x"))
        await asyncio.sleep(0)
        srv.start()
        await asyncio.wait_for(t, 10)
        r = bus._reader
        assert r is not None
        r.cancel()
        done, _ = await asyncio.wait([r], timeout=2)
        if not done:
            print("STUCK", r, file=sys.stderr)
            r.print_stack(file=sys.stderr)
            await asyncio.wait([r], timeout=10)
            print("after", r, file=sys.stderr)
        await bus.close()
        assert done
