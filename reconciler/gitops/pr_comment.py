"""The pull-request comment that carries a reviewed plan: its body and the hidden header that identifies it.

Owns the comment's format: a first line `<!-- wp-plan {json} -->` (the project `path`, the `plan_hash` a reviewer
saw, the header `version`, whether the plan was `truncated`), then the markdown plan, cut to fit GitHub's comment
limit. Also reads that header back, so `wp ci --mode apply` can compare the reviewed hash with a fresh plan.
Must never do I/O: the GitHub edge (`gitops.github`) posts and fetches the text this module makes and reads.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from reconciler.diagnostics import Diagnostic, Severity

MARKER = "wp-plan"
HEADER_VERSION = 1
# GitHub refuses a comment body over 65,536 characters; keep a margin for what GitHub itself may count differently.
COMMENT_LIMIT = 65_000
# The job summary of one step is dropped when it passes 1 MiB (of UTF-8 bytes).
SUMMARY_LIMIT_BYTES = 1_000_000
MAX_LISTED_DIAGNOSTICS = 50

_HEADER = re.compile(r"\A\s*<!-- " + re.escape(MARKER) + r" (\{.*?\}) -->[ \t]*(?:\r?\n|\Z)")
_FENCE = re.compile(r"^\s*```")


@dataclass(frozen=True)
class CommentHeader:
    path: str
    plan_hash: str | None  # None when the configuration had errors: there was no plan to review
    version: int = HEADER_VERSION
    truncated: bool = False


def normalize_path(path: str) -> str:
    """One spelling per project directory (`./infra/` and `infra` are the same project), so one comment each."""
    return posixpath.normpath(path.replace("\\", "/")) if path else "."


def header_line(header: CommentHeader) -> str:
    data = {
        "path": header.path,
        "plan_hash": header.plan_hash,
        "truncated": header.truncated,
        "version": header.version,
    }
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    # `<` and `>` can only occur inside JSON strings, where \u escapes mean the same: a path can never end the
    # HTML comment early (`-->`) and show the header to readers.
    safe = text.replace("<", "\\u003c").replace(">", "\\u003e")
    return f"<!-- {MARKER} {safe} -->"


def parse_header(body: str) -> CommentHeader | None:
    """The header on the first line of `body`, or None when it is not a wp plan comment. Anything below the
    header (a reviewer's edit) is ignored."""
    match = _HEADER.match(body)
    if match is None:
        return None
    try:
        data = json.loads(match.group(1))
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    path, plan_hash, version = data.get("path"), data.get("plan_hash"), data.get("version")
    if not isinstance(path, str) or not (plan_hash is None or isinstance(plan_hash, str)):
        return None
    if not isinstance(version, int) or isinstance(version, bool):
        return None
    return CommentHeader(path, plan_hash, version, data.get("truncated") is True)


def comment_body(
    header: CommentHeader,
    markdown: str,
    *,
    footer: str = "",
    limit: int = COMMENT_LIMIT,
) -> str:
    """The whole comment: header, the markdown (cut to fit `limit` characters, saying so), then `footer`."""
    tail = f"\n\n{footer}" if footer else ""
    first = header_line(header) + "\n"
    budget = limit - len(first) - len(tail)
    text, cut = fit_markdown(
        markdown.rstrip(),
        budget,
        note="**The plan is too long for a comment and is cut here.** The job summary of this run has all of it.",
    )
    if cut and not header.truncated:
        first = header_line(CommentHeader(header.path, header.plan_hash, header.version, True)) + "\n"
    return first + text + tail


def fit_markdown(text: str, limit: int, *, note: str, size: Callable[[str], int] = len) -> tuple[str, bool]:
    """`text` whole when it fits `limit` (measured by `size`), else its first lines, open ``` blocks and
    <details> closed, then `note`; and whether it was cut. Cutting at a line keeps every kept line readable."""
    if size(text) <= limit:
        return text, False
    tail = f"\n\n> {note}\n"
    budget = limit - size(tail)
    kept: list[str] = []
    used = 0
    in_fence = False
    open_details = 0
    for line in text.splitlines():
        fence, details = in_fence, open_details
        if _FENCE.match(line):
            fence = not fence
        elif not fence:
            details = max(details + line.count("<details>") - line.count("</details>"), 0)
        # The line must fit together with the closers its state would then need (``` and </details>).
        closers = size("\n```") * fence + size("\n</details>") * details
        if used + size(line) + 1 + closers > budget:
            break
        kept.append(line)
        used += size(line) + 1
        in_fence, open_details = fence, details
    if in_fence:
        kept.append("```")
    kept.extend(["</details>"] * open_details)
    return "\n".join(kept) + tail, True


def diagnostics_markdown(path: str, diagnostics: Sequence[Diagnostic]) -> str:
    """Why there is no plan, for the PR: each error with where it is, as a short list."""
    errors = [d for d in diagnostics if d.severity is Severity.ERROR]
    shown = errors[:MAX_LISTED_DIAGNOSTICS]
    noun = "error" if len(errors) == 1 else "errors"
    out = [
        f"### wp plan: `{path}` has an invalid configuration",
        "",
        f"**No plan: {len(errors)} {noun} in the configuration.** Fix them and push again.",
        "",
    ]
    for d in shown:
        where = f"`{d.location}` " if d.location else ""
        at = f" (at `{d.field_path}`)" if d.path else ""
        out.append(f"- {where}{_one_line(d.summary)}{at}")
        out.extend(f"  {_one_line(line)}" for line in d.detail.splitlines() if line.strip())
    if len(errors) > len(shown):
        out.append(f"- … and {len(errors) - len(shown)} more (see the job log)")
    return "\n".join(out) + "\n"


def _one_line(text: str) -> str:
    # A diagnostic may quote the user's YAML; a stray <tag> or fence must not swallow the rest of the comment.
    return text.replace("<", "&lt;").replace("```", "`\u200b``").strip()


def refused_markdown(path: str, message: str) -> str:
    """Why a valid configuration gave no plan (a safety rule refused it), for the PR."""
    body = message.replace("```", "`\u200b``")
    return f"### wp plan: the plan for `{path}` is refused\n\n```\n{body}\n```\n"
