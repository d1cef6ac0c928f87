def close_books() -> str:
    print("closing the books")
    return "closed"
