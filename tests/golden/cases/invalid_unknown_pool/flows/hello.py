"""A flow for the invalid_unknown_pool golden case."""


def say_hello(name: str = "world") -> str:
    return name
