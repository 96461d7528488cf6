"""``--dbt-report PATH.html``: one self-contained HTML page a reviewer opens: the run's
summary, its failing tests, and the project's DAG with each node coloured by the
outcome of its tests (a node no test covers is marked as such).

The page holds its data as JSON and draws the DAG as SVG with its own script, no file
or network fetched: it opens from a CI artifact as it is.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from dbtproof.evidence.summary import short_message, verdict

#: A node's status from its tests' outcomes, worst first.
_WORST = ("failed", "warned", "passed", "skipped")
_STATUS = MappingProxyType({
    "failed": "failed", "error": "failed", "xpassed": "passed", "passed": "passed",
    "warned": "warned", "skipped": "skipped", "xfailed": "skipped",
})  # fmt: skip


def node_statuses(
    dag: Mapping[str, Mapping[str, Any]], tests: Sequence[Mapping[str, Any]]
) -> dict[str, str]:
    """Each node's status: ``failed``, ``warned``, ``passed``, ``skipped`` (its own build
    and its attached tests' outcomes, the worst), or ``untested``."""
    outcomes: dict[str, list[str]] = {}
    for test in tests:
        if test.get("unique_id"):
            outcomes.setdefault(test["unique_id"], []).append(_STATUS[test["outcome"]])
    statuses = {}
    for unique_id, node in dag.items():
        seen = [s for tid in (unique_id, *node.get("tests", ())) for s in outcomes.get(tid, [])]
        statuses[unique_id] = next((s for s in _WORST if s in seen), "untested")
    return statuses


def render(
    records: Sequence[Mapping[str, Any]],
    dag: Mapping[str, Mapping[str, Any]],
    evidence: str | None,
) -> str:
    """The report page for a run's records and its project's DAG."""
    start, end = records[0], records[-1]
    tests = [r for r in records if r.get("type") == "test"]
    statuses = node_statuses(dag, tests)
    data = {
        "nodes": [
            {"id": uid, "name": node["name"], "type": node["type"],
             "parents": list(node.get("parents", ())), "status": statuses[uid]}
            for uid, node in sorted(dag.items())
        ],
    }  # fmt: skip
    payload = json.dumps(data, sort_keys=True).replace("</", "<\\/")
    e = html.escape
    facts = [
        ("result", verdict(records)),
        ("run", start.get("run_id")),
        ("project", start.get("project")),
        ("target", f"{start.get('target')} ({start.get('adapter')})"),
        ("namespace", ", ".join(start.get("namespaces") or []) or "-"),
        ("commit", (start.get("git") or {}).get("commit") or "unknown"),
        ("tests", ", ".join(f"{k}: {v}" for k, v in (end.get("counts") or {}).items())),
    ]
    if evidence:
        facts += [("evidence", evidence), ("final digest", f"sha256:{end.get('digest')}")]
    rows = "".join(f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in facts)
    failing = [t for t in tests if t["outcome"] in ("failed", "error")]
    failures = "".join(
        f'<tr class="failure"><td><code>{e(t["nodeid"])}</code></td>'
        f"<td><code>{e(t.get('unique_id') or '-')}</code></td>"
        f"<td><pre>{e(short_message(t.get('message')))}</pre></td></tr>"
        for t in failing
    )
    failures_html = (
        f"<h2>Failing tests ({len(failing)})</h2><table class='failures'><tr><th>test</th>"
        f"<th>dbt node</th><th>message</th></tr>{failures}</table>"
        if failing
        else "<h2>No failing test</h2>"
    )
    return _PAGE.format(
        title=e(f"dbtproof: {start.get('project')} {verdict(records)}"),
        facts=rows,
        failures=failures_html,
        payload=payload,
    )


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 24px; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 16px; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }}
pre {{ margin: 0; white-space: pre; overflow-x: auto; max-width: 900px; }}
#dag {{ border: 1px solid #ccc; overflow: auto; }}
.node rect {{ stroke: #333; stroke-width: 1; rx: 6; }}
.node.failed rect {{ fill: #f28b82; stroke: #b00020; stroke-width: 3; }}
.node.warned rect {{ fill: #fdd663; }}
.node.passed rect {{ fill: #a8dab5; }}
.node.skipped rect {{ fill: #dadce0; }}
.node.untested rect {{ fill: #fff; stroke-dasharray: 4 3; }}
.node text {{ font-size: 12px; }}
.edge {{ fill: none; stroke: #888; }}
.legend span {{ display: inline-block; padding: 2px 8px; margin-right: 6px;
  border: 1px solid #333; }}
</style></head>
<body>
<h1>{title}</h1>
<table class="facts">{facts}</table>
{failures}
<h2>DAG</h2>
<p class="legend"><span style="background:#f28b82">failed</span>
<span style="background:#fdd663">warned</span><span style="background:#a8dab5">passed</span>
<span style="background:#dadce0">skipped</span><span style="border-style:dashed">no test</span></p>
<div id="dag"></div>
<script type="application/json" id="dag-data">{payload}</script>
<script>
(function () {{
  var data = JSON.parse(document.getElementById("dag-data").textContent);
  var byId = {{}}, depth = {{}};
  data.nodes.forEach(function (n) {{ byId[n.id] = n; }});
  function level(id, seen) {{
    if (depth[id] !== undefined) return depth[id];
    if (seen[id]) return 0;
    seen[id] = true;
    var d = 0;
    byId[id].parents.forEach(function (p) {{ if (byId[p]) d = Math.max(d, level(p, seen) + 1); }});
    return (depth[id] = d);
  }}
  var columns = [];
  data.nodes.forEach(function (n) {{
    var d = level(n.id, {{}});
    (columns[d] = columns[d] || []).push(n);
  }});
  var W = 200, H = 34, GX = 60, GY = 14, pos = {{}}, height = 0;
  columns.forEach(function (column, x) {{
    column.forEach(function (n, y) {{
      pos[n.id] = {{ x: 10 + x * (W + GX), y: 10 + y * (H + GY) }};
      height = Math.max(height, 10 + (y + 1) * (H + GY));
    }});
  }});
  var ns = "http://www.w3.org/2000/svg";
  var svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", 20 + columns.length * (W + GX));
  svg.setAttribute("height", height + 10);
  data.nodes.forEach(function (n) {{
    n.parents.forEach(function (p) {{
      if (!pos[p]) return;
      var a = pos[p], b = pos[n.id], path = document.createElementNS(ns, "path");
      var x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
      path.setAttribute("d", "M" + x1 + "," + y1 + " C" + (x1 + GX / 2) + "," + y1 + " " +
        (x2 - GX / 2) + "," + y2 + " " + x2 + "," + y2);
      path.setAttribute("class", "edge");
      svg.appendChild(path);
    }});
  }});
  data.nodes.forEach(function (n) {{
    var g = document.createElementNS(ns, "g"), p = pos[n.id];
    g.setAttribute("class", "node " + n.status);
    g.setAttribute("data-unique-id", n.id);
    g.setAttribute("transform", "translate(" + p.x + "," + p.y + ")");
    var rect = document.createElementNS(ns, "rect");
    rect.setAttribute("width", W); rect.setAttribute("height", H);
    var text = document.createElementNS(ns, "text");
    text.setAttribute("x", 8); text.setAttribute("y", H / 2 + 4);
    text.textContent = n.type + " " + n.name + (n.status === "untested" ? " (no test)" : "");
    var title = document.createElementNS(ns, "title");
    title.textContent = n.id + ": " + n.status;
    g.appendChild(rect); g.appendChild(text); g.appendChild(title);
    svg.appendChild(g);
  }});
  document.getElementById("dag").appendChild(svg);
}})();
</script>
</body></html>
"""
