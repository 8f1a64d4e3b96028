"""The seed's original stack, kept as small as the routes it answers: the reference
the Rust API is compared with (`bench/run.sh`). Run: uvicorn app:app --app-dir bench/fastapi."""

import logging
import os
from datetime import datetime, timezone

from fastapi import FastAPI

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

ENV = os.environ.get("APP_ENV", "bench")
REVISION = os.environ.get("DATAPRESS_REVISION", "unknown")


class _NoProbes(logging.Filter):
    """Probe requests are not access-logged, as on the API and NGINX sides."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not (len(args) >= 3 and args[2] in ("/health", "/ready"))


logging.getLogger("uvicorn.access").addFilter(_NoProbes())


@app.get("/")
async def root() -> dict:
    ts = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {"service": "api", "ts": ts, "env": ENV, "version": "1.0.0", "revision": REVISION}


@app.get("/health")
async def health() -> dict:
    return {"status": "ok"}
