"""Flows whose names are built from module constants, as two public projects do."""

from prefect import flow

TEAM = "data"
FLOW_NAME: str = "nightly-etl"


def name_from_settings() -> str:
    return "not-readable"


@flow(name=FLOW_NAME, log_prints=True)
def nightly(day: str, retries: int = 3, dry_run: bool = False) -> None:
    print(day, retries, dry_run)


@flow(name=f"{TEAM}-report")
def report(**options: object) -> None:
    print(options)


@flow(name=name_from_settings())
def dynamic(limit: int = 10) -> None:
    print(limit)
