from prefect import flow, get_run_logger, task


@task(retries=2)
def extract(n: int) -> list[int]:
    return list(range(n))


@task
def total(xs: list[int]) -> int:
    return sum(xs)


@flow(name="real-etl", log_prints=True)
def etl(n: int = 5) -> int:
    logger = get_run_logger()
    t = total(extract(n))
    logger.info("total is %s", t)
    print(f"printed total {t}")
    return t
