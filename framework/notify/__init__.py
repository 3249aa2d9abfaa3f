"""Notifications: who hears of a run's outcome, through which channel, and exactly once.

`contacts` holds the pure values a job declares (contacts, events, SLA) and is all
that job definitions import, so loading a job stays light. The outbox lives in the
state store (`framework/state/notifications.py`); `dispatcher.Dispatcher` finds the
outcomes and SLA misses there, enqueues them, and delivers them by webhook and email::

    from edgebatch.framework.notify.dispatcher import Dispatcher

    dispatcher = Dispatcher(store, registry, settings)
    dispatcher.start()   # a daemon thread: scan, enqueue, deliver every [notify] interval_s
    ...
    dispatcher.stop()
"""
