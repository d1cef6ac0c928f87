"""A flow for the invalid_job_variables_wrong_type golden case."""


def say_hello(name: str = "world") -> str:
    return name
