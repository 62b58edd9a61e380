"""The peer workflow: one DSAR request as a Celery chord on Redis.

A request is chord(group(store task per store), finalize): the four store
tasks do nothing (no I/O) and return a small result; finalize, run once all
four returned, builds the request's result from them and, in one MULTI/EXEC,
writes the request's completed record and appends its id to the list the
load generator pops ("the completed notification"). Broker and result
backend are the same Redis, at $CELERY_PEER_REDIS.
"""
import json
import os
import time

import redis
from celery import Celery

REDIS_URL = os.environ["CELERY_PEER_REDIS"]
STORES = ("accounts", "orders", "marketing", "activity")
DONE_LIST = "peer:done"

app = Celery("chord_app", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)

_connection = None


def connection():
    """One Redis connection per process (created after a prefork fork)."""
    global _connection
    if _connection is None:
        _connection = redis.Redis.from_url(REDIS_URL)
    return _connection


@app.task
def store_task(request_id, store):
    return {"store": store, "records": 0}


@app.task(ignore_result=True)
def finalize(results, request_id):
    stores = sorted(result["store"] for result in results)
    status = "completed" if stores == sorted(STORES) else "failed"
    pipe = connection().pipeline(transaction=True)
    pipe.hset(f"peer:request:{request_id}",
              mapping={"status": status, "stores": json.dumps(stores),
                       "finished": time.time()})
    pipe.rpush(DONE_LIST, request_id)
    pipe.execute()
