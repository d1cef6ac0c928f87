def archive_partitions(keep_days: int = 90) -> int:
    print(f"archiving partitions older than {keep_days} days")
    return 0
