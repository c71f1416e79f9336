#!/usr/bin/env python3
"""Open many idle HTTP/1.1 keep-alive connections to one server and hold them.

Each connection sends one `GET /` request, reads the whole response, then
stays open without sending anything more. Once every connection has been
tried, one line is printed on stdout:

    READY open=N failed=M seconds=S

then the script waits for SIGTERM or SIGINT, checks how many connections
the server has closed in the meantime, prints

    DONE alive=N closed=M

and exits. Used by bench/gateway.sh to measure a proxy's idle-connection
memory.

Source addresses: one source IP has a limited number of ephemeral ports
(net.ipv4.ip_local_port_range), so with more than --per-source connections
the client binds them to 127.0.0.2, 127.0.0.3, ... in turn.
"""

import argparse
import asyncio
import resource
import signal
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--count", type=int, default=10000)
    p.add_argument("--concurrency", type=int, default=200,
                   help="connections being opened at once")
    p.add_argument("--per-source", type=int, default=20000,
                   help="connections per source address before using the next "
                        "127.0.0.x")
    p.add_argument("--timeout", type=float, default=10.0,
                   help="seconds allowed to connect and read one response")
    p.add_argument("--path", default="/")
    p.add_argument("--host-header", default="localhost")
    return p.parse_args()


async def read_response(reader):
    """Reads one HTTP/1.1 response (Content-Length or chunked). Returns the
    status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        n = int(headers["content-length"])
        if n:
            await reader.readexactly(n)
    elif "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status


async def open_one(i, args, sem, conns, errors):
    src = None
    if args.count > args.per_source:
        src = (f"127.0.0.{1 + i // args.per_source}", 0)
    request = (f"GET {args.path} HTTP/1.1\r\nHost: {args.host_header}\r\n"
               f"User-Agent: rampart-bench-idle\r\n\r\n").encode()
    async with sem:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(args.host, args.port, local_addr=src),
                args.timeout)
        except Exception as e:  # noqa: BLE001 - counted and summarised
            errors[f"connect: {type(e).__name__}: {e}"] = \
                errors.get(f"connect: {type(e).__name__}: {e}", 0) + 1
            return
        try:
            writer.write(request)
            await writer.drain()
            status = await asyncio.wait_for(read_response(reader), args.timeout)
            if status != 200:
                raise RuntimeError(f"status {status}")
        except Exception as e:  # noqa: BLE001
            key = f"request: {type(e).__name__}: {e}"
            errors[key] = errors.get(key, 0) + 1
            writer.close()
            return
        conns.append((reader, writer))


async def main():
    args = parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < args.count + 100:
        want = min(hard, max(args.count + 1000, 65536)) if hard != resource.RLIM_INFINITY \
            else max(args.count + 1000, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError):
            pass
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if soft < args.count + 100:
            print(f"warning: open-file limit {soft} is below {args.count}+100; "
                  "some connections will fail", file=sys.stderr)

    sem = asyncio.Semaphore(args.concurrency)
    conns, errors = [], {}
    t0 = time.monotonic()
    await asyncio.gather(*(open_one(i, args, sem, conns, errors)
                           for i in range(args.count)))
    took = time.monotonic() - t0
    failed = args.count - len(conns)
    for msg, n in sorted(errors.items(), key=lambda kv: -kv[1])[:5]:
        print(f"  {n} x {msg}", file=sys.stderr)
    print(f"READY open={len(conns)} failed={failed} seconds={took:.1f}", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()

    # The event loop kept reading while we waited: a connection the server
    # closed has seen EOF (or a reset), one that got unexpected bytes has
    # them buffered. Either way it is no longer a clean idle connection.
    await asyncio.sleep(0.2)
    closed = sum(1 for reader, _ in conns
                 if reader.at_eof() or reader.exception() is not None
                 or len(getattr(reader, "_buffer", b"")) > 0)
    print(f"DONE alive={len(conns) - closed} closed={closed}", flush=True)
    for _, writer in conns:
        writer.close()


if __name__ == "__main__":
    asyncio.run(main())
