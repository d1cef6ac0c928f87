def train(epochs: int = 1) -> float:
    print(f"training for {epochs} epochs")
    return 0.9


def score() -> int:
    print("scoring")
    return 0
