"""A TCP proxy on loopback that cuts connections or lets them go silent, as a NAT or firewall does."""

from __future__ import annotations

import asyncio

from mailflow.demo_servers import HOST, LoopThread, free_port


class TcpProxy:
    """Forwards 127.0.0.1:port to a target; `cut()` closes every connection, `blackhole()`
    keeps them open but stops forwarding (a silent drop), `heal()` forwards again."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.host = HOST
        self.port = free_port()
        self._target = (target_host, target_port)
        self._loop = LoopThread(f"proxy-{self.port}")
        self._writers: set[asyncio.StreamWriter] = set()
        self._flowing = True
        self._server = self._loop.run(self._start())

    async def _start(self) -> asyncio.AbstractServer:
        return await asyncio.start_server(self._serve, host=HOST, port=self.port,
                                          reuse_address=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    if self._flowing:
                        dst.write(data)
                        await dst.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        self._writers.difference_update((writer, up_writer))

    def cut(self) -> None:
        async def cut() -> None:
            for w in list(self._writers):
                w.transport.abort()
            self._writers.clear()

        self._loop.run(cut())

    def blackhole(self) -> None:
        self._flowing = False

    def heal(self) -> None:
        self._flowing = True

    def stop(self) -> None:
        try:
            self.cut()

            async def close() -> None:
                self._server.close()
                await self._server.wait_closed()

            self._loop.run(close())
        finally:
            self._loop.stop()


def start_tcp_proxy(target_host: str, target_port: int) -> TcpProxy:
    return TcpProxy(target_host, target_port)
