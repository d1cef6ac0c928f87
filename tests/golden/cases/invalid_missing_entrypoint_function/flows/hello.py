"""A flow for the invalid_missing_entrypoint_function golden case."""


def say_hello(name: str = "world") -> str:
    return name
