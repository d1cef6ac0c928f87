from prefect import flow


@flow
def run() -> None:
    pass
