"""The flow the example deployment runs."""


def run_etl(full_refresh: bool = False) -> None:
    print(f"ETL (full_refresh={full_refresh})")
