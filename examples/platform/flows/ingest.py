def flow(name: str):  # a stand-in for prefect's decorator, so this file also runs without prefect installed
    def wrap(fn):
        return fn

    return wrap


@flow(name="ingest")
def ingest_orders(source: str) -> str:
    print(f"ingesting {source}")
    return source


@flow(name="ingest")
def ingest_customers(source: str) -> str:
    print(f"ingesting {source}")
    return source
