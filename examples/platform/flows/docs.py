def build_docs() -> None:
    print("building docs")
