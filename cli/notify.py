"""`edgebatch notify`: the notification dispatcher on its own, for deployments and tests.

A scheduler process runs the same dispatcher as a thread; this runs it in the
foreground (`--once`: one pass, then exit), until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import threading


def main(argv: list[str], config: str | None) -> int:
    p = argparse.ArgumentParser(
        prog="edgebatch notify",
        description="notify job contacts of run outcomes and SLA misses (webhook, email)",
    )
    p.add_argument("--once", action="store_true", help="one pass (find, deliver due), then exit")
    p.add_argument("--interval", type=float, help="seconds between passes ([notify] interval_s)")
    args = p.parse_args(argv)
    import dataclasses

    from edgebatch.framework.notify.dispatcher import Dispatcher
    from edgebatch.framework.registry import discover
    from edgebatch.framework.state import StateStore
    from edgebatch.settings import load_settings

    settings = load_settings(config)
    if args.interval is not None:
        if args.interval <= 0:
            p.error("--interval must be positive")
        notify = dataclasses.replace(settings.notify, interval_s=args.interval)
        settings = dataclasses.replace(settings, notify=notify)
    with StateStore.from_settings(settings) as store:
        dispatcher = Dispatcher(store, discover(settings), settings)
        if args.once:
            done = dispatcher.run_once()
            print(
                f"events found {len(done.found)}, delivered {done.delivered}, "
                f"retrying {done.retrying}, given up {done.given_up}"
                + (f", still sending {done.still_sending}" if done.still_sending else "")
            )
            return 0
        stopped = threading.Event()
        previous = signal.signal(signal.SIGTERM, lambda *_: stopped.set())
        print(
            f"edgebatch notify: dispatching every {settings.notify.interval_s:g} s "
            f"from {store!r} (Ctrl-C stops)",
            flush=True,
        )
        dispatcher.start()
        try:
            stopped.wait()
        except KeyboardInterrupt:
            pass
        finally:
            dispatcher.stop(timeout=settings.notify.timeout_s * 4 + 10)
            signal.signal(signal.SIGTERM, previous)
    return 0
