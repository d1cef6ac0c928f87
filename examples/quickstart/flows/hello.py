"""A plain function: wp needs no decorator and no import of wp to run it."""


def say_hello(name: str = "world") -> str:
    message = f"Hello, {name}!"
    print(message)
    return message
