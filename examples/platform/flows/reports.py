def weekly_report(recipients: list[str]) -> int:
    print(f"sending the weekly report to {len(recipients)} recipients")
    return len(recipients)
