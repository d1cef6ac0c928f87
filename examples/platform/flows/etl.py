def etl(full_refresh: bool = False, window_hours: int = 24) -> int:
    print(f"etl full_refresh={full_refresh} window={window_hours}h")
    return window_hours
