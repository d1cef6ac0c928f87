"""A flow that reads its job variables from the environment the worker renders."""

import os


def build_report(days: int = 7) -> dict[str, object]:
    fmt = os.environ.get("REPORT_FORMAT", "text")
    print(f"building a {fmt} report over the last {days} days")
    return {"days": days, "format": fmt}
