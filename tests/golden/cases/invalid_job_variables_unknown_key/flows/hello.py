"""A flow for the invalid_job_variables_unknown_key golden case."""


def say_hello(name: str = "world") -> str:
    return name
