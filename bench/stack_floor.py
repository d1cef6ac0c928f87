"""The floor under `wp server start`: the smallest server on wp's stack, to compare wp's start-up with.

    python bench/stack_floor.py PORT DATABASE_FILE

FastAPI with one `/health` route, a SQLAlchemy engine on a SQLite file that answers one SELECT, and uvicorn
with the flags `wp server start` uses (asyncio, h11, no WebSockets, lifespan on). No routes, models, tables or
scheduler of wp: what any server on FastAPI + SQLAlchemy + uvicorn costs before it does anything. bench/server.py
starts it beside `wp server start` (`--only floor`); the difference between the two is what wp itself adds.
"""

from __future__ import annotations

import sys

import sqlalchemy
import uvicorn
from fastapi import FastAPI


def main() -> None:
    port, database = int(sys.argv[1]), sys.argv[2]
    engine = sqlalchemy.create_engine(f"sqlite:///{database}")
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
    app = FastAPI(title="floor")

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        loop="asyncio",
        http="h11",
        ws="none",
        lifespan="on",
        interface="asgi3",
    )


if __name__ == "__main__":
    main()
