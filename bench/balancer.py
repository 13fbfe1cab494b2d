"""``python -m bench.balancer PORT BACKEND_PORT...``: tests/support/lb.py's round-robin TCP balancer in a process
of its own, on uvloop when it is installed.

The scale-out benchmark puts it in front of several Dockyard replicas. In a process of its own, its copying does
not compete with the benchmark client for one GIL. It runs until SIGTERM or SIGINT, then prints how many
connections each backend got.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from tests.support.lb import RoundRobinBalancer


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python -m bench.balancer PORT BACKEND_PORT...", file=sys.stderr)
        return 2
    port, *backends = (int(arg) for arg in argv)
    try:
        import uvloop
    except ImportError:
        pass
    else:
        # RoundRobinBalancer makes its loop with asyncio.new_event_loop(), which asks the policy.
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    # Blocked before the balancer's thread starts (it inherits the mask), so that sigwait() below receives them.
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    balancer = RoundRobinBalancer(backends)
    balancer.port = port
    balancer.start()
    print(f"balancing 127.0.0.1:{port} over {', '.join(map(str, backends))}", flush=True)
    signal.sigwait(stop_signals)
    balancer.stop()
    counts = ", ".join(f"{backend}: {count}" for backend, count in balancer.connections.items())
    print(f"connections per backend port: {counts}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
